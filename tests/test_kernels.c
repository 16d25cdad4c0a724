/*
 * test_kernels.c — the binarize / mask kernels against the slow reference
 * (DaCapo's rule voxel by voxel) on random label volumes and groupings for
 * every integer dtype, through both the run-time picked (AVX2) and the
 * portable code paths; DaCapo's worked example, streamed (large) outputs,
 * one plan on several threads, and the byte helpers.
 * Seed: LB_SEED=<n> in the environment repeats a run; it is always printed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "tap.h"

static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static lb_id id_u(uint64_t v) {
    lb_id id = {v, 0};
    return id;
}
static lb_id id_s(int64_t v) {
    lb_id id = {(uint64_t)v, v < 0};
    return id;
}

static const lb_dtype int_dtypes[] = {LB_DTYPE_UINT8, LB_DTYPE_UINT16, LB_DTYPE_UINT32,
                                      LB_DTYPE_UINT64, LB_DTYPE_INT8,  LB_DTYPE_INT16,
                                      LB_DTYPE_INT32, LB_DTYPE_INT64};

static size_t width_of(lb_dtype d) {
    switch (d) {
    case LB_DTYPE_UINT8: case LB_DTYPE_INT8: return 1;
    case LB_DTYPE_UINT16: case LB_DTYPE_INT16: return 2;
    case LB_DTYPE_UINT32: case LB_DTYPE_INT32: return 4;
    default: return 8;
    }
}
static int signed_of(lb_dtype d) { return d >= LB_DTYPE_INT8 && d <= LB_DTYPE_INT64; }

/* Store the low bytes of `v` as one label of dtype d (little or big endian
 * host alike: go through the native integer type). */
static void put_label(void *buf, size_t i, lb_dtype d, uint64_t v) {
    switch (width_of(d)) {
    case 1: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case 2: ((uint16_t *)buf)[i] = (uint16_t)v; break;
    case 4: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    default: ((uint64_t *)buf)[i] = v; break;
    }
}

/* Interesting id values: extremes of every width, both signs. */
static lb_id special_id(void) {
    static const uint64_t u[] = {0, 1, 2, 3, 127, 128, 255, 256, 4095, 4096,
                                 32767, 32768, 65535, 65536, 2147483647ull,
                                 2147483648ull, 4294967295ull, 4294967296ull,
                                 9223372036854775807ull, 9223372036854775808ull,
                                 18446744073709551615ull};
    static const int64_t s[] = {-1, -2, -8, -127, -128, -129, -32768, -32769,
                                -2147483647 - 1, -2147483649ll, INT64_MIN};
    size_t k = rndn(sizeof u / sizeof *u + sizeof s / sizeof *s);
    if (k < sizeof u / sizeof *u) return id_u(u[k]);
    return id_s(s[k - sizeof u / sizeof *u]);
}

static lb_id random_id(void) {
    switch (rndn(6)) {
    case 0: case 1: case 2: return id_u(rndn(60));
    case 3: return id_s(-(int64_t)rndn(6) - 1);
    case 4: return special_id();
    default: return rnd() & 1 ? id_u(rnd()) : id_s((int64_t)(rnd() | (1ull << 63)));
    }
}

/* Random groupings: empty groups, duplicates, overlaps, unfit and
 * negative ids. */
static lb_groupings *random_groupings(size_t ngroups) {
    lb_groupings *g = NULL;
    lb_error err = {0};
    if (lb_groupings_new(&g, &err) != 0) return NULL;
    lb_id prev = id_u(1);
    for (size_t i = 0; i < ngroups; i++) {
        lb_id ids[12];
        size_t k = rndn(5) == 0 ? 0 : 1 + rndn(rndn(3) == 0 ? 12 : 4);
        for (size_t j = 0; j < k; j++) {
            /* Duplicates within and across groups. */
            ids[j] = (j > 0 && rndn(6) == 0) ? ids[rndn(j)]
                     : rndn(8) == 0          ? prev
                                             : random_id();
            prev = ids[j];
        }
        char name[32];
        snprintf(name, sizeof name, "g%zu", i);
        if (lb_groupings_add(g, name, ids, k, &err) != 0) {
            lb_groupings_free(g);
            return NULL;
        }
    }
    return g;
}

/* Label values as bit patterns for dtype d: the groupings' ids, extremes,
 * small ids and random bits, in runs and in noise. */
