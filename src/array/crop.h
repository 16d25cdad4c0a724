/*
 * crop.h — CellMap crops as published today (internal): a group whose
 * `cellmap.annotation.class_names` lists the annotated classes, one
 * OME-NGFF multiscale group per class whose arrays carry the class's
 * encoding (absent / present / unknown values, or instance ids), plus the
 * dense ids in `all`. The class table (crop_classes.c) maps names to ids and
 * group classes to their members; crop.c opens and validates a crop;
 * crop_arrays.c computes three-valued targets and masks over it;
 * crop_write.c writes three-state outputs as a crop; crop_stats.c counts
 * states; crop_check.c lints a crop.
 */
#ifndef LB_ARRAY_CROP_H
#define LB_ARRAY_CROP_H

#include <json-c/json.h>

#include "core/util.h"
#include "store/store.h"

/* ---- the class table (crop_classes.c) ------------------------------------ */

typedef struct lb__class_entry {
    char *name;
    uint64_t id;
    uint64_t *members; /* a group class's member ids (table order), else NULL */
    size_t n_members;
    uint64_t *atomic;  /* its atomic ids, sorted: members resolved, or itself */
    size_t n_atomic;
} lb__class_entry;

struct lb_classes {
    lb__class_entry *e;
    size_t n;
    char *source; /* "built-in CellMap table" or the file name given */
};

/* The entry for an id / a name, or -1. */
long lb__classes_by_id(const lb_classes *c, uint64_t id);
long lb__classes_by_name(const lb_classes *c, const char *name);
/* A deep copy. */
int lb__classes_copy(const lb_classes *c, lb_classes **out, lb_error *err);

/* A name that may be a group's name in a store: 1..255 bytes, not "." or
 * "..", no '/', '\\' or control characters, not starting with "__" or ".z"
 * (Zarr's reserved names). Returns NULL when fine, else why not (static). */
const char *lb__crop_name_problem(const char *name);

/* ---- annotation metadata (crop.c) ---------------------------------------- */

enum { LB__ABSENT = 0, LB__PRESENT = 1, LB__UNKNOWN = 2 };
extern const char *const lb__state_names[3]; /* "absent", "present", "unknown" */

/* `annotation_type` of a class: its kind and encoding. */
typedef struct lb__encoding {
    int instance;     /* instance_segmentation: values not encoded are ids */
    int has[3];       /* indexed by LB__ABSENT / PRESENT / UNKNOWN */
    lb_id value[3];
} lb__encoding;

/* complement_counts of one array: has[k] = 0 when the key is absent. */
typedef struct lb__counts {
    int given;        /* the attribute is there and not null */
    int has[3];
    uint64_t n[3];
} lb__counts;

/* Parse an `annotation_type` object strictly (known keys only, integer
 * values, no value used twice, no "present" for instances). `where` is its
 * JSON path for messages. */
int lb__encoding_parse(json_object *o, const char *where, lb__encoding *out, lb_error *err);
/* 1 if both describe the same kind and encoding. */
int lb__encoding_equal(const lb__encoding *a, const lb__encoding *b);
/* "absent 0, present 1, unknown 255" into buf. */
void lb__encoding_describe(const lb__encoding *e, char *buf, size_t size);

/* The crop group's `cellmap.annotation`, validated: `class_names` unique and
 * safe as group names. Strings are borrowed from `attrs`. */
typedef struct lb__crop_attrs {
    const char *version;
    const char *name; /* may be NULL */
    const char **class_names;
    size_t n_classes;
} lb__crop_attrs;
/* 1 when `attrs` has cellmap.annotation.class_names (of any type): the group
 * claims to be a crop. */
int lb__crop_attrs_claim(json_object *attrs);
int lb__crop_attrs_parse(json_object *attrs, const char *file, lb__crop_attrs *out,
                         lb_error *err);
void lb__crop_attrs_clear(lb__crop_attrs *a);

/* A class group's `cellmap.annotation` ({class_name, annotation_type}). */
int lb__class_group_attrs_parse(json_object *attrs, const char *file, const char *class_name,
                                lb__encoding *out, lb_error *err);
/* A class array's `cellmap.annotation` ({class_name, annotation_type,
 * complement_counts}); *found = 0 when the array has none. */
int lb__class_array_attrs_parse(json_object *attrs, const char *file, const char *class_name,
                                lb__encoding *enc, lb__counts *counts, int *found,
                                lb_error *err);

/* The attributes of the group at `dir` of `s` in whichever format has them
 * (*out = NULL when none); *file (may be NULL) receives the metadata file's
 * name, for messages. */
