/*
 * cseg.c — encode decoded label chunks into per-block id tables and packed
 * indices, and read them back: as labels (a box of the chunk), as channel
 * planes (each block's ids mapped to channel bits once) or as the ids a box
 * uses. See cseg.h for the layout.
 */
#include "kernels/cseg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define B 8                 /* block edge                                */
#define BV (B * B * B)      /* voxels in a full block                    */
#define HSLOTS 1024         /* per-block id hash (> BV, power of two)    */

static size_t align8(size_t n) {
    return (n + 7) & ~(size_t)7;
}

static int mul_ovf(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return 1;
    *out = a * b;
    return 0;
}

static int add_ovf(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 1;
    *out = a + b;
    return 0;
}

/* Blocks per dimension and the block shape of a chunk of dims. */
static void geometry(const int64_t *dims, uint32_t *bd, uint32_t *nb) {
    for (int k = 0; k < 3; k++) {
        bd[k] = dims[k] < B ? (uint32_t)dims[k] : B;
        nb[k] = bd[k] ? (uint32_t)((dims[k] + bd[k] - 1) / bd[k]) : 0;
    }
}

/* A header for a chunk of `dims` and `itemsize`, everything else zero. */
static void init_hdr(lb__cseg_hdr *h, const int64_t *dims, size_t itemsize, uint8_t flags) {
    memset(h, 0, sizeof *h);
    h->magic = LB__CSEG_MAGIC;
    h->itemsize = (uint8_t)itemsize;
    h->flags = flags;
    for (int k = 0; k < 3; k++) h->dims[k] = (uint32_t)dims[k];
    geometry(dims, h->bdims, h->nb);
}

static unsigned bits_for(size_t n) {
    if (n <= 1) return 0;
    if (n <= 2) return 1;
    if (n <= 4) return 2;
    if (n <= 16) return 4;
    if (n <= 256) return 8;
    return 16;
}

size_t lb__cseg_bound(const int64_t *dims, size_t itemsize) {
    uint32_t bd[3], nb[3];
    for (int k = 0; k < 3; k++)
        if (dims[k] < 1 || dims[k] > UINT32_MAX / 2) return 0;
    geometry(dims, bd, nb);
    size_t nblocks, v = (size_t)bd[0] * bd[1] * bd[2], t, tab, idx, total;
    if (mul_ovf((size_t)nb[0] * nb[1], nb[2], &nblocks)) return 0;
    if (nblocks > UINT32_MAX) return 0;
    if (mul_ovf(nblocks, v, &t) || mul_ovf(t, itemsize, &tab)) return 0;
    if (t > UINT32_MAX) return 0; /* table and word offsets are 32-bit */
    if (mul_ovf(nblocks, (v + 1) / 2 * 4, &idx)) return 0;
    total = align8(sizeof(lb__cseg_hdr)) + align8(nblocks * sizeof(lb__cseg_block));
    if (add_ovf(total, align8(tab), &total) || add_ovf(total, idx + 8, &total)) return 0;
    return total;
}

static uint64_t load(const unsigned char *p, size_t w) {
    switch (w) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static void store(unsigned char *p, uint64_t v, size_t w) {
    switch (w) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

/* Gather the block at (z0, y0, x0) into vals (bd[0]*bd[1]*bd[2] voxels, C
 * order); voxels past the chunk's edge repeat the block's first voxel so
 * that they add no id. Width-specialised: this is the encoder's hot loop. */
#define GATHER(T)                                                                  \
    static void gather_##T(const unsigned char *chunk, const int64_t *dims,        \
                           const uint32_t *bd, int64_t z0, int64_t y0, int64_t x0, \
                           uint64_t *vals) {                                       \
        const T *c = (const T *)(const void *)chunk;                               \
        int64_t ze = z0 + bd[0] < dims[0] ? z0 + bd[0] : dims[0];                  \
        int64_t ye = y0 + bd[1] < dims[1] ? y0 + bd[1] : dims[1];                  \
        int64_t xe = x0 + bd[2] < dims[2] ? x0 + bd[2] : dims[2];                  \
        uint64_t first = c[(z0 * dims[1] + y0) * dims[2] + x0];                    \
        size_t v = 0;                                                              \
        for (int64_t z = z0; z < z0 + bd[0]; z++)                                  \
            for (int64_t y = y0; y < y0 + bd[1]; y++) {                            \
                if (z >= ze || y >= ye) {                                          \
                    for (uint32_t i = 0; i < bd[2]; i++) vals[v++] = first;        \
                    continue;                                                      \
                }                                                                  \
                const T *row = c + (z * dims[1] + y) * dims[2];                    \
                int64_t x = x0;                                                    \
                for (; x < xe; x++) vals[v++] = row[x];                            \
                for (; x < x0 + bd[2]; x++) vals[v++] = first;                     \
            }                                                                      \
    }
GATHER(uint8_t)
GATHER(uint16_t)
GATHER(uint32_t)
GATHER(uint64_t)

/* Which blocks of the row of blocks at (z0, y0) are one value, reading the
 * chunk in memory order (each row of voxels once, front to back), which
 * is what keeps the encoder at memory speed: uni[bx] = 1 when block bx is
 * one value, first[bx] that value. */
#define SCAN_ROW(T)                                                                \
    static void scan_row_##T(const unsigned char *chunk, const int64_t *dims,      \
                             const uint32_t *bd, int64_t z0, int64_t y0,           \
                             uint32_t nbx, uint8_t *uni, uint64_t *first) {        \
        const T *c = (const T *)(const void *)chunk;                               \
        int64_t ze = z0 + bd[0] < dims[0] ? z0 + bd[0] : dims[0];                  \
        int64_t ye = y0 + bd[1] < dims[1] ? y0 + bd[1] : dims[1];                  \
        const T *r0 = c + (z0 * dims[1] + y0) * dims[2];                           \
        for (uint32_t bx = 0; bx < nbx; bx++) {                                    \
            first[bx] = r0[(int64_t)bx * bd[2]];                                   \
            uni[bx] = 1;                                                           \
        }                                                                          \
        if (bd[2] == B && dims[2] == (int64_t)nbx * B) {                           \
            /* Whole blocks along x: fixed-length, vectorisable rows. */           \
            for (int64_t z = z0; z < ze; z++)                                      \
                for (int64_t y = y0; y < ye; y++) {                                \
                    const T *row = c + (z * dims[1] + y) * dims[2];                \
                    for (uint32_t bx = 0; bx < nbx; bx++) {                        \
                        const T *r = row + (size_t)bx * B;                         \
                        T v = (T)first[bx];                                        \
                        T acc = (T)((r[0] ^ v) | (r[1] ^ v) | (r[2] ^ v) |         \
                                    (r[3] ^ v) | (r[4] ^ v) | (r[5] ^ v) |         \
                                    (r[6] ^ v) | (r[7] ^ v));                      \
                        uni[bx] &= acc == 0;                                       \
                    }                                                              \
                }                                                                  \
            return;                                                                \
        }                                                                          \
        for (int64_t z = z0; z < ze; z++)                                          \
            for (int64_t y = y0; y < ye; y++) {                                    \
                const T *row = c + (z * dims[1] + y) * dims[2];                    \
                for (uint32_t bx = 0; bx < nbx; bx++) {                            \
                    int64_t x0 = (int64_t)bx * bd[2];                              \
                    int64_t xe = x0 + bd[2] < dims[2] ? x0 + bd[2] : dims[2];      \
                    T v = (T)first[bx], acc = 0;                                   \
                    for (int64_t x = x0; x < xe; x++) acc |= (T)(row[x] ^ v);      \
                    uni[bx] &= acc == 0;                                           \
                }                                                                  \
            }                                                                      \
    }
