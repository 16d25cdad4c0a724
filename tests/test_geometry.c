/* test_geometry.c — funlib ROI semantics, ROI parse/format, dtypes, ids. */
#include <stdlib.h>

#include "labelbin.h"
#include "tap.h"

static lb_roi roi3(int64_t o0, int64_t o1, int64_t o2, int64_t s0, int64_t s1, int64_t s2) {
    lb_roi r;
    int64_t o[3] = {o0, o1, o2}, s[3] = {s0, s1, s2};
    lb_roi_set(&r, 3, o, s, NULL);
    return r;
}

static const char *fmt(const lb_roi *r) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    lb_roi_format(r, buf[k], sizeof buf[k]);
    return buf[k];
}

static void test_snap(void) {
    /* DACAPO_NOTES §1, verified against funlib.geometry */
    lb_roi r = roi3(1, 2, 3, 10, 10, 10), out;
    int64_t vs[3] = {4, 4, 4};
    CHECK_INT(lb_roi_snap(&r, vs, LB_SNAP_GROW, &out, NULL), 0);
    CHECK_STR(fmt(&out), "[0:12, 0:12, 0:16]");
    CHECK_INT(lb_roi_snap(&r, vs, LB_SNAP_SHRINK, &out, NULL), 0);
    CHECK_STR(fmt(&out), "[4:8, 4:12, 4:12]");
    CHECK_INT(lb_roi_snap(&r, vs, LB_SNAP_CLOSEST, &out, NULL), 0);
    CHECK_STR(fmt(&out), "[0:12, 0:12, 4:12]");

    lb_roi n;
    int64_t o = -5, s = 10, v = 4;
    lb_roi_set(&n, 1, &o, &s, NULL);
    lb_roi_snap(&n, &v, LB_SNAP_GROW, &out, NULL);
    CHECK_STR(fmt(&out), "[-8:8]");
    lb_roi_snap(&n, &v, LB_SNAP_SHRINK, &out, NULL);
    CHECK_STR(fmt(&out), "[-4:4]");
    lb_roi_snap(&n, &v, LB_SNAP_CLOSEST, &out, NULL);
    CHECK_STR(fmt(&out), "[-4:4]"); /* (-5+1)//4=-1, (5+1)//4=1 */

    lb_error e = {0};
    int64_t zero[3] = {4, 0, 4};
    CHECK_INT(lb_roi_snap(&r, zero, LB_SNAP_GROW, &out, &e), LB_EINVAL);
    CHECK_MSG(e, "must be > 0");
}

static void test_contains_intersect(void) {
    lb_roi a = roi3(0, 0, 0, 10, 10, 10), b = roi3(5, 5, 5, 10, 10, 10), c;
    CHECK(!lb_roi_contains(&a, &b));
    lb_roi inner = roi3(2, 2, 2, 8, 8, 8);
    CHECK(lb_roi_contains(&a, &inner));
    CHECK(lb_roi_contains(&a, &a));
    lb_roi edge = roi3(2, 2, 2, 8, 8, 9);
    CHECK(!lb_roi_contains(&a, &edge));
    lb_roi empty_in = roi3(3, 3, 3, 0, 0, 0), empty_out = roi3(30, 3, 3, 0, 0, 0);
    CHECK(lb_roi_contains(&a, &empty_in));
    CHECK(!lb_roi_contains(&a, &empty_out));
    CHECK_INT(lb_roi_intersect(&a, &b, &c, NULL), 0);
    CHECK_STR(fmt(&c), "[5:10, 5:10, 5:10]");
    lb_roi far = roi3(20, 20, 20, 5, 5, 5);
    lb_roi_intersect(&a, &far, &c, NULL);
    CHECK(lb_roi_empty(&c));
    int64_t p_in[3] = {9, 0, 5}, p_out[3] = {10, 0, 5};
    CHECK(lb_roi_contains_point(&a, p_in));
    CHECK(!lb_roi_contains_point(&a, p_out));
    lb_roi two;
    int64_t o2[2] = {0, 0}, s2[2] = {1, 1};
    lb_roi_set(&two, 2, o2, s2, NULL);
    lb_error e = {0};
    CHECK_INT(lb_roi_intersect(&a, &two, &c, &e), LB_EINVAL);
    CHECK(!lb_roi_contains(&a, &two));
}

static void test_aligned_grow_shift(void) {
    int64_t vs[3] = {8, 4, 4};
    lb_roi r = roi3(80, 40, 400, 160, 144, 176);
    CHECK(lb_roi_aligned(&r, vs));
    lb_roi bad = roi3(81, 40, 400, 8, 4, 4);
    CHECK(!lb_roi_aligned(&bad, vs));
    lb_roi neg = roi3(-16, -8, 0, 16, 4, 4);
    CHECK(lb_roi_aligned(&neg, vs));
    int64_t g[3] = {1, 2, 3}, out;
    lb_roi gr;
    CHECK_INT(lb_roi_grow(&r, g, g, &gr, NULL), 0);
    CHECK_STR(fmt(&gr), "[79:241, 38:186, 397:579]");
    CHECK_INT(lb_roi_shift(&r, g, &gr, NULL), 0);
    CHECK_STR(fmt(&gr), "[81:241, 42:186, 403:579]");
    int64_t huge[3] = {INT64_MAX, 0, 0};
    lb_error e = {0};
    CHECK_INT(lb_roi_shift(&r, huge, &gr, &e), LB_EINVAL);
    CHECK_MSG(e, "overflow");
    (void)out;
}

