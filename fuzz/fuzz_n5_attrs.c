/*
 * fuzz_n5_attrs.c — N5 attributes.json parsing: dataset keys (dimensions,
 * blockSize, dataType, compression in both forms) and the user-attribute
 * split, through opening the dataset.
 */
#include "dataset/dataset.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_open_and_read("attributes.json", data, size, NULL, 0);
    return 0;
}
