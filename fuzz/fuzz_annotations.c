/*
 * fuzz_annotations.c — the `labels` annotation attribute (fibsem-tools
 * LabelList, boolean and 2023 string forms) of a parsed .zattrs object.
 */
#include <json-c/json.h>

#include "array/array.h"
#include "fuzz.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_object *attrs = NULL;
    lb_error err = {0};
    if (lb__json_parse((const char *)data, size, ".zattrs", &attrs, &err)) return 0;
    lb_annotations kind;
    lb_id *pna = NULL;
    size_t n = 0;
    if (lb__annotations_parse(attrs, &kind, &pna, &n, &err) == 0 && n && !pna) abort();
    free(pna);
    json_object_put(attrs);
    return 0;
}