SCAN_ROW(uint8_t)
SCAN_ROW(uint16_t)
SCAN_ROW(uint32_t)
SCAN_ROW(uint64_t)

/* The encoder's per-chunk scratch: a hash of the current block's ids and
 * a small map of single-id tables already written (background blocks share
 * one table entry). */
typedef struct enc {
    uint16_t slot[HSLOTS];   /* table position + 1 */
    uint32_t stamp[HSLOTS];
    uint32_t gen;
    uint64_t one_id[64];     /* direct-mapped: id -> table position */
    uint32_t one_pos[64];
    uint8_t one_ok[64];
} enc;

static inline size_t hslot(uint64_t v) {
    return (size_t)((v * 0x9E3779B97F4A7C15ull) >> 54); /* 10 bits */
}

/* Pack v indices at `bits` (1..16, dividing 32) into 32-bit words, the
 * first index in the lowest bits; a word at a time. */
static void pack(const uint16_t *idx, size_t v, unsigned bits, uint32_t *w) {
    size_t per = 32 / bits, nw = (v + per - 1) / per;
    for (size_t k = 0; k < nw; k++) {
        uint32_t x = 0;
        size_t j0 = k * per, m = v - j0 < per ? v - j0 : per;
        for (size_t j = 0; j < m; j++) x |= (uint32_t)idx[j0 + j] << (j * bits);
        w[k] = x;
    }
}

size_t lb__cseg_encode(const void *chunk, const int64_t *dims, size_t itemsize, void *out) {
    return lb__cseg_encode_limit(chunk, dims, itemsize, out, 0);
}

size_t lb__cseg_encode_limit(const void *chunk, const int64_t *dims, size_t itemsize, void *out,
                             int limit) {
    lb__cseg_hdr *h = out;
    init_hdr(h, dims, itemsize, 0);
    h->nblocks = h->nb[0] * h->nb[1] * h->nb[2];
    const uint32_t *bd = h->bdims;
    size_t v = (size_t)bd[0] * bd[1] * bd[2];
    size_t desc_off = align8(sizeof *h);
    lb__cseg_block *blk = (lb__cseg_block *)((unsigned char *)out + desc_off);
    size_t table_off = desc_off + align8((size_t)h->nblocks * sizeof *blk);
    unsigned char *table = (unsigned char *)out + table_off;
    /* Indices go to a scratch area past the largest possible table, then
     * move down behind the real table. */
    size_t max_tab = align8((size_t)h->nblocks * v * itemsize);
    uint32_t *words = (uint32_t *)(void *)(table + max_tab);
    size_t nids = 0, nwords = 0;
    int all_same = 1;
    uint64_t same = 0;
    enc *e = calloc(1, sizeof *e);
    uint64_t vals[BV];
    uint16_t idx[BV];
    uint64_t ids[BV];
    uint64_t *row_first = malloc((size_t)h->nb[2] * 9 + 1);
    uint8_t *row_uni = (uint8_t *)(row_first + h->nb[2]);
    if (!e || !row_first) {
        free(e);
        free(row_first);
        return 0;
    }
    const unsigned char *c = chunk;
    uint32_t b = 0;
    for (uint32_t bz = 0; bz < h->nb[0]; bz++)
        for (uint32_t by = 0; by < h->nb[1]; by++)
            for (uint32_t bx = 0; bx < h->nb[2]; bx++, b++) {
                int64_t z0 = (int64_t)bz * bd[0], y0 = (int64_t)by * bd[1],
                        x0 = (int64_t)bx * bd[2];
                if (bx == 0) switch (itemsize) {
                case 1: scan_row_uint8_t(c, dims, bd, z0, y0, h->nb[2], row_uni, row_first); break;
                case 2: scan_row_uint16_t(c, dims, bd, z0, y0, h->nb[2], row_uni, row_first); break;
                case 4: scan_row_uint32_t(c, dims, bd, z0, y0, h->nb[2], row_uni, row_first); break;
                default: scan_row_uint64_t(c, dims, bd, z0, y0, h->nb[2], row_uni, row_first); break;
                }
                uint64_t v0 = row_first[bx];
                int same1 = row_uni[bx];
                if (!same1) switch (itemsize) {
                case 1: gather_uint8_t(c, dims, bd, z0, y0, x0, vals); break;
                case 2: gather_uint16_t(c, dims, bd, z0, y0, x0, vals); break;
                case 4: gather_uint32_t(c, dims, bd, z0, y0, x0, vals); break;
                default: gather_uint64_t(c, dims, bd, z0, y0, x0, vals); break;
                }
                size_t n;
                if (same1) {
                    n = 1;
                    ids[0] = v0;
                } else {
                    /* Distinct ids in first-seen order; runs cost one compare. */
                    if (++e->gen == 0) {
                        memset(e->stamp, 0, sizeof e->stamp);
                        e->gen = 1;
                    }
                    n = 0;
                    uint64_t prev = 0;
                    uint16_t pidx = 0;
                    size_t rowv = bd[2], planev = (size_t)bd[1] * bd[2];
                    for (size_t j = 0; j < v; j++) {
                        uint64_t x = vals[j];
                        if (j > 0 && x == prev) {
                            idx[j] = pidx;
                            continue;
                        }
                        /* Labels are smooth: the voxel one row or one plane
                         * back usually has this id already. */
                        if (j >= rowv && x == vals[j - rowv]) {
                            idx[j] = pidx = idx[j - rowv];
                            prev = x;
                            continue;
                        }
                        if (j >= planev && x == vals[j - planev]) {
                            idx[j] = pidx = idx[j - planev];
                            prev = x;
                            continue;
                        }
                        size_t s = hslot(x);
                        for (;;) {
                            if (e->stamp[s] != e->gen) {
                                e->stamp[s] = e->gen;
                                e->slot[s] = (uint16_t)(n + 1);
                                ids[n++] = x;
                                break;
                            }
                            if (ids[e->slot[s] - 1] == x) break;
                            s = (s + 1) & (HSLOTS - 1);
                        }
                        pidx = (uint16_t)(e->slot[s] - 1);
                        prev = x;
                        idx[j] = pidx;
                    }
                }
                if (b == 0) same = ids[0];
                if (n != 1 || ids[0] != same) all_same = 0;
                /* The table: a single id shares an earlier entry when it can. */
                uint32_t tab;
                size_t m = (size_t)(ids[0] * 0x9E3779B97F4A7C15ull >> 58);
                if (n == 1 && e->one_ok[m] && e->one_id[m] == ids[0]) {
                    tab = e->one_pos[m];
                } else {
                    tab = (uint32_t)nids;
                    for (size_t j = 0; j < n; j++) store(table + (nids + j) * itemsize, ids[j], itemsize);
                    nids += n;
                    if (n == 1) {
                        e->one_ok[m] = 1;
                        e->one_id[m] = ids[0];
                        e->one_pos[m] = tab;
                    }
                }
                unsigned bits = bits_for(n);
                blk[b].tab = tab;
                blk[b].idx = (uint32_t)nwords;
                blk[b].n = (uint16_t)n;
                blk[b].bits = (uint8_t)bits;
                blk[b].pad = 0;
                if (bits) {
                    size_t nw = (v * bits + 31) / 32;
                    pack(idx, v, bits, words + nwords);
                    nwords += nw;
                }
                /* Past a row of blocks, more than a byte per voxel so far:
                 * the chunk will not compress, give up early. */
                if (limit && bx + 1 == h->nb[2] &&
                    (size_t)(b + 1) * sizeof *blk + nids * itemsize + nwords * 4 >
                        (size_t)(b + 1) * v) {
                    free(e);
                    free(row_first);
                    return LB__CSEG_DECLINED;
                }
            }
    free(e);
    free(row_first);
    if (all_same && h->nblocks > 0) return lb__cseg_encode_uniform(same, dims, itemsize, out);
    h->nids = nids;
    h->table_off = table_off;
    h->index_off = table_off + align8(nids * itemsize);
    memmove((unsigned char *)out + h->index_off, words, nwords * 4);
    h->bytes = align8(h->index_off + nwords * 4);
    /* The alignment gaps are zeroed: the encoding goes to a file other
     * processes map, which must not carry leftovers of this one's memory. */
    unsigned char *o = out;
    size_t desc_end = desc_off + (size_t)h->nblocks * sizeof *blk;
    memset(o + sizeof *h, 0, desc_off - sizeof *h);
    memset(o + desc_end, 0, table_off - desc_end);
    memset(o + table_off + nids * itemsize, 0, h->index_off - table_off - nids * itemsize);
    memset(o + h->index_off + nwords * 4, 0, h->bytes - h->index_off - nwords * 4);
    return (size_t)h->bytes;
}

