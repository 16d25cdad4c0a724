/*
 * fuzz_cseg.c — the label cache's compact chunk encoding (kernels/cseg.h).
 * Entries come out of a cache that other processes write, so an entry is
 * untrusted: whatever lb__cseg_valid accepts must be read (labels, channel
 * planes, ids of a box) without a byte outside the entry or the box being
 * touched. And what the encoder makes must be accepted and read back
 * exactly. Header bytes (16; shorter inputs are ignored):
 *   [0]      bits 0-1 itemsize 1 << b; bit 2 mode (0 raw entry, 1 labels);
 *            bits 3-5 labels: distinct ids to squash to (none, 1, 2, 3, 5,
 *            9, 17, 300); bit 6 labels: squashed ids spread over the
 *            width (else small); bit 7 labels: also encode with a limit
 *   [1..3]   chunk dims z, y, x: 1 + b % 24 each
 *   [4..6]   box start: b % dims
 *   [7..9]   box extent: 1 + b % (dims - start)
 *   [10]     channels: 1 + b % 70 (fewer when the planes would be too big)
 *   [11]     destination padding: 2 bits per dimension (z low), the box at
 *            dstart = p inside dshape = cnt + 2p (bits 6-7: padding 0..3
 *            only on z)
 *   [12]     the channel function's seed
 *   [13..14] labels: where to damage the encoding (little-endian offset
 *            mod its size)
 *   [15]     labels: the byte xored in there (0: 0x5A)
 * Mode raw entry: the rest is an entry (copied to an 8-aligned buffer of
 * exactly its size). Mode labels: the rest, repeated, is the chunk's labels
 * (C order, native byte order; all zeros when empty).
 */
#include "fuzz.h"
#include "kernels/cseg.h"

#define MAXCH 70

typedef struct chan_user {
    size_t channels;
    unsigned seed;
} chan_user;

/* Channel c of an id: bits of a hash of the id, some channels constant
 * (all on when seed bit 7 is set) so that constant rows and blocks occur. */
static int chan_bit(const chan_user *u, uint64_t id, size_t c) {
    uint64_t h = (id ^ u->seed) * 0x9E3779B97F4A7C15ull;
    if ((u->seed & 0x80) && c % 5 == 0) return 1;
    if ((u->seed & 0x40) && c % 7 == 3) return 0;
    if (u->seed & 0x20) h >>= 40; /* few distinct patterns: blocks agree more */
    return (int)((h >> (c % 64)) ^ (c >= 64 ? h >> 7 : 0)) & 1;
}

static void chan_fn(void *user, uint64_t id, uint64_t *out) {
    const chan_user *u = user;
    /* Writes exactly ceil(channels / 64) words, as the interface promises. */
    size_t words = (u->channels + 63) / 64;
    for (size_t w = 0; w < words; w++) {
        uint64_t x = 0;
        for (size_t c = w * 64; c < u->channels && c < w * 64 + 64; c++)
            x |= (uint64_t)chan_bit(u, id, c) << (c - w * 64);
        out[w] |= x;
    }
}

typedef struct idset {
    uint64_t *v;
    size_t n, cap;
    int oom;
} idset;

static void id_fn(void *user, uint64_t id) {
    idset *s = user;
    if (s->oom) return;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        uint64_t *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) {
            s->oom = 1;
            return;
        }
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = id;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t get(const unsigned char *p, size_t i, size_t w) {
    uint64_t v = 0;
    switch (w) {
    case 1: v = p[i]; break;
    case 2: { uint16_t x; memcpy(&x, p + 2 * i, 2); v = x; break; }
    case 4: { uint32_t x; memcpy(&x, p + 4 * i, 4); v = x; break; }
    default: memcpy(&v, p + 8 * i, 8); break;
    }
    return v;
}

static void put(unsigned char *p, size_t i, uint64_t v, size_t w) {
    switch (w) {
    case 1: p[i] = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p + 2 * i, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p + 4 * i, &x, 4); break; }
    default: memcpy(p + 8 * i, &v, 8); break;
    }
}