static void random_labels(void *buf, size_t n, lb_dtype d, const lb_groupings *g,
                          lb_id bg) {
    uint64_t pool[64];
    size_t np = 0;
    size_t ng = lb_groupings_count(g);
    pool[np++] = 0;
    pool[np++] = bg.bits;
    for (size_t t = 0; t < 30 && ng; t++) {
        const lb_id *ids;
        size_t k = lb_groupings_ids(g, rndn(ng), &ids);
        if (k) pool[np++] = ids[rndn(k)].bits;
    }
    while (np < 64) {
        switch (rndn(3)) {
        case 0: pool[np++] = special_id().bits; break;
        case 1: pool[np++] = rndn(60); break;
        default: pool[np++] = rnd(); break;
        }
    }
    size_t i = 0;
    while (i < n) {
        size_t len = 1 + rndn(rndn(4) == 0 ? 10000 : 300);
        if (len > n - i) len = n - i;
        int mode = (int)rndn(4);
        uint64_t v = pool[rndn(np)];
        for (size_t j = 0; j < len; j++, i++) {
            if (mode == 1)
                v = pool[rndn(np)];
            else if (mode == 2 && rndn(5) == 0)
                v = rndn(3) ? pool[rndn(np)] : rnd();
            put_label(buf, i, d, v);
        }
    }
}

static const size_t fixed_sizes[] = {0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 4095, 4097, 8191, 8192, 8193, 16385};

/* lb__binarize_sparse in 1-4 calls at random split points, both code
 * paths: counts equal the reference's ones; planes with ones equal the
 * reference; nothing outside the planes is touched. */
static int compare_sparse(const lb__binplan *p, lb_dtype d, const void *labels, size_t n,
                          size_t stride, const uint8_t *ref, size_t total, const char *what) {
    size_t ng = lb__binplan_channels(p), label_width = width_of(d);
    uint8_t *a = malloc(total);
    uint64_t *counts = calloc(ng + 1, sizeof *counts);
    int bad = 0;
    if (!a || !counts) {
        free(a);
        free(counts);
        return 1;
    }
    for (int portable = 0; portable < 2 && !bad; portable++) {
        memset(a, 0xAB, total);
        memset(counts, 0, (ng + 1) * sizeof *counts);
        size_t first = 0;
        while (first < n) {
            size_t left = n - first, m = rndn(3) == 0 ? left : 1 + rndn(left);
            lb__binarize_sparse(p, (const unsigned char *)labels + first * label_width,
                                m, a + first, first, stride, counts, portable);
            first += m;
        }
        for (size_t c = 0; c < ng && !bad; c++) {
            uint64_t want = 0;
            for (size_t i = 0; i < n; i++) want += ref[c * stride + i];
            if (counts[c] != want) {
                fprintf(stderr, "# %s (sparse %s): channel %zu counted %llu ones, want %llu\n",
                        what, portable ? "portable" : "dispatched", c,
                        (unsigned long long)counts[c], (unsigned long long)want);
                bad = 1;
            } else if (want && memcmp(a + c * stride, ref + c * stride, n) != 0) {
                fprintf(stderr, "# %s (sparse %s): channel %zu differs\n", what,
                        portable ? "portable" : "dispatched", c);
                bad = 1;
            }
            for (size_t i = n; i < stride && !bad; i++)
                if (a[c * stride + i] != 0xAB) bad = 1;
        }
        if (a[total - 1] != 0xAB) bad = 1;
    }
    CHECK(!bad);
    free(a);
    free(counts);
    return bad;
}

/* Binarize with the plan (run-time picked and portable code paths) and
 * the reference into padded buffers; compare every byte, including the
 * padding between planes (must stay untouched). */
