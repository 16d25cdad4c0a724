/*
 * fuzz_roi.c — ROI text ("[0:10, 5:20]") and id ("-3") parsing; what parses
 * must format and parse back to the same value.
 */
#include "fuzz.h"
#include "labelbin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    if (!text) return 0;
    lb_error err = {0};
    lb_roi roi, roi2;
    if (lb_roi_parse(text, &roi, &err) == 0) {
        char buf[LB_MAX_DIMS * 48 + 8];
        int need = lb_roi_format(&roi, buf, sizeof buf);
        if (need < 0 || (size_t)need >= sizeof buf) abort();
        if (lb_roi_parse(buf, &roi2, &err) != 0 || roi2.ndim != roi.ndim) abort();
        for (int k = 0; k < roi.ndim; k++)
            if (roi2.offset[k] != roi.offset[k] || roi2.shape[k] != roi.shape[k]) abort();
    }
    lb_id id, id2;
    if (lb_id_parse(text, &id, &err) == 0) {
        char buf[32];
        int need = lb_id_format(id, buf, sizeof buf);
        if (need < 0 || (size_t)need >= sizeof buf) abort();
        if (lb_id_parse(buf, &id2, &err) != 0 || id2.bits != id.bits || id2.negative != id.negative)
            abort();
    }
    free(text);
    return 0;
}