/* Read an accepted entry every way through box b (inside dims). When
 * `labels` is given (the chunk, C order) the results must match it; in
 * any case they must agree with each other, and nothing outside the box
 * may be written. */
static void read_entry(const void *e, const int64_t *d, size_t w, const lb__cseg_box *b,
                       size_t channels, unsigned seed, const unsigned char *labels) {
    size_t dn = (size_t)(b->dshape[0] * b->dshape[1] * b->dshape[2]);
    unsigned char *dst = malloc(dn * w);
    uint8_t *planes = malloc(channels * dn);
    idset ids = {0};
    if (!dst || !planes) goto done;
    memset(dst, 0xA5, dn * w);
    lb__cseg_decode_box(e, b, dst);
    chan_user u = {channels, seed};
    memset(planes, 7, channels * dn);
    if (lb__cseg_channels_box(e, b, channels, chan_fn, &u, planes, dn) != 0) goto done;
    lb__cseg_ids_in_box(e, b, id_fn, &ids);
    if (ids.oom) goto done;
    if (ids.n) qsort(ids.v, ids.n, sizeof *ids.v, cmp_u64);
    size_t i = 0;
    for (int64_t z = 0; z < b->dshape[0]; z++)
        for (int64_t y = 0; y < b->dshape[1]; y++)
            for (int64_t x = 0; x < b->dshape[2]; x++, i++) {
                int64_t q[3] = {z - b->dstart[0], y - b->dstart[1], x - b->dstart[2]};
                int inside = 1;
                for (int k = 0; k < 3; k++) inside &= q[k] >= 0 && q[k] < b->cnt[k];
                if (!inside) {
                    /* Untouched outside the box. */
                    for (size_t j = 0; j < w; j++)
                        if (dst[i * w + j] != 0xA5) abort();
                    for (size_t c = 0; c < channels; c++)
                        if (planes[c * dn + i] != 7) abort();
                    continue;
                }
                uint64_t id = get(dst, i, w);
                if (labels) {
                    size_t ci = (size_t)(((b->cstart[0] + q[0]) * d[1] + b->cstart[1] + q[1]) *
                                             d[2] + b->cstart[2] + q[2]);
                    if (get(labels, ci, w) != id) abort();
                }
                for (size_t c = 0; c < channels; c++)
                    if (planes[c * dn + i] != chan_bit(&u, id, c)) abort();
                if (!ids.n || !bsearch(&id, ids.v, ids.n, sizeof *ids.v, cmp_u64)) abort();
            }
done:
    free(ids.v);
    free(planes);
    free(dst);
}