int lb__group_attrs_any(lb__store *s, const char *dir, json_object **out, const char **file,
                        lb_error *err);

/* The dataset paths of a multiscale group's first multiscale image
 * ("s0", "s1", …, finest first), validated as relative paths without "."
 * or ".." segments. Strings borrowed from `attrs`; *n = 0 without
 * multiscales. */
int lb__multiscale_paths(json_object *attrs, const char *file, const char ***paths, size_t *n,
                         lb_error *err);

/* ---- the crop (crop.c) ---------------------------------------------------- */

typedef struct lb__crop_level {
    char *path;          /* relative to the class group: "s0"          */
    char *url;           /* what lb_array_open takes                    */
    int ndim, dims;
    int64_t shape[LB_MAX_DIMS];
    int64_t chunks[LB_MAX_DIMS];
    int64_t voxel_size[LB_MAX_DIMS];
    lb_roi roi;
    lb_dtype dtype;
    lb__counts counts;
    int64_t cc[3];       /* public form of counts: -1 when not given    */
} lb__crop_level;

typedef struct lb__crop_class {
    char *name;
    long table;          /* index in the crop's class table, or -1      */
    lb__encoding enc;
    lb__crop_level *levels;
    int n_levels;
} lb__crop_class;

struct lb_crop {
    lb__store *store;
    char *path;          /* in the store                                 */
    char *url;           /* as given, without trailing '/'               */
    char *shown;         /* url without userinfo or query (lb_crop_path) */
    lb_classes *classes; /* owned copy                                   */
    char *name, *version;
    lb__crop_class *cls;
    size_t n;
    char *all_path;      /* "all/s0" when the crop has one, else NULL    */
    json_object *attrs;  /* the crop group's attributes                  */
    char **warnings;
    int n_warnings;
};

/* URL of `rel` ("mito/s0") inside the crop, a new string. */
char *lb__crop_url(const lb_crop *c, const char *rel, lb_error *err);

/* ---- arrays over a crop (crop_arrays.c) ----------------------------------- */

/* What an array over a crop computes, per group (channel). */
typedef enum lb__crop_mode {
    LB__CROP_TARGET = 0, /* 1 where some class of the group is present */
    LB__CROP_MASK,       /* 1 where the target is known                 */
    LB__CROP_STATES      /* 1 present, 0 absent, `unknown` otherwise    */
} lb__crop_mode;

/* Build an array over `crop`. `groupings` NULL: one channel per class of
 * the crop, each from its own array. `squeeze`: a single group and no
 * channel axis (the per-group arrays of a three-state output). `count`:
 * keep per-channel state counts of everything read
 * (lb__crop_array_counts). */
int lb__crop_array_new(const lb_crop *crop, const lb_groupings *groupings,
                       const lb_crop_options *opt, lb__crop_mode mode, int squeeze, int count,
                       lb_array **out, lb_error *err);
/* 1 when `a` is an array over a crop. */
int lb__crop_array_is(const lb_array *a);
/* The unknown value of a three-state array (-1 otherwise). */
int lb__crop_array_unknown(const lb_array *a);
/* State counts (absent, present, unknown) of channel ch accumulated by
 * reads of an array built with `count`; 0 ok, -1 otherwise. */
int lb__crop_array_counts(const lb_array *a, int64_t ch, uint64_t out[3]);

/* Channel `ch` of a crop array alone, without a channel axis, reading only
 * the classes that channel needs (`count`: as lb__crop_array_new). */
int lb__crop_array_channel(const lb_array *a, size_t ch, int count, lb_array **out,
                           lb_error *err);

/* For a mask over the `all` array of a crop (`path` is `<crop>/all/<level>`
 * in store `s`): the ids listed by the groups whose class the crop does not
 * annotate (not in class_names, and for a group class not all its members
 * either), each once, into *ids (malloc'd; *n of them). *is_crop = 0 and no
 * ids when `path` is no such array. Malformed crop metadata: LB_EFORMAT. */
int lb__crop_all_rule(lb__store *s, const char *path, const lb_groupings *g,
                      const lb_classes *classes, int *is_crop, lb_id **ids, size_t *n,
                      lb_error *err);

/* ---- configs (crop_config.c) --------------------------------------------- */

/* 1 when `src` is a CellMapCropConfig. */
int lb__crop_config_is(json_object *src);
/* A BinarizeArrayConfig (binarize = 1) or MissingAnnotationsMaskConfig
 * `cfg` (at JSON path `where`) whose source is a CellMapCropConfig. */
int lb__crop_config_build(json_object *cfg, const char *where, int binarize,
                          const char *base_dir, lb_array **out, lb_error *err);

#endif /* LB_ARRAY_CROP_H */
