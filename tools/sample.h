/*
 * sample.h — the synthetic CellMap-like label volume behind `labelbin
 * sample` (sample.c): a cell with a nucleus and organelles in CellMap ids,
 * deterministic for a shape and seed, generated slab by slab so memory
 * stays small. No I/O: cmd_sample.c writes it.
 */
#ifndef LABELBIN_SAMPLE_H
#define LABELBIN_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* The CellMap classes the sample uses (CellMap's published class table). */
typedef struct sample_class {
    int id;
    const char *shrt, *lng; /* short and long names */
} sample_class;
extern const sample_class sample_classes[];
extern const size_t sample_n_classes;
/* The id that the sample's metadata marks present but not annotated (it
 * masks off a "mito" group). Every id is below SAMPLE_MAX_ID. */
#define SAMPLE_NOT_ANNOTATED 5
#define SAMPLE_MAX_ID 64

typedef struct sample_model sample_model;

/* The model of a volume of `shape` (z, y, x voxels) for `seed`; NULL when
 * out of memory. */
sample_model *sample_model_new(const int64_t shape[3], uint64_t seed);
void sample_model_free(sample_model *m);

/* The labels of slab z in [z0, z1) (C order; buf holds
 * (z1 - z0) * Y * X labels). */
void sample_fill(const sample_model *m, int64_t z0, int64_t z1, uint64_t *buf);

#endif /* LABELBIN_SAMPLE_H */