size_t lb__cseg_encode_uniform(uint64_t v, const int64_t *dims, size_t itemsize, void *out) {
    lb__cseg_hdr *h = out;
    init_hdr(h, dims, itemsize, LB__CSEG_UNIFORM);
    h->nids = 1;
    h->table_off = align8(sizeof *h);
    h->index_off = h->table_off + 8;
    h->bytes = h->index_off;
    unsigned char *t = (unsigned char *)out + h->table_off;
    memset(t, 0, 8);
    store(t, v, itemsize);
    return (size_t)h->bytes;
}

size_t lb__cseg_encode_declined(const int64_t *dims, size_t itemsize, void *out) {
    lb__cseg_hdr *h = out;
    init_hdr(h, dims, itemsize, LB__CSEG_DECLINED_MARK);
    h->bytes = sizeof *h;
    return sizeof *h;
}

int lb__cseg_is_declined(const void *p, size_t n, const int64_t *dims, size_t itemsize) {
    lb__cseg_hdr m;
    if (n != sizeof m) return 0;
    lb__cseg_encode_declined(dims, itemsize, &m);
    return memcmp(p, &m, sizeof m) == 0;
}

/* 1 when each of the v indices packed at `bits` (1..16) in w is below n
 * (< 2^bits), a word at a time: the even and the odd fields go to lanes
 * of 2 * bits bits, where adding 2^bits - n carries into the lane's bit
 * `bits` exactly when the field is n or more. */
static int indices_below(const uint32_t *w, unsigned bits, size_t v, unsigned n) {
    uint64_t lane1 = 0;
    for (unsigned s = 0; s < 32; s += 2 * bits) lane1 |= (uint64_t)1 << s;
    uint64_t fmask = (((uint64_t)1 << bits) - 1) * lane1;
    uint64_t add = (((uint64_t)1 << bits) - n) * lane1, top = ((uint64_t)1 << bits) * lane1;
    size_t per = 32 / bits, full = v / per, rem = v % per;
    uint64_t acc = 0;
    for (size_t k = 0; k < full; k++) {
        uint64_t x = w[k];
        acc |= ((x & fmask) + add) | (((x >> bits) & fmask) + add);
    }
    if (rem) {
        uint64_t x = w[full] & (((uint64_t)1 << (rem * bits)) - 1); /* fields past v: no index */
        acc |= ((x & fmask) + add) | (((x >> bits) & fmask) + add);
    }
    return (acc & top) == 0;
}