static int compare_once(const lb_groupings *g, lb_dtype d, lb_id bg, const void *labels,
                        size_t n, size_t pad, const char *what) {
    lb_error err = {0};
    lb__binplan *p = NULL;
    int rc = lb__binplan_new(g, d, bg, &p, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "# plan failed: %s\n", err.message);
        return 1;
    }
    size_t ng = lb_groupings_count(g), stride = n + pad;
    CHECK_INT(lb__binplan_channels(p), ng);
    size_t total = ng * stride + 1;
    uint8_t *ref = malloc(total), *a = malloc(total);
    int bad = 0;
    if (!ref || !a) {
        bad = 1;
        goto done;
    }
    memset(ref, 0xAB, total);
    lb__binarize_reference(g, d, bg, labels, n, ref, stride);
    for (int variant = 0; variant < 2; variant++) {
        memset(a, 0xAB, total);
        if (variant == 0)
            lb__binarize(p, labels, n, a, stride);
        else
            lb__binarize_portable(p, labels, n, a, stride);
        int diff = memcmp(a, ref, total) != 0;
        CHECK(!diff);
        for (size_t k = 0; diff && k < total; k++)
            if (a[k] != ref[k]) {
                fprintf(stderr,
                        "# %s (%s): dtype %s n %zu stride %zu groups %zu: first diff at "
                        "channel %zu voxel %zu: got %u want %u\n",
                        what, variant ? "portable" : "dispatched", lb_dtype_name(d), n,
                        stride, ng, k / stride, k % stride, a[k], ref[k]);
                break;
            }
        bad |= diff;
    }
    bad |= compare_sparse(p, d, labels, n, stride, ref, total, what);
    /* The reference is 0/1 and leaves the padding alone. */
    for (size_t c = 0; c < ng && !bad; c++) {
        for (size_t i = 0; i < n; i++)
            if (ref[c * stride + i] > 1) bad = 1;
        for (size_t i = n; i < stride; i++)
            if (ref[c * stride + i] != 0xAB) bad = 1;
    }
    if (ref[total - 1] != 0xAB) bad = 1;
    CHECK(!bad);
done:
    free(a);
    free(ref);
    lb__binplan_free(p);
    return bad;
}

static void test_random(void) {
    int failures = 0;
    for (size_t di = 0; di < sizeof int_dtypes / sizeof *int_dtypes; di++) {
        lb_dtype d = int_dtypes[di];
        for (int trial = 0; trial < 40 && failures < 5; trial++) {
            size_t ng = trial % 10 == 9 ? 64 + rndn(40) : 1 + rndn(trial % 3 ? 8 : 30);
            lb_groupings *g = random_groupings(ng);
            CHECK(g != NULL);
            if (!g) return;
            lb_id bg;
            switch (rndn(4)) {
            case 0: case 1: bg = id_u(0); break;
            case 2: bg = random_id(); break;
            default: bg = special_id(); break;
            }
            size_t n = trial < (int)(sizeof fixed_sizes / sizeof *fixed_sizes)
                           ? fixed_sizes[trial]
                           : 1 + rndn(trial % 4 ? 3000 : 30000);
            void *labels = malloc(n * width_of(d) + 1);
            if (!labels) {
                lb_groupings_free(g);
                return;
            }
            random_labels(labels, n, d, g, bg);
            size_t pad = rndn(3) == 0 ? 0 : rndn(40);
            failures += compare_once(g, d, bg, labels, n, pad, "random");
            free(labels);
            lb_groupings_free(g);
        }
    }
}

/* Many groups (no 64-bit mask anywhere), and blocks with more distinct
 * signatures than fit the one-hot path. */
static void test_many_groups(void) {
    static const size_t counts[] = {65, 80, 200};
    for (size_t t = 0; t < 3; t++) {
        lb_groupings *g = NULL;
        lb_error err = {0};
        CHECK_INT(lb_groupings_new(&g, &err), 0);
        for (size_t i = 0; i < counts[t]; i++) {
            lb_id ids[3];
            size_t k = i % 17 == 16 ? 0 : 1 + i % 3;
            for (size_t j = 0; j < k; j++) ids[j] = id_u(1 + rndn(120));
            char name[32]; /* group names are unique */
            snprintf(name, sizeof name, "x%zu", i);
            CHECK_INT(lb_groupings_add(g, name, ids, k, &err), 0);
        }
        for (size_t di = 0; di < sizeof int_dtypes / sizeof *int_dtypes; di++) {
            lb_dtype d = int_dtypes[di];
            size_t n = 20000;
            void *labels = malloc(n * width_of(d));
            if (!labels) break;
            /* First half noise over 0..127 (fallback path), then runs. */
            for (size_t i = 0; i < n; i++)
                put_label(labels, i, d, i < n / 2 ? rndn(128) : (i / 50) % 128);
            compare_once(g, d, id_u(0), labels, n, 3, "many groups");
            free(labels);
        }
        lb_groupings_free(g);
    }
}

