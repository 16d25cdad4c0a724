/*
 * json.h — json-c helpers: strict parsing with line/column errors and typed
 * getters whose errors name the JSON path ("labels[3].annotationState.present:
 * expected a boolean"). Integers stay exact up to 2^64-1.
 */
#ifndef LB_JSON_H
#define LB_JSON_H

#include <json-c/json.h>

#include "core/util.h"

/* Parse `len` bytes of `text` (need not be NUL-terminated) as exactly one
 * JSON value; trailing non-space is an error. `what` names the source in
 * messages (a path). Depth is limited. A top-level `null` is refused
 * (json-c represents it as a NULL pointer, which callers cannot tell from
 * failure); nested nulls are fine. */
int lb__json_parse(const char *text, size_t len, const char *what,
                   json_object **out, lb_error *err);

/* Serialise compactly (or pretty with 4-space indent when `pretty`), no
 * slash escaping. The string is owned by `o` (json-c semantics). */
const char *lb__json_string(json_object *o, int pretty);

/* Append `n` bytes of JSON text (json-c's output) to `b` as pure ASCII, the
 * way Python's json module writes it: every non-ASCII character becomes a
 * \uXXXX escape (a surrogate pair above U+FFFF). A byte that is not part of
 * valid UTF-8 (a file name in another encoding) becomes U+FFFD, the
 * replacement character. Non-ASCII bytes only occur inside JSON strings,
 * where escapes are valid. */
int lb__json_append_ascii(lb__buf *b, const char *text, size_t n, lb_error *err);

/* 1 if the `n` bytes at `s` are valid UTF-8 (no overlong forms, surrogates
 * or code points past U+10FFFF), else 0. */
int lb__utf8_valid(const char *s, size_t n);

/* Typed access. `where` is the JSON path of `o` used in messages (e.g.
 * "crop.zarr/labels/.zarray: shape" or "labels[3]"). Each returns 0 or a
 * negative code with a message "<where>: expected ...". */

/* Integer that fits int64 (no fraction, no exponent, JSON integer). */
int lb__json_int64(json_object *o, const char *where, int64_t *out, lb_error *err);
/* Any JSON integer from -2^63 to 2^64-1, as a label id. */
int lb__json_id(json_object *o, const char *where, lb_id *out, lb_error *err);
/* Number (integer or double) as double. */
int lb__json_number(json_object *o, const char *where, double *out, lb_error *err);
int lb__json_bool(json_object *o, const char *where, int *out, lb_error *err);
/* String; *out is owned by `o`. */
int lb__json_str(json_object *o, const char *where, const char **out, lb_error *err);
/* Array of n int64 (n <= max); *n_out receives the length. */
int lb__json_int64_array(json_object *o, const char *where, int64_t *out, int max,
                         int *n_out, lb_error *err);
/* Array of numbers as doubles (n <= max). */
int lb__json_number_array(json_object *o, const char *where, double *out, int max,
                          int *n_out, lb_error *err);

/* Member lookup: returns the member or NULL if absent (never fails). */
json_object *lb__json_get(json_object *obj, const char *key);
/* Required member: absent -> LB_EFORMAT "<where>: missing key \"key\"". */
int lb__json_require(json_object *obj, const char *key, const char *where,
                     json_object **out, lb_error *err);

/* A new JSON array of n int64 values, in order or reversed (N5 lists
 * dimensions fastest-first). NULL on ENOMEM. */
json_object *lb__json_int64_list(const int64_t *v, int n, int reversed);

/* JSON type name for messages: "an object", "a string", "null", … */
const char *lb__json_type_name(json_object *o);


#endif /* LB_JSON_H */