int lb__cseg_valid(const void *p, size_t n, const int64_t *dims, size_t itemsize) {
    const lb__cseg_hdr *h = p;
    if (n < sizeof *h || h->magic != LB__CSEG_MAGIC || h->itemsize != itemsize ||
        h->bytes != n)
        return 0;
    uint32_t bd[3], nb[3];
    geometry(dims, bd, nb);
    for (int k = 0; k < 3; k++)
        if (h->dims[k] != (uint64_t)dims[k] || h->bdims[k] != bd[k] || h->nb[k] != nb[k])
            return 0;
    /* Indices are read as 32-bit words. */
    if (h->table_off > n || h->index_off > n || h->table_off > h->index_off ||
        h->index_off % 4)
        return 0;
    if (h->nids > (h->index_off - h->table_off) / itemsize || h->nids == 0) return 0;
    if (h->flags & LB__CSEG_UNIFORM) return 1;
    size_t desc_off = align8(sizeof *h);
    if (h->nblocks != nb[0] * nb[1] * nb[2] ||
        desc_off + (size_t)h->nblocks * sizeof(lb__cseg_block) > h->table_off)
        return 0;
    const lb__cseg_block *blk = (const lb__cseg_block *)((const unsigned char *)p + desc_off);
    size_t v = (size_t)bd[0] * bd[1] * bd[2];
    size_t nwords = (n - h->index_off) / 4;
    const uint32_t *words =
        (const uint32_t *)(const void *)((const unsigned char *)p + h->index_off);
    for (uint32_t b = 0; b < h->nblocks; b++) {
        const lb__cseg_block *k = &blk[b];
        if (k->n == 0 || k->n > v || (uint64_t)k->tab + k->n > h->nids ||
            k->bits != bits_for(k->n))
            return 0;
        size_t nw = (v * k->bits + 31) / 32;
        if ((size_t)k->idx + nw > nwords) return 0;
        /* Every index names one of the block's ids: the readers look
         * indices up in the block's table (and in per-block arrays of n
         * entries) unchecked. Only widths with room for more than n can
         * hold a bad one. */
        if (k->bits && k->n < (1u << k->bits) && !indices_below(words + k->idx, k->bits, v, k->n))
            return 0;
    }
    return 1;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct view {
    const lb__cseg_hdr *h;
    const lb__cseg_block *blk;
    const unsigned char *table;
    const uint32_t *words;
    size_t w; /* itemsize */
} view;

static void view_of(const void *cseg, view *v) {
    v->h = cseg;
    v->blk = (const lb__cseg_block *)((const unsigned char *)cseg + align8(sizeof *v->h));
    v->table = (const unsigned char *)cseg + v->h->table_off;
    v->words = (const uint32_t *)(const void *)((const unsigned char *)cseg + v->h->index_off);
    v->w = v->h->itemsize;
}

static inline unsigned index_at(const uint32_t *w, unsigned bits, size_t j) {
    return (w[(j * bits) >> 5] >> ((j * bits) & 31)) & ((1u << bits) - 1);
}

/* The indices of voxels j .. j + len - 1 of a block (len <= 8). A whole
 * row of 8 starting at a multiple of 8 is 8 * bits bits from a byte
 * boundary: read at once. */
static inline void row_indices(const uint32_t *w, unsigned bits, size_t j, size_t len,
                               unsigned *ix) {
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (len == B && (j & 7) == 0) {
        const uint8_t *p = (const uint8_t *)w + j * bits / 8;
        switch (bits) {
        case 1:
            for (unsigned x = 0; x < B; x++) ix[x] = (p[0] >> x) & 1u;
            return;
        case 2: {
            uint16_t v;
            memcpy(&v, p, 2);
            for (unsigned x = 0; x < B; x++) ix[x] = (v >> (2 * x)) & 3u;
            return;
        }
        case 4: {
            uint32_t v;
            memcpy(&v, p, 4);
            for (unsigned x = 0; x < B; x++) ix[x] = (v >> (4 * x)) & 15u;
            return;
        }
        case 8:
            for (unsigned x = 0; x < B; x++) ix[x] = p[x];
            return;
        case 16:
            for (unsigned x = 0; x < B; x++) ix[x] = p[2 * x] | (unsigned)p[2 * x + 1] << 8;
            return;
        default: break;
        }
    }
#endif
    for (size_t x = 0; x < len; x++) ix[x] = index_at(w, bits, j + x);
}

/* Walk the blocks a box touches: for each, the part of the box inside it
 * (chunk coordinates [lo, hi) per dimension). */
typedef void (*block_fn)(void *ctx, const view *v, const lb__cseg_block *blk,
                         const int64_t *o, const int64_t *lo, const int64_t *hi);

static void walk(const view *v, const lb__cseg_box *b, block_fn fn, void *ctx) {
    const uint32_t *bd = v->h->bdims;
    int64_t lo[3], hi[3], o[3], b0[3], b1[3];
    for (int k = 0; k < 3; k++) {
        if (b->cnt[k] <= 0) return;
        b0[k] = b->cstart[k] / bd[k];
        b1[k] = (b->cstart[k] + b->cnt[k] - 1) / bd[k];
    }
    for (int64_t z = b0[0]; z <= b1[0]; z++)
        for (int64_t y = b0[1]; y <= b1[1]; y++)
            for (int64_t x = b0[2]; x <= b1[2]; x++) {
                int64_t bi[3] = {z, y, x};
                for (int k = 0; k < 3; k++) {
                    o[k] = bi[k] * bd[k];
                    lo[k] = b->cstart[k] > o[k] ? b->cstart[k] : o[k];
                    int64_t e = b->cstart[k] + b->cnt[k], be = o[k] + bd[k];
                    hi[k] = e < be ? e : be;
                }
                const lb__cseg_block *blk = NULL;
                if (!(v->h->flags & LB__CSEG_UNIFORM))
                    blk = &v->blk[((size_t)z * v->h->nb[1] + (size_t)y) * v->h->nb[2] + (size_t)x];
                fn(ctx, v, blk, o, lo, hi);
            }
}

/* Offset in dst (voxels) of chunk voxel (z, y, x). */
static inline size_t dst_at(const lb__cseg_box *b, int64_t z, int64_t y, int64_t x) {
    return (size_t)(((b->dstart[0] + z - b->cstart[0]) * b->dshape[1] + b->dstart[1] + y -
                     b->cstart[1]) * b->dshape[2] + b->dstart[2] + x - b->cstart[2]);
}

typedef struct decode_ctx {
    const lb__cseg_box *b;
    unsigned char *dst;
} decode_ctx;

static void fill_run(unsigned char *d, uint64_t v, size_t n, size_t w) {
    switch (w) {
    case 1: memset(d, (int)(uint8_t)v, n); break;
    case 2: for (size_t i = 0; i < n; i++) store(d + 2 * i, v, 2); break;
    case 4: for (size_t i = 0; i < n; i++) store(d + 4 * i, v, 4); break;
    default: for (size_t i = 0; i < n; i++) store(d + 8 * i, v, 8); break;
    }
}

static void decode_block(void *vctx, const view *v, const lb__cseg_block *blk,
                         const int64_t *o, const int64_t *lo, const int64_t *hi) {
    decode_ctx *c = vctx;
    const uint32_t *bd = v->h->bdims;
    size_t w = v->w, len = (size_t)(hi[2] - lo[2]);
    const unsigned char *tab = v->table + (blk ? (size_t)blk->tab * w : 0);
    unsigned bits = blk ? blk->bits : 0;
    for (int64_t z = lo[0]; z < hi[0]; z++)
        for (int64_t y = lo[1]; y < hi[1]; y++) {
            unsigned char *d = c->dst + dst_at(c->b, z, y, lo[2]) * w;
            if (!bits) {
                fill_run(d, load(tab, w), len, w);
                continue;
            }
            const uint32_t *words = v->words + blk->idx;
            size_t j = ((size_t)(z - o[0]) * bd[1] + (size_t)(y - o[1])) * bd[2] +
                       (size_t)(lo[2] - o[2]);
            for (size_t i = 0; i < len; i++)
                memcpy(d + i * w, tab + index_at(words, bits, j + i) * w, w);
        }
}

void lb__cseg_decode_box(const void *cseg, const lb__cseg_box *b, void *dst) {
    view v;
    view_of(cseg, &v);
    decode_ctx c = {b, dst};
    walk(&v, b, decode_block, &c);
}

/* 8 bits -> 8 bytes of 0/1 (bit i -> byte i). */
static inline uint64_t expand8(unsigned m) {
    uint64_t e = m & 0xFFu;
    e = (e | (e << 28)) & 0x0000000F0000000Full;
    e = (e | (e << 14)) & 0x0003000300030003ull;
    e = (e | (e << 7)) & 0x0101010101010101ull;
    return e;
}

static inline void put_row(uint8_t *d, uint64_t bytes01, size_t len) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < len; i++) d[i] = (uint8_t)(bytes01 >> (8 * i)) & 1;
#else
    if (len == 8) memcpy(d, &bytes01, 8);
    else memcpy(d, &bytes01, len);