/* Blocks with more signatures than the per-block renumbering takes (one
 * id per group, 300 groups, noise) fall back to the per-voxel path; small
 * ids and ids past the dense tables (hash) alike. */
static void test_signature_overflow(void) {
    static const uint64_t bases[] = {1, 5000, 1000000000000ull};
    for (size_t b = 0; b < 3; b++) {
        lb_groupings *g = NULL;
        lb_error err = {0};
        CHECK_INT(lb_groupings_new(&g, &err), 0);
        for (size_t i = 0; i < 300; i++) {
            lb_id id = id_u(bases[b] + i);
            char name[32]; /* group names are unique */
            snprintf(name, sizeof name, "one%zu", i);
            CHECK_INT(lb_groupings_add(g, name, &id, 1, &err), 0);
        }
        CHECK_INT(lb_groupings_add(g, "all", NULL, 0, &err), 0);
        for (size_t di = 0; di < sizeof int_dtypes / sizeof *int_dtypes; di++) {
            lb_dtype d = int_dtypes[di];
            size_t n = 3 * 4096 + 100;
            void *labels = malloc(n * width_of(d));
            if (!labels) break;
            /* Noise, then runs, then noise again (blocks of each kind). */
            for (size_t i = 0; i < n; i++) {
                uint64_t k = (i / 4096 == 1) ? (i / 37) % 310 : rndn(310);
                put_label(labels, i, d, bases[b] + k);
            }
            compare_once(g, d, id_u(0), labels, n, 1, "overflow");
            free(labels);
        }
        lb_groupings_free(g);
    }
}