static void test_parse_format(void) {
    lb_roi r;
    lb_error e = {0};
    CHECK_INT(lb_roi_parse("80:240,40:184,400:576", &r, &e), 0);
    CHECK_INT(r.ndim, 3);
    CHECK_STR(fmt(&r), "[80:240, 40:184, 400:576]");
    CHECK_INT(lb_roi_parse("[-16:48, 8:88, 0:96]", &r, &e), 0);
    CHECK_INT(r.offset[0], -16);
    CHECK_INT(r.shape[0], 64);
    CHECK_INT(lb_roi_parse("  [ -8 : 8 ]  ", &r, &e), 0);
    CHECK_STR(fmt(&r), "[-8:8]");
    const char *bad[] = {"", "1", "1:", ":2", "3:1", "1:2,", "[1:2", "1:2]", "1:2 x",
                         "a:b", "99999999999999999999:1", "1:2,,3:4"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lb_error e2 = {0};
        CHECK_INT(lb_roi_parse(bad[i], &r, &e2), LB_EINVAL);
        CHECK(e2.message[0] != '\0');
    }
    char c[64];
    int64_t co[3] = {8, 4, 4};
    lb_coord_format(co, 3, c, sizeof c);
    CHECK_STR(c, "(8, 4, 4)");
    lb_coord_format(co, 1, c, sizeof c);
    CHECK_STR(c, "(8,)");
    /* snprintf-like length */
    char small[4];
    int n = lb_roi_format(&r, small, sizeof small);
    CHECK_INT(n, 6);
    CHECK_STR(small, "[-8");
}

static void test_dtypes_ids(void) {
    CHECK_STR(lb_dtype_name(LB_DTYPE_UINT64), "uint64");
    CHECK_STR(lb_dtype_name(LB_DTYPE_INT32), "int32");
    CHECK_INT(lb_dtype_size(LB_DTYPE_INT16), 2);
    CHECK(lb_dtype_is_integer(LB_DTYPE_INT8));
    CHECK(!lb_dtype_is_integer(LB_DTYPE_FLOAT32));
    CHECK(lb_dtype_is_signed(LB_DTYPE_INT64));
    CHECK(!lb_dtype_is_signed(LB_DTYPE_UINT64));

    lb_id id;
    lb_error e = {0};
    CHECK_INT(lb_id_parse("18446744073709551615", &id, &e), 0);
    CHECK(id.bits == UINT64_MAX && !id.negative);
    CHECK(lb_id_fits(id, LB_DTYPE_UINT64));
    CHECK(!lb_id_fits(id, LB_DTYPE_INT64));
    CHECK(!lb_id_fits(id, LB_DTYPE_UINT32));
    CHECK_INT(lb_id_parse("18446744073709551616", &id, &e), LB_EINVAL);
    CHECK_INT(lb_id_parse("-9223372036854775808", &id, &e), 0);
    CHECK(id.negative && (int64_t)id.bits == INT64_MIN);
    CHECK(lb_id_fits(id, LB_DTYPE_INT64));
    CHECK(!lb_id_fits(id, LB_DTYPE_INT32));
    CHECK_INT(lb_id_parse("-9223372036854775809", &id, &e), LB_EINVAL);
    CHECK_INT(lb_id_parse("-8", &id, &e), 0);
    CHECK(lb_id_fits(id, LB_DTYPE_INT8));
    CHECK(!lb_id_fits(id, LB_DTYPE_UINT8));
    CHECK_INT(lb_id_parse("-0", &id, &e), 0);
    CHECK(!id.negative && id.bits == 0);
    CHECK_INT(lb_id_parse("255", &id, &e), 0);
    CHECK(lb_id_fits(id, LB_DTYPE_UINT8));
    CHECK(!lb_id_fits(id, LB_DTYPE_INT8));
    CHECK_INT(lb_id_parse("127", &id, &e), 0);
    CHECK(lb_id_fits(id, LB_DTYPE_INT8));
    CHECK_INT(lb_id_parse("-129", &id, &e), 0);
    CHECK(!lb_id_fits(id, LB_DTYPE_INT8));
    CHECK(lb_id_fits(id, LB_DTYPE_INT16));
    CHECK(!lb_id_fits(id, LB_DTYPE_FLOAT32));
    const char *bad[] = {"", "x", "1.5", "1e3", "--1", "0x10", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_INT(lb_id_parse(bad[i], &id, NULL), LB_EINVAL);
    char buf[32];
    lb_id m = {(uint64_t)-42, 1};
    lb_id_format(m, buf, sizeof buf);
    CHECK_STR(buf, "-42");
}

int main(void) {
    test_snap();
    test_contains_intersect();
    test_aligned_grow_shift();
    test_parse_format();
    test_dtypes_ids();
    return tap_done();
}