#endif
}

/* Output planes are written once and are larger than the caches: their
 * bytes go out with streaming stores where the CPU has them (no read of
 * each line before it is written), 16-byte aligned, the ends with plain
 * stores. stream_done orders them before the planes are read. */
static inline void stream_fill(uint8_t *d, int v, size_t n) {
#if defined(__SSE2__)
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    if (n >= 64) {
        if (head) memset(d, v, head);
        d += head;
        n -= head;
        __m128i x = _mm_set1_epi8((char)v);
        for (; n >= 16; n -= 16, d += 16) _mm_stream_si128((__m128i *)(void *)d, x);
    }
#endif
    if (n) memset(d, v, n);
}

/* A plane's constant runs are put off and joined while they follow each
 * other with the same value (a channel off over a whole ROI is one fill,
 * not one per row of blocks): pending_fill streams out the run so far when
 * the next does not continue it, pending_flush before anything else is
 * written to the plane and at the end. */
typedef struct pending {
    uint8_t *d;
    size_t n;
    int v;
} pending;

static inline void pending_flush(pending *p) {
    if (p->n) stream_fill(p->d, p->v, p->n);
    p->n = 0;
}

static inline void pending_fill(pending *p, uint8_t *d, int v, size_t n) {
    if (p->n && p->d + p->n == d && p->v == v) {
        p->n += n;
        return;
    }
    pending_flush(p);
    *p = (pending){d, n, v};
}

static inline void stream_copy(uint8_t *d, const uint8_t *s, size_t n) {
#if defined(__SSE2__)
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    if (n >= 64) {
        memcpy(d, s, head);
        d += head;
        s += head;
        n -= head;
        for (; n >= 16; n -= 16, d += 16, s += 16)
            _mm_stream_si128((__m128i *)(void *)d,
                             _mm_loadu_si128((const __m128i *)(const void *)s));
    }
#endif
    memcpy(d, s, n);
}

static inline void stream_done(void) {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

typedef struct chan_ctx {
    const lb__cseg_box *b;
    size_t channels, words;
    lb__cseg_channels_fn fn;
    void *user;
    uint8_t *out;
    size_t plane_stride;
    uint64_t *bits;  /* BV * words: channel set per table id of the block */
    uint8_t *state;  /* per channel: 0 off for all ids, 1 on for all, 2 mixed */
} chan_ctx;

static inline int has(const uint64_t *set, size_t c) {
    return (int)((set[c >> 6] >> (c & 63)) & 1u);
}

static void chan_block(void *vctx, const view *v, const lb__cseg_block *blk, const int64_t *o,
                       const int64_t *lo, const int64_t *hi) {
    chan_ctx *c = vctx;
    const uint32_t *bd = v->h->bdims;
    size_t w = v->w, n = blk ? blk->n : 1, len = (size_t)(hi[2] - lo[2]);
    const unsigned char *tab = v->table + (blk ? (size_t)blk->tab * w : 0);
    unsigned bits = blk ? blk->bits : 0;
    for (size_t i = 0; i < n; i++) {
        memset(c->bits + i * c->words, 0, c->words * 8);
        c->fn(c->user, load(tab + i * w, w), c->bits + i * c->words);
    }
    for (size_t ch = 0; ch < c->channels; ch++) {
        int on = 0, off = 0;
        for (size_t i = 0; i < n && !(on && off); i++) {
            if (has(c->bits + i * c->words, ch)) on = 1;
            else off = 1;
        }
        c->state[ch] = (uint8_t)(on && off ? 2 : on);
    }
    const uint32_t *words = blk ? v->words + blk->idx : NULL;
    unsigned short ix[B];
    for (int64_t z = lo[0]; z < hi[0]; z++)
        for (int64_t y = lo[1]; y < hi[1]; y++) {
            size_t d = dst_at(c->b, z, y, lo[2]);
            size_t j = ((size_t)(z - o[0]) * bd[1] + (size_t)(y - o[1])) * bd[2] +
                       (size_t)(lo[2] - o[2]);
            if (bits)
                for (size_t i = 0; i < len; i++) ix[i] = (unsigned short)index_at(words, bits, j + i);
            for (size_t ch = 0; ch < c->channels; ch++) {
                uint8_t *dst = c->out + ch * c->plane_stride + d;
                uint8_t s = c->state[ch];
                if (s < 2) {
                    put_row(dst, s ? 0x0101010101010101ull : 0, len);
                    continue;
                }
                unsigned m = 0;
                for (size_t i = 0; i < len; i++)
                    m |= (unsigned)has(c->bits + (size_t)ix[i] * c->words, ch) << i;
                put_row(dst, expand8(m), len);
            }
        }
}

/* 8 bytes at p, in memory order the bytes of w from the lowest. */
static inline void put_word(uint8_t *p, uint64_t w) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    memcpy(p, &w, 8);
}

/* One plane's row: out[x] = bit sh of src[x], for n bytes; whole 16-byte
 * vectors, so up to 15 bytes past n of both are touched. */
