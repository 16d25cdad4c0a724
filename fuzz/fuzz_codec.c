/*
 * fuzz_codec.c — every codec's decoder on arbitrary frames. Header bytes:
 *   [0] codec id (mod the number of codecs)   [1] flags: bit0 exact/upto,
 *   bit1 N5 gzip useZlib   [2..4] output size, 20 bits (<= 1 MiB)
 *   [5] typesize selector (1, 2, 4, 8)
 * the rest is the frame. Decoded output must fit the declared size.
 */
#include "codec/codec.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    lb__codec c;
    memset(&c, 0, sizeof c);
    c.id = (lb__codec_id)(data[0] % (LB__CODEC_CRC32C + 1));
    int exact = !(data[1] & 1);
    c.n5_use_zlib = (data[1] >> 1) & 1;
    size_t cap = ((size_t)data[2] | (size_t)data[3] << 8 | (size_t)data[4] << 16) % (FUZZ_MAX_OUT + 1);
    size_t typesize = (size_t)1 << (data[5] & 3);
    const uint8_t *frame = data + 6;
    size_t n = size - 6;
    /* An exact-size heap buffer so ASan catches writes past the end. */
    uint8_t *dst = malloc(cap ? cap : 1);
    if (!dst) return 0;
    lb_error err = {0};
    if (exact) {
        lb__codec_decode(&c, frame, n, dst, cap, typesize, &err);
    } else {
        size_t got = 0;
        if (lb__codec_decode_upto(&c, frame, n, dst, cap, &got, typesize, &err) == 0 && got > cap)
            abort(); /* claims more output than the buffer holds */
    }
    free(dst);
    return 0;
}
