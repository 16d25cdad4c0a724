/*
 * fuzz_n5_block.c — N5 block decoding (header: mode, dims, element count;
 * payload through the codec; truncated edge blocks). The first bytes choose
 * the dataset so the fuzzer spends its time in the block, not in JSON:
 *   [0] dataType  [1] compression  [2] rank-1 (0..3)  [3..3+rank) block size
 *   per file dimension (1..16); the rest is the stored block.
 */
#include <stdio.h>

#include "dataset/dataset.h"
#include "fuzz.h"

static const char *const dtypes[] = {"uint8",  "uint16", "uint32",  "uint64", "int8",
                                     "int16",  "int32",  "int64",   "float32", "float64"};
static const char *const codecs[] = {
    "{\"type\":\"raw\"}",
    "{\"type\":\"gzip\",\"level\":-1}",
    "{\"type\":\"gzip\",\"level\":6,\"useZlib\":true}",
    "{\"type\":\"bzip2\",\"blockSize\":9}",
    "{\"type\":\"lz4\",\"blockSize\":65536}",
    "{\"type\":\"xz\",\"preset\":6}",
    "{\"type\":\"zstd\",\"level\":3}",
    "{\"type\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":1,\"blocksize\":0,"
    "\"nthreads\":1}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    const char *dt = dtypes[data[0] % (sizeof dtypes / sizeof *dtypes)];
    const char *cc = codecs[data[1] % (sizeof codecs / sizeof *codecs)];
    int nd = data[2] % 4 + 1;
    if (size < 3 + (size_t)nd) return 0;
    char text[1024], dims[128] = "", bs[128] = "";
    size_t dl = 0, bl = 0;
    for (int k = 0; k < nd; k++) {
        int b = data[3 + k] % 16 + 1;
        /* The array is 1.5 blocks wide so block (0,..) is full and the
         * header may still declare a smaller (truncated) block. */
        dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%s%d", k ? "," : "", b + b / 2);
        bl += (size_t)snprintf(bs + bl, sizeof bs - bl, "%s%d", k ? "," : "", b);
    }
    snprintf(text, sizeof text,
             "{\"dimensions\":[%s],\"blockSize\":[%s],\"dataType\":\"%s\",\"compression\":%s}",
             dims, bs, dt, cc);
    const uint8_t *block = data + 3 + nd;
    size_t nblock = size - 3 - (size_t)nd;
    fuzz_open_and_read("attributes.json", (const uint8_t *)text, strlen(text), block, nblock);
    return 0;
}