static inline void channel_row(uint8_t *out, const uint8_t *src, unsigned sh, size_t n) {
#if defined(__SSE2__)
    const __m128i one = _mm_set1_epi8(1), shv = _mm_cvtsi32_si128((int)sh);
    for (size_t x = 0; x < n; x += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(src + x));
        _mm_storeu_si128((__m128i *)(void *)(out + x), _mm_and_si128(_mm_srl_epi16(v, shv), one));
    }
#else
    for (size_t x = 0; x < n; x++) out[x] = (uint8_t)((src[x] >> sh) & 1u);
#endif
}

/* The fast path for up to 64 channels, over a region made of the boxes of
 * several chunks (a ROI), row by row: each block's ids are mapped to
 * channel sets once; then, for each row of the region, every plane's row is
 * written left to right across all the chunks in one sweep (planes are
 * written sequentially, whole cache lines, as a memset would), channels
 * that are constant over the row with one fill, channels constant over a
 * block from a row pattern, and only channels that differ inside a block
 * from its indices. */
typedef struct bprep {
    uint64_t on_all, mixed; /* channel sets: on for every id / not constant */
    uint64_t *bits;         /* channel set per table id                      */
    const uint32_t *words;  /* indices                                       */
    unsigned bitw;          /* index width (0: one id)                       */
} bprep;

typedef struct pinfo {
    view v;
    int64_t b0[3], nb[3]; /* the blocks the part's box touches */
    bprep *prep;          /* nb[0]*nb[1]*nb[2] (one for a uniform chunk) */
} pinfo;

typedef struct xseg {
    size_t px;        /* part index along x                  */
    int64_t bxi;      /* block index along x, from the part's b0 */
    int64_t cx0, ox;  /* first voxel, block origin (chunk x) */
    size_t len, dx;   /* voxels, offset in the region row    */
} xseg;

/* Along one dimension: part index, chunk coordinate of region coordinate r. */
static void locate(const lb__cseg_part *parts, const int64_t *np, int dim, int64_t r,
                   size_t *pi, int64_t *c) {
    size_t stride = dim == 0 ? (size_t)(np[1] * np[2]) : dim == 1 ? (size_t)np[2] : 1;
    size_t p = 0;
    while ((int64_t)p + 1 < np[dim] && r >= parts[p * stride].cnt[dim]) {
        r -= parts[p * stride].cnt[dim];
        p++;
    }
    *pi = p;
    *c = parts[p * stride].cstart[dim] + r;
}

