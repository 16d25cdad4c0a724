/*
 * fuzz_n5_attrs.c — N5 attributes.json parsing: dataset keys (dimensions,
 * blockSize, dataType, compression in both forms) and the user-attribute
 * split.
 */
#include <json-c/json.h>

#include "dataset/dataset.h"
#include "fuzz.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_object *meta = NULL;
    lb_error err = {0};
    if (lb__json_parse((const char *)data, size, "attributes.json", &meta, &err)) return 0;
    lb__dataset d;
    memset(&d, 0, sizeof d);
    d.format = LB_FORMAT_N5;
    if (lb__n5_parse(&d, meta, "attributes.json", &err) == 0) {
        char buf[64];
        lb__dataset_fill_json(&d, buf, sizeof buf);
        int64_t cidx[LB_MAX_DIMS] = {0};
        char key[LB_MAX_DIMS * 24];
        lb__n5_chunk_key(&d, cidx, key, sizeof key);
        json_object *back = lb__codec_to_n5(&d.codec, &err);
        json_object_put(back);
    }
    json_object_put(d.attrs);
    json_object_put(meta);
    return 0;
}
