/*
 * common.h — what the format files share: metadata documents read from and
 * written to a store (JSON, pure ASCII, atomically), dimension lists, and
 * element values (fill values) converted between JSON and native bytes.
 */
#ifndef LB_FORMAT_COMMON_H
#define LB_FORMAT_COMMON_H

#include <json-c/json.h>

#include "store/store.h"

/* Read dir/name as a JSON object; *out = NULL when the key is absent (the
 * caller's error record is then left untouched). Messages name dir/name. */
int lb__meta_read(lb__store *s, const char *dir, const char *name, json_object **out,
                  lb_error *err);
/* Write a JSON value to dir/name atomically, pretty-printed with `indent`
 * spaces, non-ASCII characters escaped as \uXXXX. */
int lb__meta_write(lb__store *s, const char *dir, const char *name, json_object *o, int indent,
                   lb_error *err);
/* A deep copy with object keys sorted (zarr-python 2 writes sorted keys). */
json_object *lb__meta_sorted_copy(json_object *o, lb_error *err);
/* meta[key] as at most LB_MAX_DIMS integers (LB_ELIMIT beyond). */
int lb__meta_dims(json_object *meta, const char *key, const char *where, int64_t *out,
                  int *n_out, lb_error *err);
/* Check a parsed array's ranks, shape (>= 0) and chunks (> 0) against the
 * limits; messages name `where` and the keys. `reversed`: the file lists
 * dimensions in reverse (N5). */
int lb__meta_check_geometry(int ndim, const int64_t *shape, const int64_t *chunks,
                            size_t itemsize, const char *where, const char *shape_key,
                            const char *chunks_key, int reversed, lb_error *err);

/* Optional members of a codec's JSON configuration, errors naming
 * "<where>.<key>": absent or null leaves *out as it was. */
json_object *lb__cfg_member(json_object *obj, const char *key);
int lb__cfg_int(json_object *obj, const char *key, const char *where, int64_t lo, int64_t hi,
                int *out, lb_error *err);
int lb__cfg_bool(json_object *obj, const char *key, const char *where, int *out, lb_error *err);
int lb__cfg_str(json_object *obj, const char *key, const char *where, const char **out,
                lb_error *err);

/* An integer id stored as a fill value of an integer dtype; -1 when it does
 * not fit. */
int lb__fill_from_id(lb_dtype dtype, lb_id id, uint8_t *fill);
/* Parse a JSON fill value for `dtype` (integers exact, bools, floats with
 * "NaN"/"Infinity"/"-Infinity"; Zarr v2 also allows 0/1 for bool). */
int lb__fill_parse(json_object *o, lb_dtype dtype, const char *where, uint8_t *fill,
                   lb_error *err);
/* The fill value as JSON (integers exact; floats with NaN/Infinity as
 * strings, as Zarr writes them). */
json_object *lb__fill_to_json(lb_dtype dtype, const uint8_t *fill);
/* The same as text into buf. */
void lb__fill_text(lb_dtype dtype, const uint8_t *fill, char *buf, size_t size);

/* Members added to a JSON object under construction; *bad is set when one
 * cannot be (out of memory), and lb__jput_finish then frees the object and
 * reports LB_ENOMEM once. */
void lb__jput_int(json_object *o, const char *key, int64_t v, int *bad);
void lb__jput_str(json_object *o, const char *key, const char *v, int *bad);
void lb__jput_bool(json_object *o, const char *key, int v, int *bad);
json_object *lb__jput_finish(json_object *o, int bad, lb_error *err);

/* The writer's provenance attribute and its "unfinished" key: an output
 * carries {"labelbin": {..., "complete": false}} from its first metadata
 * write until the run that finishes it removes the key. Readers (arrays,
 * crops, check) refuse or flag such outputs; the writer sets and clears it. */
#define LB__PROVENANCE_KEY "labelbin"
#define LB__COMPLETE_KEY "complete"

/* 1 when the attributes (a dataset's user attributes, may be NULL) mark an
 * unfinished output, else 0. */
int lb__attrs_incomplete(json_object *attrs);

#endif /* LB_FORMAT_COMMON_H */