int lb__cseg_channels_region(const lb__cseg_part *parts, const int64_t *np,
                             const int64_t *dshape, const int64_t *dstart, int64_t z0,
                             int64_t z1, size_t channels, lb__cseg_channels_fn fn, void *user,
                             uint8_t *out, size_t ps) {
    size_t nparts = (size_t)(np[0] * np[1] * np[2]);
    if (!nparts || z0 >= z1 || channels == 0 || channels > 64) return channels > 64 ? -1 : 0;
    const uint32_t *bd = ((const lb__cseg_hdr *)parts[0].cseg)->bdims;
    int rc = -1;
    pinfo *P = calloc(nparts, sizeof *P);
    bprep *preps = NULL;
    uint64_t *idbits = NULL;
    uint8_t *scratch = NULL;
    if (!P) return -1;
    /* Blocks per part and ids in all, of the region's rows z0..z1 only (a
     * part whose rows all lie outside has no blocks). */
    size_t nprep = 0, nid = 0, slab = (size_t)(np[1] * np[2]);
    int64_t zs = 0; /* the region row where the parts of this z come in */
    for (size_t i = 0; i < nparts; i++) {
        pinfo *pi = &P[i];
        if (i && i % slab == 0) zs += parts[i - slab].cnt[0];
        view_of(parts[i].cseg, &pi->v);
        for (int k = 0; k < 3; k++) {
            pi->b0[k] = parts[i].cstart[k] / bd[k];
            pi->nb[k] = (parts[i].cstart[k] + parts[i].cnt[k] - 1) / bd[k] - pi->b0[k] + 1;
        }
        int64_t lo = z0 > zs ? z0 - zs : 0,
                hi = z1 - zs < parts[i].cnt[0] ? z1 - zs : parts[i].cnt[0];
        if (hi <= lo) {
            pi->nb[0] = 0;
        } else {
            pi->b0[0] = (parts[i].cstart[0] + lo) / bd[0];
            pi->nb[0] = (parts[i].cstart[0] + hi - 1) / bd[0] - pi->b0[0] + 1;
        }
        if (pi->v.h->flags & LB__CSEG_UNIFORM) {
            nprep += 1;
            nid += 1;
        } else {
            size_t nb = (size_t)(pi->nb[0] * pi->nb[1] * pi->nb[2]);
            nprep += nb;
            for (int64_t a = 0; a < pi->nb[0]; a++)
                for (int64_t b = 0; b < pi->nb[1]; b++)
                    for (int64_t c = 0; c < pi->nb[2]; c++)
                        nid += pi->v.blk[((size_t)(pi->b0[0] + a) * pi->v.h->nb[1] +
                                          (size_t)(pi->b0[1] + b)) * pi->v.h->nb[2] +
                                         (size_t)(pi->b0[2] + c)].n;
        }
    }
    preps = malloc(nprep * sizeof *preps);
    idbits = malloc(nid * sizeof *idbits);
    if (!preps || !idbits) goto done;
    uint64_t chmask = channels >= 64 ? UINT64_MAX : (((uint64_t)1 << channels) - 1);
    size_t kp = 0, ki = 0;
    uint64_t last_id = 0, last_bits = 0;
    int have_last = 0;
    for (size_t i = 0; i < nparts; i++) {
        pinfo *pi = &P[i];
        pi->prep = preps + kp;
        int uni = (pi->v.h->flags & LB__CSEG_UNIFORM) != 0;
        size_t nb = uni ? 1 : (size_t)(pi->nb[0] * pi->nb[1] * pi->nb[2]);
        for (size_t q = 0; q < nb; q++) {
            const lb__cseg_block *blk = NULL;
            if (!uni) {
                int64_t c = (int64_t)q % pi->nb[2], b = (int64_t)q / pi->nb[2] % pi->nb[1],
                        a = (int64_t)q / pi->nb[2] / pi->nb[1];
                blk = &pi->v.blk[((size_t)(pi->b0[0] + a) * pi->v.h->nb[1] +
                                  (size_t)(pi->b0[1] + b)) * pi->v.h->nb[2] +
                                 (size_t)(pi->b0[2] + c)];
            }
            size_t n = blk ? blk->n : 1, w = pi->v.w;
            const unsigned char *tab = pi->v.table + (blk ? (size_t)blk->tab * w : 0);
            bprep *r = &preps[kp++];
            r->bits = idbits + ki;
            ki += n;
            uint64_t all = chmask, any = 0;
            for (size_t j = 0; j < n; j++) {
                /* Neighbouring blocks mostly hold the same ids: map an id
                 * again only when it differs from the last one mapped. */
                uint64_t id = load(tab + j * w, w);
                if (!have_last || id != last_id) {
                    last_bits = 0;
                    fn(user, id, &last_bits);
                    last_bits &= chmask;
                    last_id = id;
                    have_last = 1;
                }
                r->bits[j] = last_bits;
                all &= r->bits[j];
                any |= r->bits[j];
            }
            r->on_all = all;
            r->mixed = any & ~all;
            r->bitw = blk ? blk->bits : 0;
            r->words = blk ? pi->v.words + blk->idx : NULL;
        }
    }
    /* Segments of a region row: the parts along x cut at block edges. */
    int64_t rowlen = 0;
    for (int64_t px = 0; px < np[2]; px++) rowlen += parts[px].cnt[2];
    size_t maxseg = (size_t)(rowlen / bd[2] + 2 * np[2] + 2); /* segments of a row */
    /* The channel bits of a run of rows, `rowg` [row][group][x]: byte x
     * holds the channel bits 8g..8g+7 of voxel x (rows padded to whole
     * 16-byte vectors, and 8 bytes for the last segment's store). A plane's
     * run of rows is put together in `stage` (B rows and slack for the last
     * vector), then streamed out. */
    size_t ngroups = (channels + 7) / 8;
    size_t rstride = ((size_t)rowlen + 15) / 16 * 16 + 16;
    scratch = calloc(1, maxseg * (sizeof(xseg) + sizeof(bprep *)) + B * ngroups * rstride +
                     (size_t)rowlen * B + 16 + 16);
    if (!scratch) goto done;
    xseg *seg = (xseg *)(void *)scratch;
    const bprep **sp = (const bprep **)(void *)(seg + maxseg);
    uint8_t *rowg = (uint8_t *)(void *)(sp + maxseg);
    uint8_t *stage = rowg + B * ngroups * rstride;
    size_t nseg = 0, dx = 0;
    for (int64_t px = 0; px < np[2]; px++) {
        const lb__cseg_part *pp = &parts[px];
        int64_t x = pp->cstart[2], xe = pp->cstart[2] + pp->cnt[2];
        while (x < xe) {
            int64_t ox = x / bd[2] * bd[2], e = ox + bd[2] < xe ? ox + bd[2] : xe;
            seg[nseg] = (xseg){(size_t)px, x / bd[2] - P[px].b0[2], x, ox, (size_t)(e - x), dx};
            dx += (size_t)(e - x);
            nseg++;
            x = e;
        }
    }
    int64_t ny = 0; /* region rows per z */
    for (int64_t q = 0; q < np[1]; q++) ny += parts[(size_t)q * (size_t)np[2]].cnt[1];
    /* The row of blocks whose preps and masks are current: its part
     * (along z and y) and block indices; none yet. */
    size_t last_pz = SIZE_MAX, last_py = SIZE_MAX;
    int64_t last_bz = -1, last_by = -1;
    uint64_t row_on = 0, row_const = 0;
    const uint64_t ones = 0x0101010101010101ull;
    int contiguous = dshape[2] == rowlen; /* the region's rows follow each other */
    pending pend[64] = {{NULL, 0, 0}};
    for (int64_t z = z0; z < z1; z++) {
        size_t pz, py;
        int64_t cz, cy;
        locate(parts, np, 0, z, &pz, &cz);
        for (int64_t y = 0; y < ny;) {
            locate(parts, np, 1, y, &py, &cy);
            int64_t bz = cz / bd[0], by = cy / bd[1];
            /* The rows up to the end of this row of blocks (or of the part). */
            const lb__cseg_part *pp = &parts[py * (size_t)np[2]];
            int64_t yrun = (by + 1) * bd[1] - cy, left = pp->cstart[1] + pp->cnt[1] - cy;
            if (left < yrun) yrun = left;
            if (pz != last_pz || py != last_py || bz != last_bz || by != last_by) {
                /* A new row of blocks: their preps, the row's masks. */
                last_pz = pz;
                last_py = py;
                last_bz = bz;
                last_by = by;
                uint64_t on = chmask, any = 0, mixed = 0;
                for (size_t s2 = 0; s2 < nseg; s2++) {
                    const pinfo *pi = &P[(pz * (size_t)np[1] + py) * (size_t)np[2] + seg[s2].px];
                    const bprep *r = pi->v.h->flags & LB__CSEG_UNIFORM
                        ? &pi->prep[0]
                        : &pi->prep[((size_t)(bz - pi->b0[0]) * (size_t)pi->nb[1] +
                                     (size_t)(by - pi->b0[1])) * (size_t)pi->nb[2] +
                                    (size_t)seg[s2].bxi];
                    sp[s2] = r;
                    on &= r->on_all;
                    any |= r->on_all | r->mixed;
                    mixed |= r->mixed;
                }
                row_on = on;
                row_const = ~(mixed | (any & ~on)) & chmask;
            }
            /* Unless every channel is constant over the row: each row's
             * channel bits, segment by segment, left to right (a short
             * segment's excess bytes are overwritten by the next). */
            for (int64_t t = 0; t < yrun && row_const != chmask; t++)
                for (size_t s2 = 0; s2 < nseg; s2++) {
                    const bprep *r = sp[s2];
                    uint8_t *G = rowg + (size_t)t * ngroups * rstride + seg[s2].dx;
                    if (!r->mixed) {
                        for (size_t g = 0; g < ngroups; g++)
                            put_word(G + g * rstride, ((r->on_all >> (8 * g)) & 0xFF) * ones);
                        continue;
                    }
                    size_t j = ((size_t)(cz - bz * bd[0]) * bd[1] +
                                (size_t)(cy + t - by * bd[1])) * bd[2] +
                               (size_t)(seg[s2].cx0 - seg[s2].ox);
                    unsigned ix[B];
                    row_indices(r->words, r->bitw, j, seg[s2].len, ix);
                    if (ngroups == 1) {
                        uint64_t g0 = 0;
                        for (size_t x = 0; x < seg[s2].len; x++)
                            g0 |= (r->bits[ix[x]] & 0xFF) << (8 * x);
                        put_word(G, g0);
                    } else if (ngroups == 2) {
#if defined(__SSE2__)
                        /* The 8 voxels' 16 channel bits side by side; low
                         * and high bytes packed apart are the two rows. */
                        uint64_t m0 = 0, m1 = 0;
                        size_t len = seg[s2].len, x = 0;
                        for (; x < len && x < 4; x++) m0 |= (r->bits[ix[x]] & 0xFFFF) << (16 * x);
                        for (; x < len; x++) m1 |= (r->bits[ix[x]] & 0xFFFF) << (16 * (x - 4));
                        __m128i v = _mm_set_epi64x((long long)m1, (long long)m0);
                        __m128i p = _mm_packus_epi16(_mm_and_si128(v, _mm_set1_epi16(0xFF)),
                                                     _mm_srli_epi16(v, 8));
                        _mm_storel_epi64((__m128i *)(void *)G, p);
                        _mm_storel_epi64((__m128i *)(void *)(G + rstride),
                                         _mm_unpackhi_epi64(p, p));
#else
                        uint64_t g0 = 0, g1 = 0;
                        for (size_t x = 0; x < seg[s2].len; x++) {
                            uint64_t b = r->bits[ix[x]];
                            g0 |= (b & 0xFF) << (8 * x);
                            g1 |= ((b >> 8) & 0xFF) << (8 * x);
                        }
                        put_word(G, g0);
                        put_word(G + rstride, g1);
#endif
                    } else {
                        for (size_t x = 0; x < seg[s2].len; x++) {
                            uint64_t b = r->bits[ix[x]];
                            for (size_t g = 0; g < ngroups; g++)
                                G[g * rstride + x] = (uint8_t)(b >> (8 * g));
                        }
                    }
                }
            /* Each plane: this run of rows, front to back. */
            size_t d0 = (size_t)(((dstart[0] + z) * dshape[1] + dstart[1] + y) * dshape[2] +
                                 dstart[2]);
            for (size_t ch = 0; ch < channels; ch++) {
                uint8_t *dst = out + ch * ps + d0;
                if ((row_const >> ch) & 1) {
                    int v = (int)((row_on >> ch) & 1);
                    if (contiguous) {
                        pending_fill(&pend[ch], dst, v, (size_t)rowlen * (size_t)yrun);
                    } else {
                        for (int64_t t = 0; t < yrun; t++)
                            pending_fill(&pend[ch], dst + (size_t)t * (size_t)dshape[2], v,
                                         (size_t)rowlen);
                    }
                    continue;
                }
                pending_flush(&pend[ch]);
                const uint8_t *src = rowg + (ch >> 3) * rstride;
                unsigned sh = (unsigned)(ch & 7);
                for (int64_t t = 0; t < yrun; t++, src += ngroups * rstride)
                    channel_row(stage + (size_t)t * (size_t)rowlen, src, sh, (size_t)rowlen);
                if (contiguous) {
                    stream_copy(dst, stage, (size_t)rowlen * (size_t)yrun);
                } else {
                    for (int64_t t = 0; t < yrun; t++)
                        stream_copy(dst + (size_t)t * (size_t)dshape[2],
                                    stage + (size_t)t * (size_t)rowlen, (size_t)rowlen);
                }
            }
            y += yrun;
        }
    }
    for (size_t ch = 0; ch < channels; ch++) pending_flush(&pend[ch]);
    stream_done();
    rc = 0;
done:
    free(scratch);
    free(idbits);
    free(preps);
    free(P);
    return rc;
}