/* DACAPO_NOTES §4.4's example, with DESIGN.md's 0/1 rule for duplicates. */
static void test_dacapo_example(void) {
    static const uint64_t lab[16] = {0, 1, 2, 3, 4, 5, 255, 1, 0, 0, 3, 3, 37, 28, 2, 1};
    static const uint8_t want[4][16] = {
        {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0}, /* mito[3,4,5] */
        {0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1}, /* all[]       */
        {0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, /* dup[1,1]    */
        {0},                                              /* none[99]    */
    };
    lb_groupings *g = NULL;
    lb_error err = {0};
    lb_id mito[3] = {id_u(3), id_u(4), id_u(5)}, dup[2] = {id_u(1), id_u(1)},
          none[1] = {id_u(99)};
    CHECK_INT(lb_groupings_new(&g, &err), 0);
    CHECK_INT(lb_groupings_add(g, "mito", mito, 3, &err), 0);
    CHECK_INT(lb_groupings_add(g, "all", NULL, 0, &err), 0);
    CHECK_INT(lb_groupings_add(g, "dup", dup, 2, &err), 0);
    CHECK_INT(lb_groupings_add(g, "none", none, 1, &err), 0);
    /* 255 fits every dtype except int8, where it is stored as -1 and must
     * still count as non-background. */
    for (size_t di = 0; di < sizeof int_dtypes / sizeof *int_dtypes; di++) {
        lb_dtype d = int_dtypes[di];
        uint64_t buf[16];
        for (size_t i = 0; i < 16; i++) put_label(buf, i, d, lab[i]);
        lb__binplan *p = NULL;
        CHECK_INT(lb__binplan_new(g, d, id_u(0), &p, &err), 0);
        CHECK_INT(lb__binplan_unfit(p), 0);
        uint8_t out[4 * 16], ref[4 * 16];
        lb__binarize(p, buf, 16, out, 16);
        lb__binarize_reference(g, d, id_u(0), buf, 16, ref, 16);
        CHECK(memcmp(out, want, sizeof out) == 0);
        CHECK(memcmp(ref, want, sizeof ref) == 0);
        lb__binplan_free(p);
    }
    /* Background 3: "all" marks everything but 3; listed 3 still marks. */
    {
        uint8_t out[4 * 16];
        lb__binplan *p = NULL;
        CHECK_INT(lb__binplan_new(g, LB_DTYPE_UINT64, id_u(3), &p, &err), 0);
        lb__binarize(p, lab, 16, out, 16);
        for (size_t i = 0; i < 16; i++) {
            CHECK_INT(out[16 + i], lab[i] != 3);
            CHECK_INT(out[i], want[0][i]);
        }
        lb__binplan_free(p);
    }
    lb_groupings_free(g);
}

/* Signed dtypes compare values; unfit ids never match and are counted once
 * per group; an unfit background means every label is non-background. */
static void test_signed_and_unfit(void) {
    lb_groupings *g = NULL;
    lb_error err = {0};
    lb_id neg[2] = {id_s(-8), id_s(-8)};
    lb_id unfit[4] = {id_u(256), id_s(-1), id_u(256), id_u(300)};
    lb_id big[1] = {id_u(18446744073709551615ull)};
    CHECK_INT(lb_groupings_new(&g, &err), 0);
    CHECK_INT(lb_groupings_add(g, "neg", neg, 2, &err), 0);
    CHECK_INT(lb_groupings_add(g, "unfit", unfit, 4, &err), 0);
    CHECK_INT(lb_groupings_add(g, "big", big, 1, &err), 0);
    CHECK_INT(lb_groupings_add(g, "all", NULL, 0, &err), 0);
    CHECK_INT(lb_groupings_add(g, "unfit2", unfit, 1, &err), 0);

    lb__binplan *p = NULL;
    /* uint8: 256 (x1 in group 1, once more in group 4), -1, 300, -8, 2^64-1
     * do not fit: unfit = neg:1 + unfit:3 + big:1 + unfit2:1. */
    CHECK_INT(lb__binplan_new(g, LB_DTYPE_UINT8, id_u(0), &p, &err), 0);
    CHECK_INT(lb__binplan_unfit(p), 6);
    {
        uint8_t lab[4] = {0, 255, 248, 44}, out[5 * 4];
        lb__binarize(p, lab, 4, out, 4);
        static const uint8_t want[5 * 4] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 1, 1, 1, 0, 0, 0, 0};
        CHECK(memcmp(out, want, sizeof want) == 0);
    }
    lb__binplan_free(p);

    /* int32: -8 matches label -8 (and not 2^32-8); -1 fits now. */
    CHECK_INT(lb__binplan_new(g, LB_DTYPE_INT32, id_u(0), &p, &err), 0);
    CHECK_INT(lb__binplan_unfit(p), 1); /* 2^64-1 */
    {
        int32_t lab[5] = {-8, -1, 256, 0, 300};
        uint8_t out[5 * 5];
        lb__binarize(p, lab, 5, out, 5);
        static const uint8_t want[5 * 5] = {1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0,
                                            0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0};
        CHECK(memcmp(out, want, sizeof want) == 0);
    }
    lb__binplan_free(p);

    /* uint64: 2^64-1 matches; -8 and -1 do not fit. */
    CHECK_INT(lb__binplan_new(g, LB_DTYPE_UINT64, id_u(0), &p, &err), 0);
    CHECK_INT(lb__binplan_unfit(p), 2); /* -8, -1 */
    {
        uint64_t lab[3] = {18446744073709551615ull, 18446744073709551608ull, 256};
        uint8_t out[5 * 3];
        lb__binarize(p, lab, 3, out, 3);
        static const uint8_t want[5 * 3] = {0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1};
        CHECK(memcmp(out, want, sizeof want) == 0);
    }
    lb__binplan_free(p);

    /* Unfit background (-1 for uint16): label 65535 is not background. */
    CHECK_INT(lb__binplan_new(g, LB_DTYPE_UINT16, id_s(-1), &p, &err), 0);
    {
        uint16_t lab[2] = {65535, 0};
        uint8_t out[5 * 2];
        lb__binarize(p, lab, 2, out, 2);
        CHECK_INT(out[3 * 2 + 0], 1);
        CHECK_INT(out[3 * 2 + 1], 1);
    }
    lb__binplan_free(p);

    /* Not an integer dtype. */
    p = (lb__binplan *)&err; /* must be reset to NULL */
    CHECK_INT(lb__binplan_new(g, LB_DTYPE_FLOAT32, id_u(0), &p, &err), LB_EINVAL);
    CHECK(p == NULL);
    CHECK_MSG(err, "float32");
    lb_groupings_free(g);

    /* No groups: nothing to write, nothing touched. */
    CHECK_INT(lb_groupings_new(&g, &err), 0);
    CHECK_INT(lb__binplan_new(g, LB_DTYPE_UINT64, id_u(0), &p, &err), 0);
    CHECK_INT(lb__binplan_channels(p), 0);
    {
        uint64_t lab[2] = {1, 2};
        uint8_t sentinel = 0x5A;
        lb__binarize(p, lab, 2, &sentinel, 2);
        CHECK_INT(sentinel, 0x5A);
    }
    lb__binplan_free(p);
    lb__binplan_free(NULL);
    lb_groupings_free(g);
}

