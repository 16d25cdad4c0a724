/*
 * format.h — an on-disk array format: Zarr v2, N5 or Zarr v3. Each format
 * is one static table of functions (format/zarr2.c, n5.c, zarr3.c): it
 * recognises its metadata (probe), parses it into a format-neutral
 * description whose chunks are coded by a codec chain (open), names chunk
 * keys, reads group attributes, and writes new arrays and groups. The layers
 * above never ask which format they hold.
 */
#ifndef LB_FORMAT_FORMAT_H
#define LB_FORMAT_FORMAT_H

#include <json-c/json.h>

#include "codec/chain.h"
#include "store/store.h"

/* One array's metadata, format-neutral. */
typedef struct lb__array_meta {
    int ndim;
    int64_t shape[LB_MAX_DIMS];  /* C order of dimensions                    */
    int64_t chunks[LB_MAX_DIMS]; /* the stored chunk (a shard when sharded)   */
    lb_dtype dtype;
    size_t itemsize;
    uint8_t fill[8];             /* native byte order                         */
    int fill_null;               /* Zarr v2 fill_value null (read as 0)       */
    lb__chain *chain;            /* owned                                     */
    /* chunk keys */
    char key_separator;          /* '.' or '/'                                */
    int key_prefix_c;            /* Zarr v3 "default": keys start with "c"    */
    int key_reversed;            /* N5: the last dimension's index first      */
    /* geometry hints for the layers above */
    int reverse_attrs;           /* funlib vectors are stored reversed (N5,
                                    Zarr v2 order "F")                         */
    char *dim_names[LB_MAX_DIMS];/* Zarr v3 dimension_names (NULL = unnamed);
                                    all NULL when the format has none        */
    json_object *meta;           /* the metadata document as read (owned)     */
    json_object *attrs;          /* user attributes, never NULL (owned)       */
} lb__array_meta;

void lb__array_meta_clear(lb__array_meta *m);

/* A new array as the writer wants it; each format writes it in its own
 * words, or refuses what it cannot express. */
typedef struct lb__create_spec {
    int ndim;
    int64_t shape[LB_MAX_DIMS];
    int64_t chunks[LB_MAX_DIMS];  /* stored chunks (shards)                  */
    int64_t inner[LB_MAX_DIMS];   /* Zarr v3 inner chunks; all 0 = unsharded */
    lb_dtype dtype;
    uint8_t fill[8];
    int fill_null;                /* Zarr v2 fill_value null                 */
    int big_endian;               /* Zarr v2 ">" dtypes, Zarr v3 bytes "big" */
    int order_f;                  /* Zarr v2 order "F"                       */
    char separator;               /* chunk key separator; 0 = the format's   */
    const lb__codec *compressor;  /* a bytes→bytes codec, NULL = none        */
    json_object *attrs;           /* borrowed, may be NULL                   */
    const char *const *dim_names; /* Zarr v3 dimension_names, may be NULL    */
} lb__create_spec;

typedef struct lb__format {
    const char *name;       /* "zarr2", "n5", "zarr3"                        */
    const char *title;      /* "Zarr v2", "N5", "Zarr v3"                    */
    const char *meta_file;  /* the array metadata file, for messages         */
    const char *attrs_file; /* where user attributes live, for messages      */
    int ome;                /* OME-NGFF multiscales apply (Zarr v2 and v3)    */
    int n5_conventions;     /* funlib's N5 rules: attribute vectors stored
                               x, y, z; scale pyramids by downsamplingFactors */
    /* 1: an array of this format is at `dir`; 0: not; < 0: an error. */
    int (*probe)(lb__store *s, const char *dir, lb_error *err);
    /* 1: a group of this format is at `dir`. */
    int (*probe_group)(lb__store *s, const char *dir);
    int (*open)(lb__store *s, const char *dir, lb__array_meta *out, lb_error *err);
    int (*chunk_key)(const lb__array_meta *m, const int64_t *cidx, char *buf, size_t size);
    /* The attributes of the group at `dir` (*out = NULL when none). */
    int (*group_attrs)(lb__store *s, const char *dir, json_object **out, lb_error *err);
    /* The metadata document a spec gives (a new reference). */
    int (*build)(const lb__create_spec *spec, json_object **out, lb_error *err);
    /* Write the array: parent groups up to the container, then metadata
     * (atomically, attributes before the document that makes it an array). */
    int (*create)(lb__store *s, const char *dir, const lb__create_spec *spec, lb_error *err);
    /* Make `dir` a group with these attributes (replacing them). */
    int (*create_group)(lb__store *s, const char *dir, json_object *attrs, lb_error *err);
    /* Replace an array's user attributes. */
    int (*set_attrs)(lb__store *s, const char *dir, lb__array_meta *m, json_object *attrs,
                     lb_error *err);
    /* The codec chain in this format's own words (Zarr v2 compressor, N5
     * compression, Zarr v3 codecs), a new reference; NULL for none. */
    json_object *(*codec_json)(const lb__array_meta *m, lb_error *err);
    /* One bytes→bytes codec in this format's words (a new reference; NULL
     * with no error for none / LB__CODEC_RAW where the format writes null,
     * NULL with LB_EUNSUPPORTED when it cannot name the codec). */
    json_object *(*codec_words)(const lb__codec *c, lb_error *err);
    /* A user's codec given as JSON in this format's words → a bytes→bytes
     * codec (LB__CODEC_RAW for none). */
    int (*parse_codec)(json_object *o, const char *where, lb__codec *out, lb_error *err);
} lb__format;

extern const lb__format lb__format_zarr2, lb__format_n5, lb__format_zarr3;

/* Every format, in probe order. */
extern const lb__format *const lb__formats[];
extern const int lb__n_formats;

/* The format named "zarr2" | "n5" | "zarr3", or NULL. */
const lb__format *lb__format_by_name(const char *name);

/* Find the format of the array at `dir`: *out = NULL when none is there
 * (errors only for what makes the question unanswerable). */
int lb__format_detect(lb__store *s, const char *dir, const lb__format **out, lb_error *err);
/* The format of a group at `dir` (NULL when there is none). */
const lb__format *lb__format_detect_group(lb__store *s, const char *dir);

/* A user's output codec: a short form (codec/spec.h) or JSON in any
 * format's words — a numcodecs compressor object ({"id": …}), an N5
 * compression object ({"type": …}) or a Zarr v3 codec ({"name": …}); it
 * must be able to encode. */
int lb__codec_parse_spec(const char *spec, lb__codec *out, lb_error *err);

#endif /* LB_FORMAT_FORMAT_H */