/* A damaged copy of an accepted entry: refused, or read without harm. */
static void read_damaged(const unsigned char *e, size_t n, size_t at, uint8_t x, const int64_t *d,
                         size_t w, const lb__cseg_box *b, size_t channels, unsigned seed) {
    unsigned char *m = malloc(n);
    if (!m) return;
    memcpy(m, e, n);
    m[at % n] ^= x ? x : 0x5A;
    lb__cseg_is_declined(m, n, d, w);
    if (lb__cseg_valid(m, n, d, w)) read_entry(m, d, w, b, channels, seed, NULL);
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 16) return 0;
    size_t w = (size_t)1 << (data[0] & 3);
    int64_t d[3];
    lb__cseg_box b;
    unsigned pad = data[11];
    for (int k = 0; k < 3; k++) {
        d[k] = 1 + data[1 + k] % 24;
        b.cstart[k] = data[4 + k] % d[k];
        b.cnt[k] = 1 + data[7 + k] % (d[k] - b.cstart[k]);
        b.dstart[k] = (pad >> (2 * k)) & 3;
    }
    b.dstart[0] += (pad >> 6) & 3;
    for (int k = 0; k < 3; k++) b.dshape[k] = b.cnt[k] + 2 * b.dstart[k];
    size_t dn = (size_t)(b.dshape[0] * b.dshape[1] * b.dshape[2]);
    size_t channels = 1 + data[10] % MAXCH;
    if (channels * dn > FUZZ_MAX_OUT) channels = FUZZ_MAX_OUT / dn;
    unsigned seed = data[12];
    const uint8_t *rest = data + 16;
    size_t nrest = size - 16;

    if (!(data[0] & 4)) {
        /* A raw entry. */
        unsigned char *e = malloc(nrest ? nrest : 1);
        if (!e) return 0;
        if (nrest) memcpy(e, rest, nrest);
        lb__cseg_is_declined(e, nrest, d, w);
        if (lb__cseg_valid(e, nrest, d, w)) {
            read_entry(e, d, w, &b, channels, seed, NULL);
            /* The whole chunk too. */
            lb__cseg_box all;
            for (int k = 0; k < 3; k++) {
                all.cstart[k] = all.dstart[k] = 0;
                all.cnt[k] = all.dshape[k] = d[k];
            }
            read_entry(e, d, w, &all, 1 + seed % 64, seed, NULL);
        }
        free(e);
        return 0;
    }

    /* Labels: encode, check, read back. */
    size_t nv = (size_t)(d[0] * d[1] * d[2]);
    size_t bound = lb__cseg_bound(d, w);
    unsigned char *labels = calloc(nv, w);
    unsigned char *enc = malloc(bound);
    unsigned char *enc2 = malloc(bound);
    unsigned char *exact = NULL;
    if (!labels || !enc || !enc2 || !bound) goto done;
    if (nrest)
        for (size_t i = 0; i < nv * w; i++) labels[i] = rest[i % nrest];
    static const unsigned squash[8] = {0, 1, 2, 3, 5, 9, 17, 300};
    unsigned k = squash[(data[0] >> 3) & 7];
    if (k) {
        uint64_t mask = w == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * w)) - 1;
        for (size_t i = 0; i < nv; i++) {
            uint64_t v = get(labels, i, w) % k;
            if (data[0] & 0x40) v = (v * 0x9E3779B97F4A7C15ull) ^ (v ? 0 : mask);
            put(labels, i, v & mask, w);
        }
    }
    /* The encoder leaves alignment gaps unwritten: the same background in
     * both buffers, so that the two encodings compare bytewise. */
    memset(enc, 0, bound);
    memset(enc2, 0, bound);
    size_t n = lb__cseg_encode(labels, d, w, enc);
    if (n == 0 || n > bound || n % 8) abort();
    if (data[0] & 0x80) {
        size_t n2 = lb__cseg_encode_limit(labels, d, w, enc2, 1);
        if (n2 != LB__CSEG_DECLINED && (n2 != n || memcmp(enc, enc2, n) != 0)) abort();
    }
    exact = malloc(n);
    if (!exact) goto done;
    memcpy(exact, enc, n);
    if (!lb__cseg_valid(exact, n, d, w) || lb__cseg_is_declined(exact, n, d, w)) abort();
    lb__cseg_box all;
    for (int q = 0; q < 3; q++) {
        all.cstart[q] = all.dstart[q] = 0;
        all.cnt[q] = all.dshape[q] = d[q];
    }
    read_entry(exact, d, w, &all, 1 + seed % 64, seed, labels);
    read_entry(exact, d, w, &b, channels, seed, labels);
    /* The cache's note of a declined chunk is never an encoding. */
    lb__cseg_hdr note;
    size_t nn = lb__cseg_encode_declined(d, w, &note);
    if (!lb__cseg_is_declined(&note, nn, d, w) || lb__cseg_valid(&note, nn, d, w)) abort();
    read_damaged(exact, n, (size_t)data[13] | (size_t)data[14] << 8, data[15], d, w, &b, channels,
                 seed);
done:
    free(exact);
    free(enc2);
    free(enc);
    free(labels);
    return 0;
}
