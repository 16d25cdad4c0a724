/*
 * numcodecs.h — numcodecs' compressor objects (Zarr v2's "compressor", Zarr
 * v3's "numcodecs.<id>" codecs) as codec values.
 */
#ifndef LB_FORMAT_NUMCODECS_H
#define LB_FORMAT_NUMCODECS_H

#include <json-c/json.h>

#include "codec/codec.h"

/* A compressor object (its "id" read from it, or `id` when not NULL: then
 * the object may be NULL = all defaults). A NULL object without `id` is no
 * compression (LB__CODEC_RAW). Unknown ids are LB_EUNSUPPORTED naming the
 * id and the supported ones; `where` is the JSON path for messages. */
int lb__numcodecs_parse(json_object *compressor, const char *id, const char *where,
                        lb__codec *out, lb_error *err);
/* The codec as a new compressor object; NULL for LB__CODEC_RAW (JSON null,
 * no error), or NULL with LB_EUNSUPPORTED for a codec numcodecs has no name
 * for. */
json_object *lb__numcodecs_json(const lb__codec *c, lb_error *err);

/* blosc's members (cname, clevel, shuffle, blocksize), shared with N5's
 * blosc compression. */
int lb__numcodecs_blosc_fields(json_object *o, const char *where, lb__codec *c, lb_error *err);

#endif /* LB_FORMAT_NUMCODECS_H */