/* A background-only volume and a one-signature volume take the memset
 * path; check a volume large enough to span many blocks. */
static void test_uniform_blocks(void) {
    lb_groupings *g = NULL;
    lb_error err = {0};
    lb_id a[2] = {id_u(7), id_u(9)};
    CHECK_INT(lb_groupings_new(&g, &err), 0);
    CHECK_INT(lb_groupings_add(g, "a", a, 2, &err), 0);
    CHECK_INT(lb_groupings_add(g, "all", NULL, 0, &err), 0);
    CHECK_INT(lb_groupings_add(g, "nine", a + 1, 1, &err), 0);
    size_t n = 3 * 4096 + 5;
    uint32_t *lab = calloc(n, sizeof *lab);
    uint8_t *out = malloc(3 * n);
    if (lab && out) {
        for (size_t i = 4096; i < 2 * 4096; i++) lab[i] = 7;
        lab[n - 1] = 9;
        lb__binplan *p = NULL;
        CHECK_INT(lb__binplan_new(g, LB_DTYPE_UINT32, id_u(0), &p, &err), 0);
        lb__binarize(p, lab, n, out, n);
        CHECK_INT(lb__count_nonzero(out, n), 4097);
        CHECK_INT(lb__count_nonzero(out + n, n), 4097);
        CHECK_INT(lb__count_nonzero(out + 2 * n, n), 1);
        CHECK_INT(out[2 * n + n - 1], 1);
        lb__binplan_free(p);
        compare_once(g, LB_DTYPE_UINT32, id_u(0), lab, n, 0, "uniform");
    }
    free(lab);
    free(out);
    lb_groupings_free(g);
}

static void test_mask(void) {
    static const lb_dtype all[] = {LB_DTYPE_UINT8, LB_DTYPE_UINT16, LB_DTYPE_UINT32,
                                   LB_DTYPE_UINT64, LB_DTYPE_INT8,  LB_DTYPE_INT16,
                                   LB_DTYPE_INT32, LB_DTYPE_INT64};
    for (size_t di = 0; di < sizeof all / sizeof *all; di++) {
        lb_dtype d = all[di];
        for (int trial = 0; trial < 12; trial++) {
            size_t n = trial < 6 ? (size_t[]){0, 1, 3, 17, 4096, 4097}[trial]
                                 : 1 + rndn(20000);
            size_t nch = 1 + rndn(20), pad = rndn(9), stride = n + pad;
            uint8_t enabled[20];
            for (size_t c = 0; c < nch; c++)
                enabled[c] = trial == 6 ? 0 : trial == 7 ? 1 : (uint8_t)(rndn(3) != 0);
            uint64_t *lab = malloc(n * 8 + 8);
            uint8_t *out = malloc(nch * stride + 1);
            if (!lab || !out) {
                free(lab);
                free(out);
                return;
            }
            size_t i = 0;
            while (i < n) {
                size_t len = 1 + rndn(trial % 2 ? 3 : 5000);
                uint64_t v = rndn(4) == 0 ? 0 : rnd() >> rndn(64);
                for (size_t j = 0; j < len && i < n; j++, i++) {
                    if (rndn(8) == 0) v = rnd();
                    put_label(lab, i, d, v);
                }
            }
            memset(out, 0xAB, nch * stride + 1);
            lb__mask(d, lab, n, enabled, nch, out, stride);
            int bad = 0;
            for (size_t c = 0; c < nch; c++) {
                for (size_t k = 0; k < n; k++) {
                    uint64_t raw = 0;
                    memcpy(&raw, (const char *)lab + k * width_of(d), width_of(d));
                    int64_t sv;
                    switch (d) {
                    case LB_DTYPE_INT8: sv = ((int8_t *)lab)[k]; break;
                    case LB_DTYPE_INT16: sv = ((int16_t *)lab)[k]; break;
                    case LB_DTYPE_INT32: sv = ((int32_t *)lab)[k]; break;
                    case LB_DTYPE_INT64: sv = ((int64_t *)lab)[k]; break;
                    default: sv = raw != 0; break;
                    }
                    int want = enabled[c] && (signed_of(d) ? sv > 0 : raw != 0);
                    if (out[c * stride + k] != want) bad = 1;
                }
                for (size_t k = n; k < stride; k++)
                    if (out[c * stride + k] != 0xAB) bad = 1;
            }
            if (out[nch * stride] != 0xAB) bad = 1;
            CHECK(!bad);
            if (bad)
                fprintf(stderr, "# mask mismatch: dtype %s n %zu channels %zu\n",
                        lb_dtype_name(d), n, nch);
            free(lab);
            free(out);
        }
    }
    /* Negative labels are not annotated; fixed values. */
    {
        int16_t lab[4] = {-5, 0, 3, -32768};
        uint8_t en[2] = {1, 0}, out[8];
        lb__mask(LB_DTYPE_INT16, lab, 4, en, 2, out, 4);
        static const uint8_t want[8] = {0, 0, 1, 0, 0, 0, 0, 0};
        CHECK(memcmp(out, want, 8) == 0);
    }
    {
        uint64_t lab[3] = {18446744073709551615ull, 0, 9223372036854775808ull};
        uint8_t en[1] = {1}, out[3];
        lb__mask(LB_DTYPE_UINT64, lab, 3, en, 1, out, 3);
        CHECK(out[0] == 1 && out[1] == 0 && out[2] == 1);
    }
}