int lb__cseg_channels_box(const void *cseg, const lb__cseg_box *b, size_t channels,
                          lb__cseg_channels_fn fn, void *user, uint8_t *out,
                          size_t plane_stride) {
    view v;
    view_of(cseg, &v);
    if (channels <= 64) {
        lb__cseg_part part = {cseg, {b->cstart[0], b->cstart[1], b->cstart[2]},
                              {b->cnt[0], b->cnt[1], b->cnt[2]}};
        int64_t np[3] = {1, 1, 1};
        if (b->cnt[0] <= 0 || b->cnt[1] <= 0 || b->cnt[2] <= 0) return 0;
        return lb__cseg_channels_region(&part, np, b->dshape, b->dstart, 0, b->cnt[0], channels,
                                        fn, user, out, plane_stride);
    }
    size_t words = (channels + 63) / 64;
    if (!words) words = 1;
    /* Scratch on the stack for up to 256 channels (the common case);
     * beyond that per call from the heap, falling back to one channel at a
     * time when even that fails. */
    uint64_t sbits[BV * 4];
    uint8_t sstate[256];
    chan_ctx c = {b, channels, words, fn, user, out, plane_stride, sbits, sstate};
    void *heap = NULL;
    if (words > 4 || channels > 256) {
        heap = malloc(BV * words * 8 + channels);
        if (!heap) return -1;
        c.bits = heap;
        c.state = (uint8_t *)heap + BV * words * 8;
    }
    walk(&v, b, chan_block, &c);
    free(heap);
    return 0;
}

typedef struct ids_ctx {
    lb__cseg_id_fn fn;
    void *user;
} ids_ctx;

static void ids_block(void *vctx, const view *v, const lb__cseg_block *blk, const int64_t *o,
                      const int64_t *lo, const int64_t *hi) {
    ids_ctx *c = vctx;
    size_t w = v->w;
    if (!blk) {
        c->fn(c->user, load(v->table, w));
        return;
    }
    const unsigned char *tab = v->table + (size_t)blk->tab * w;
    const uint32_t *bd = v->h->bdims;
    int whole = 1;
    for (int k = 0; k < 3; k++) whole &= lo[k] == o[k] && hi[k] == o[k] + bd[k];
    if (whole || !blk->bits) {
        for (size_t i = 0; i < blk->n; i++) c->fn(c->user, load(tab + i * w, w));
        return;
    }
    uint64_t used[BV / 64] = {0};
    const uint32_t *words = v->words + blk->idx;
    for (int64_t z = lo[0]; z < hi[0]; z++)
        for (int64_t y = lo[1]; y < hi[1]; y++)
            for (int64_t x = lo[2]; x < hi[2]; x++) {
                size_t j = ((size_t)(z - o[0]) * bd[1] + (size_t)(y - o[1])) * bd[2] +
                           (size_t)(x - o[2]);
                unsigned i = index_at(words, blk->bits, j);
                used[i >> 6] |= (uint64_t)1 << (i & 63);
            }
    for (size_t i = 0; i < blk->n; i++)
        if ((used[i >> 6] >> (i & 63)) & 1) c->fn(c->user, load(tab + i * w, w));
}

void lb__cseg_ids_in_box(const void *cseg, const lb__cseg_box *b, lb__cseg_id_fn fn,
                         void *user) {
    view v;
    view_of(cseg, &v);
    ids_ctx c = {fn, user};
    walk(&v, b, ids_block, &c);
}
