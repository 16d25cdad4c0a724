/*
 * fuzz_config.c — DaCapo config parsing (lb_array_from_config): nested
 * ZarrArrayConfig / BinarizeArrayConfig / MissingAnnotationsMaskConfig
 * objects. Relative file_names resolve against a directory that does not
 * exist, so opening fails cleanly after the config has been parsed.
 */
#include "fuzz.h"
#include "labelbin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    if (!text) return 0;
    lb_array *a = NULL;
    lb_error err = {0};
    if (lb_array_from_config(text, "/nonexistent-labelbin-fuzz", &a, &err) == 0) lb_array_free(a);
    free(text);
    return 0;
}