/* Outputs of NT_BYTES (16 MiB) and more are streamed: check that path with
 * misaligned planes, for binarize and for the mask. */
static void test_large_outputs(void) {
    lb_groupings *g = NULL;
    lb_error err = {0};
    CHECK_INT(lb_groupings_new(&g, &err), 0);
    for (size_t i = 0; i < 17; i++) {
        lb_id ids[2] = {id_u(1 + i), id_u(40 + rndn(30))};
        char name[32]; /* group names are unique */
        snprintf(name, sizeof name, "x%zu", i);
        CHECK_INT(lb_groupings_add(g, name, ids, i == 16 ? 0 : 1 + i % 2, &err), 0);
    }
    size_t n = ((size_t)1 << 20) + 13;
    uint32_t *lab = malloc(n * sizeof *lab);
    if (lab) {
        size_t i = 0;
        while (i < n) {
            size_t len = 1 + rndn(60);
            uint32_t v = rndn(4) == 0 ? 0 : (uint32_t)rndn(80);
            for (size_t j = 0; j < len && i < n; j++) lab[i++] = v;
        }
        compare_once(g, LB_DTYPE_UINT32, id_u(0), lab, n, 5, "large");

        /* Mask: 17 planes of n + 3 bytes, every 3rd channel disabled. */
        size_t stride = n + 3, nch = 17;
        uint8_t enabled[17];
        for (size_t c = 0; c < nch; c++) enabled[c] = c % 3 != 1;
        uint8_t *out = malloc(nch * stride);
        if (out) {
            memset(out, 0xAB, nch * stride);
            lb__mask(LB_DTYPE_UINT32, lab, n, enabled, nch, out, stride);
            int bad = 0;
            for (size_t c = 0; c < nch; c++) {
                for (size_t k = 0; k < n; k++)
                    if (out[c * stride + k] != (enabled[c] && lab[k] > 0)) bad = 1;
                for (size_t k = n; k < stride; k++)
                    if (out[c * stride + k] != 0xAB) bad = 1;
            }
            CHECK(!bad);
            free(out);
        }
    }
    free(lab);
    lb_groupings_free(g);
}

/* Floating-point and bool sources: the mask is label > 0 there too. */
static void test_mask_other_dtypes(void) {
    float f[5] = {0.0f, -1.5f, 0.25f, 3.0f, -0.0f};
    double dd[3] = {1e-300, -2.0, 0.0};
    uint8_t b[3] = {0, 1, 1};
    uint8_t en[2] = {1, 1}, out[10];
    lb__mask(LB_DTYPE_FLOAT32, f, 5, en, 2, out, 5);
    static const uint8_t wf[10] = {0, 0, 1, 1, 0, 0, 0, 1, 1, 0};
    CHECK(memcmp(out, wf, 10) == 0);
    lb__mask(LB_DTYPE_FLOAT64, dd, 3, en, 1, out, 3);
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == 0);
    lb__mask(LB_DTYPE_BOOL, b, 3, en, 1, out, 3);
    CHECK(out[0] == 0 && out[1] == 1 && out[2] == 1);
    /* No enabled vector: every plane is zero. */
    memset(out, 7, sizeof out);
    lb__mask(LB_DTYPE_UINT8, b, 3, NULL, 2, out, 4);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0 && out[3] == 7 && out[4] == 0 &&
          out[6] == 0 && out[7] == 7);
}

/* One plan, several threads at once: the plan is read-only. */
typedef struct job {
    const lb__binplan *p;
    const uint64_t *lab;
    size_t n;
    uint8_t *out;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    for (int r = 0; r < 20; r++) lb__binarize(j->p, j->lab, j->n, j->out, j->n);
    return NULL;
}

static void test_threads(void) {
    lb_groupings *g = random_groupings(20);
    lb__binplan *p = NULL;
    lb_error err = {0};
    size_t n = 50000;
    uint64_t *lab = malloc(n * sizeof *lab);
    uint8_t *ref = malloc(20 * n), *outs[4] = {0};
    int ok = g && lab && ref && lb__binplan_new(g, LB_DTYPE_UINT64, id_u(0), &p, &err) == 0;
    CHECK(ok);
    if (ok) {
        random_labels(lab, n, LB_DTYPE_UINT64, g, id_u(0));
        lb__binarize_reference(g, LB_DTYPE_UINT64, id_u(0), lab, n, ref, n);
        pthread_t th[4];
        job jobs[4];
        int started = 0;
        for (int t = 0; t < 4; t++) {
            outs[t] = malloc(20 * n);
            if (!outs[t]) break;
            jobs[t] = (job){p, lab, n, outs[t]};
            if (pthread_create(&th[t], NULL, run_job, &jobs[t]) != 0) break;
            started++;
        }
        CHECK_INT(started, 4);
        for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
        for (int t = 0; t < started; t++) CHECK(memcmp(outs[t], ref, 20 * n) == 0);
    }
    for (int t = 0; t < 4; t++) free(outs[t]);
    lb__binplan_free(p);
    free(ref);
    free(lab);
    lb_groupings_free(g);
}

static void test_byte_stats(void) {
    uint8_t *buf = malloc(70000 + 64);
    if (!buf) return;
    for (int t = 0; t < 200; t++) {
        size_t off = rndn(17), n = t < 40 ? (size_t)t : rndn(70000);
        uint8_t *p = buf + off;
        size_t want = 0;
        int density = (int)rndn(4);
        memset(buf, 0, 70000 + 64);
        for (size_t i = 0; i < n; i++) {
            if (density == 0) continue;
            if (rndn(density == 1 ? 1000 : density == 2 ? 2 : 1) == 0)
                p[i] = (uint8_t)(1 + rndn(255));
        }
        /* Bytes just outside [p, p+n) must not count. */
        if (off) buf[off - 1] = 0xFF;
        p[n] = 0xFF;
        for (size_t i = 0; i < n; i++) want += p[i] != 0;
        CHECK_INT(lb__count_nonzero(p, n), want);
        CHECK_INT(lb__all_zero(p, n), want == 0);
        if (n) {
            size_t k = rndn(n);
            uint8_t old = p[k];
            p[k] = 0x80;
            CHECK_INT(lb__all_zero(p, n), 0);
            p[k] = old;
        }
    }
    /* Counters are flushed before they wrap: 255 * 16 * 3 non-zero bytes. */
    memset(buf, 1, 70000);
    CHECK_INT(lb__count_nonzero(buf + 1, 255 * 16 * 3), 255 * 16 * 3);
    CHECK_INT(lb__count_nonzero(buf, 70000), 70000);
    CHECK_INT(lb__all_zero(buf, 0), 1);
    CHECK_INT(lb__count_nonzero(buf, 0), 0);
    free(buf);
}

int main(void) {
    const char *env = getenv("LB_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("# seed %llu (LB_SEED=%llu repeats this run)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    rng_state = seed;
    test_dacapo_example();
    test_signed_and_unfit();
    test_uniform_blocks();
    test_random();
    test_many_groups();
    test_signature_overflow();
    test_mask();
    test_mask_other_dtypes();
    test_large_outputs();
    test_threads();
    test_byte_stats();
    return tap_done();
}
