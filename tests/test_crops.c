/*
 * test_crops.c — CellMap crops through the C API: the class table, opening
 * a crop written here (semantic and instance classes, an unknown region, a
 * group class, two levels), targets, masks and three-state arrays against a
 * per-voxel model of the three-valued rule (more than 64 classes too),
 * threaded reads, state counts, writing a crop, the linter, and hostile
 * metadata. Runs under the sanitizer builds too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "array/crop_kernel.h"
#include "core/path.h"
#include "labelbin.h"
#include "store/fs.h"
#include "tap.h"

static char tmpdir[256];

static void path_of(const char *rel, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

static void write_text(const char *rel, const char *text) {
    char p[1024];
    path_of(rel, p, sizeof p);
    lb_error e = {0};
    char *dir = lb__path_parent(p, &e);
    if (dir) lb__fs_mkdirs(dir, &e);
    free(dir);
    if (lb__fs_write_atomic(p, text, strlen(text), &e)) {
        fprintf(stderr, "# write %s: %s\n", p, e.message);
        CHECK(0);
    }
}

/* ---- a crop: a 4 x 6 x 8 volume of atomic ids ------------------------------ */

#define NZ 4
#define NY 6
#define NX 8
#define NV (NZ * NY * NX)

static uint8_t truth[NV];

static void make_truth(void) {
    static const uint8_t ids[] = {1, 3, 4, 35, 16, 0};
    for (int z = 0; z < NZ; z++)
        for (int y = 0; y < NY; y++)
            for (int x = 0; x < NX; x++)
                truth[(z * NY + y) * NX + x] = ids[(z / 2 + y / 2 + x / 3) % 6];
}

static const char *ms_json(int levels) {
    static char buf[2048];
    size_t len = (size_t)snprintf(buf, sizeof buf,
        "\"multiscales\": [{\"version\": \"0.4\", \"axes\": [{\"name\": \"z\", \"type\": "
        "\"space\", \"unit\": \"nanometer\"}, {\"name\": \"y\", \"type\": \"space\", \"unit\": "
        "\"nanometer\"}, {\"name\": \"x\", \"type\": \"space\", \"unit\": \"nanometer\"}], "
        "\"datasets\": [");
    for (int l = 0; l < levels; l++) {
        int s = 2 << l;
        double t = (s - 2) / 2.0;
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s{\"path\": \"s%d\", "
                                "\"coordinateTransformations\": [{\"type\": \"scale\", "
                                "\"scale\": [%d, %d, %d]}, {\"type\": \"translation\", "
                                "\"translation\": [%g, %g, %g]}]}", l ? ", " : "", l, s, s, s,
                                t, t, t);
    }
    snprintf(buf + len, sizeof buf - len, "]}]");
    return buf;
}

/* A class group `crop/name` with arrays s0 (and s1 = every other voxel). */
static void write_class(const char *crop, const char *name, int instance, const char *enc,
                        lb_dtype dt, const uint64_t *values, int levels) {
    char rel[512], attrs[4096], type[256];
    snprintf(type, sizeof type, "{\"type\": \"%s_segmentation\", \"encoding\": %s}",
             instance ? "instance" : "semantic", enc);
    snprintf(rel, sizeof rel, "%s/%s/.zgroup", crop, name);
    write_text(rel, "{\"zarr_format\": 2}");
    snprintf(attrs, sizeof attrs, "{\"cellmap\": {\"annotation\": {\"class_name\": \"%s\", "
             "\"annotation_type\": %s}}, %s}", name, type, ms_json(levels));
    snprintf(rel, sizeof rel, "%s/%s/.zattrs", crop, name);
    write_text(rel, attrs);
    for (int l = 0; l < levels; l++) {
        int f = 1 << l;
        int64_t shape[3] = {NZ / f, NY / f, NX / f}, chunks[3] = {2, 3, 4};
        size_t n = (size_t)(shape[0] * shape[1] * shape[2]), is = lb_dtype_size(dt);
        uint8_t *buf = calloc(n, is);
        size_t k = 0;
        for (int z = 0; z < NZ; z += f)
            for (int y = 0; y < NY; y += f)
                for (int x = 0; x < NX; x += f, k++) {
                    uint64_t v = values[(z * NY + y) * NX + x];
                    memcpy(buf + k * is, &v, is); /* little-endian host */
                }
        char p[1024];
        snprintf(rel, sizeof rel, "%s/%s/s%d", crop, name, l);
        path_of(rel, p, sizeof p);
        snprintf(attrs, sizeof attrs, "{\"cellmap\": {\"annotation\": {\"class_name\": \"%s\", "
                 "\"annotation_type\": %s, \"complement_counts\": null}}}", name, type);
        lb_create_options o;
        lb_create_options_init(&o);
        o.dtype = dt;
        o.attrs_json = attrs;
        o.overwrite = 1;
        lb_array *a = NULL;
        lb_error e = {0};
        CHECK_INT(lb_dataset_create(p, 3, shape, chunks, &o, &a, &e), 0);
        lb_roi r;
        if (a) {
            lb_array_roi(a, &r);
            CHECK_INT(lb_array_write(a, &r, buf, n * is, &e), 0);
        }
        lb_array_free(a);
        free(buf);
    }
}

static void write_crop_attrs(const char *crop, const char *names_json) {
    char rel[512], attrs[8192];
    snprintf(rel, sizeof rel, "%s/.zgroup", crop);
    write_text(rel, "{\"zarr_format\": 2}");
    snprintf(attrs, sizeof attrs, "{\"cellmap\": {\"annotation\": {\"version\": \"0.1.1\", "
             "\"name\": \"c\", \"created_by\": [], \"class_names\": %s}}}", names_json);
    snprintf(rel, sizeof rel, "%s/.zattrs", crop);
    write_text(rel, attrs);
}

/* Per-class state: 0 absent, 1 present, 2 unknown (-1: no array). */
static uint64_t v_ecs[NV], v_mm[NV], v_mito[NV];

static void make_crop(void) {
    make_truth();
    for (int i = 0; i < NV; i++) {
        v_ecs[i] = truth[i] == 1;
        v_mm[i] = i < NY * NX ? 255 : truth[i] == 3; /* z = 0 unknown */
        v_mito[i] = (truth[i] == 3 || truth[i] == 4) ? 100 + (uint64_t)(i % 7) : 0;
    }
    write_crop_attrs("c.zarr/crop", "[\"ecs\", \"mito_mem\", \"mito\"]");
    write_class("c.zarr/crop", "ecs", 0, "{\"absent\": 0, \"present\": 1, \"unknown\": 255}",
                LB_DTYPE_UINT8, v_ecs, 2);
    write_class("c.zarr/crop", "mito_mem", 0,
                "{\"absent\": 0, \"present\": 1, \"unknown\": 255}", LB_DTYPE_UINT8, v_mm, 2);
    write_class("c.zarr/crop", "mito", 1, "{\"absent\": 0, \"unknown\": 65535}",
                LB_DTYPE_UINT16, v_mito, 2);
}

static int state_of(const char *cls, int i) {
    if (!strcmp(cls, "ecs")) return v_ecs[i] == 1 ? 1 : v_ecs[i] == 0 ? 0 : 2;
    if (!strcmp(cls, "mito_mem")) return v_mm[i] == 1 ? 1 : v_mm[i] == 0 ? 0 : 2;
    if (!strcmp(cls, "mito")) return v_mito[i] == 0 ? 0 : v_mito[i] == 65535 ? 2 : 1;
    return 2;
}

/* Model of one group: ids -> class names of this crop (NULL: none). */
static const char *class_of_id(uint64_t id) {
    return id == 1 ? "ecs" : id == 3 ? "mito_mem" : id == 50 ? "mito" : NULL;
}

static void model(const uint64_t *ids, int n, int infer, int i, int *target, int *known) {
    int present = 0, unknown = 0;
    for (int k = 0; k < n; k++) {
        const char *c = class_of_id(ids[k]);
        int s = c ? state_of(c, i) : 2;
        present |= s == 1;
        unknown |= s == 2;
    }
    int inferred = 0;
    if (infer) {
        /* atomic ids: ecs {1}, mito_mem {3}, mito {3,4,5}; G's: ids (3,4,5 for 50) */
        int g_has[6] = {0};
        for (int k = 0; k < n; k++) {
            if (ids[k] == 50) g_has[3] = g_has[4] = g_has[5] = 1;
            else if (ids[k] < 6) g_has[ids[k]] = 1;
        }
        if (!g_has[1] && state_of("ecs", i) == 1) inferred = 1;
        if (!g_has[3] && state_of("mito_mem", i) == 1) inferred = 1;
        if (!g_has[3] && !g_has[4] && !g_has[5] && state_of("mito", i) == 1) inferred = 1;
    }
    *target = present;
    *known = present || !unknown || inferred;
}

static void test_classes(void) {
    lb_classes *c = NULL;
    lb_error e = {0};
    CHECK_INT(lb_classes_builtin(&c, &e), 0);
    CHECK_INT(lb_classes_count(c), 74);
    const uint64_t *m;
    CHECK_STR(lb_classes_name(c, 49), "mito");
    CHECK_INT(lb_classes_id(c, 49), 50);
    CHECK_INT(lb_classes_members(c, 49, &m), 3);
    CHECK(m && m[0] == 3 && m[2] == 5);
    CHECK_INT(lb_classes_members(c, 0, &m), 0);
    lb_classes_free(c);
    const char *bad[][2] = {
        {"a,1\nb,2,\"1,\"\n", "t.csv:2: member ids \"1,\" end with a comma"},
        {"a,1,\"\",x\n", "t.csv:1: expected name,id,\"member ids\" (3 fields at most)"},
        {"a,\"1\n", "t.csv:1: a quoted field does not end"},
        {"a,18446744073709551616\n", "t.csv:1: id \"18446744073709551616\""},
        {"", "t.csv: no classes"},
        {"a,1,\"2,2\"\nb,2\n", "member 2 is listed twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lb_error e2 = {0};
        c = NULL;
        CHECK_INT(lb_classes_parse(bad[i][0], strlen(bad[i][0]), "t.csv", &c, &e2), LB_EFORMAT);
        CHECK(c == NULL);
        CHECK_MSG(e2, bad[i][1]);
    }
    const char *ok = "\xef\xbb\xbfname,id,members\r\nx,7,\"\"\r\ny,8,\"7\"\r\n\r\nz,9,\"8\"\n";
    CHECK_INT(lb_classes_parse(ok, strlen(ok), "ok.csv", &c, &e), 0);
    CHECK_INT(lb_classes_count(c), 3);
    CHECK_STR(lb_classes_source(c), "ok.csv");
    lb_classes_free(c);
}

static void test_open_and_rules(void) {
    char p[1024];
    path_of("c.zarr/crop", p, sizeof p);
    CHECK_INT(lb_crop_probe(p), 1);
    char q[1024];
    path_of("c.zarr/crop/ecs/s0", q, sizeof q);
    CHECK_INT(lb_crop_probe(q), 0);
    lb_crop *c = NULL;
    lb_error e = {0};
    CHECK_INT(lb_crop_open(p, NULL, &c, &e), 0);
    if (!c) return;
    CHECK_INT(lb_crop_class_count(c), 3);
    lb_crop_class_info k;
    CHECK_INT(lb_crop_class(c, 2, &k, &e), 0);
    CHECK_STR(k.name, "mito");
    CHECK(k.has_id && k.id == 50 && k.instance && k.n_levels == 2);
    CHECK(k.has_unknown && k.unknown.bits == 65535 && !k.has_present);
    lb_crop_level_info lv;
    CHECK_INT(lb_crop_level(c, 0, 1, &lv, &e), 0);
    CHECK_STR(lv.path, "s1");
    CHECK(lv.voxel_size[0] == 4 && lv.shape[2] == NX / 2 && lv.absent == -1);
    CHECK_INT(lb_crop_class(c, 3, &k, &e), LB_EINVAL);

    lb_groupings *g = NULL;
    lb_groupings_new(&g, &e);
    static const uint64_t g0[] = {3, 4, 5}, g1[] = {50}, g2[] = {1}, g3[] = {999}, g4[] = {3};
    const uint64_t *gids[] = {g0, g1, g2, g3, g4};
    const int gn[] = {3, 1, 1, 1, 1};
    const char *names[] = {"mito", "m50", "ecs", "none", "mm"};
    for (int i = 0; i < 5; i++) {
        lb_id ids[3];
        for (int j = 0; j < gn[i]; j++) ids[j] = (lb_id){gids[i][j], 0};
        lb_groupings_add(g, names[i], ids, (size_t)gn[i], &e);
    }
    lb_groupings_add(g, "any", NULL, 0, &e);
    for (int infer = 0; infer < 2; infer++) {
        lb_crop_options opt;
        lb_crop_options_init(&opt);
        opt.infer_negatives = infer;
        lb_array *t = NULL, *m = NULL, *s = NULL;
        CHECK_INT(lb_crop_binarize_new(c, g, &opt, &t, &e), 0);
        CHECK_INT(lb_crop_mask_new(c, g, &opt, &m, &e), 0);
        opt.unknown = 255;
        CHECK_INT(lb_crop_binarize_new(c, g, &opt, &s, &e), 0);
        lb_array *refused = NULL;
        CHECK_INT(lb_crop_mask_new(c, g, &opt, &refused, &e), LB_EINVAL);
        CHECK(refused == NULL);
        if (!t || !m || !s) break;
        CHECK(lb_array_is_crop(t) && lb_array_is_crop(m));
        CHECK_STR(lb_array_kind(t), "CropBinarizeArray");
        CHECK_INT(lb_array_num_channels(t), 6);
        lb_array_set_threads(t, infer ? 3 : 1, &e);
        lb_roi r;
        lb_array_roi(t, &r);
        size_t n = 6 * NV;
        uint8_t *bt = malloc(n), *bm = malloc(n), *bs = malloc(n);
        CHECK_INT(lb_array_read(t, &r, bt, n, &e), 0);
        CHECK_INT(lb_array_read(m, &r, bm, n, &e), 0);
        CHECK_INT(lb_array_read(s, &r, bs, n, &e), 0);
        int bad = 0;
        lb_state_counts exp[6];
        memset(exp, 0, sizeof exp);
        for (int ch = 0; ch < 6; ch++)
            for (int i = 0; i < NV; i++) {
                int tt, kk;
                if (ch < 5) {
                    model(gids[ch], gn[ch], infer, i, &tt, &kk);
                } else {
                    int s1 = state_of("ecs", i), s2 = state_of("mito_mem", i),
                        s3 = state_of("mito", i);
                    tt = s1 == 1 || s2 == 1 || s3 == 1;
                    kk = tt || (s1 == 0 && s2 == 0 && s3 == 0);
                }
                size_t o = (size_t)ch * NV + (size_t)i;
                bad += bt[o] != tt || bm[o] != kk || bs[o] != (tt ? 1 : kk ? 0 : 255);
                if (tt) exp[ch].present++;
                else if (kk) exp[ch].absent++;
                else exp[ch].unknown++;
            }
        CHECK_INT(bad, 0);
        lb_state_counts got[6];
        CHECK_INT(lb_count_states(s, NULL, NULL, 2, got, 6, NULL, &e), 0);
        for (int ch = 0; ch < 6; ch++) {
            CHECK_INT(got[ch].present, exp[ch].present);
            CHECK_INT(got[ch].absent, exp[ch].absent);
            CHECK_INT(got[ch].unknown, exp[ch].unknown);
        }
        CHECK_INT(lb_count_states(t, m, NULL, 0, got, 6, NULL, &e), 0);
        CHECK_INT(got[0].unknown, exp[0].unknown);
        CHECK_INT(lb_count_states(t, NULL, NULL, 0, got, 6, NULL, &e), LB_EINVAL);
        /* a sub-ROI crossing chunk boundaries */
        lb_roi sub = r;
        sub.offset[0] += 2;
        sub.shape[0] = 4;
        sub.offset[2] += 6;
        sub.shape[2] = 8;
        size_t ns = 6 * 2 * NY * 4;
        uint8_t *bsub = malloc(ns);
        CHECK_INT(lb_array_read(s, &sub, bsub, ns, &e), 0);
        int badsub = 0;
        for (int ch = 0; ch < 6; ch++)
            for (int z = 0; z < 2; z++)
                for (int y = 0; y < NY; y++)
                    for (int x = 0; x < 4; x++)
                        badsub += bsub[((ch * 2 + z) * NY + y) * 4 + x] !=
                                  bs[(size_t)ch * NV + (size_t)(((z + 1) * NY + y) * NX + x + 3)];
        CHECK_INT(badsub, 0);
        free(bsub);
        free(bt);
        free(bm);
        free(bs);
        lb_array_free(t);
        lb_array_free(m);
        lb_array_free(s);
    }
    /* per class, at the s1 voxel size */
    lb_crop_options opt;
    lb_crop_options_init(&opt);
    int64_t vs[3] = {4, 4, 4};
    opt.voxel_size = vs;
    opt.dims = 3;
    opt.unknown = 9;
    lb_array *pc = NULL;
    CHECK_INT(lb_crop_binarize_new(c, NULL, &opt, &pc, &e), 0);
    if (pc) {
        CHECK_STR(lb_array_channel_name(pc, 1), "mito_mem");
        lb_roi r;
        lb_array_roi(pc, &r);
        size_t n = 3 * (NV / 8);
        uint8_t *b = malloc(n);
        CHECK_INT(lb_array_read(pc, &r, b, n, &e), 0);
        int bad = 0, k2 = 0;
        for (int z = 0; z < NZ; z += 2)
            for (int y = 0; y < NY; y += 2)
                for (int x = 0; x < NX; x += 2, k2++) {
                    int i = (z * NY + y) * NX + x;
                    int s = state_of("mito_mem", i);
                    bad += b[NV / 8 + k2] != (s == 1 ? 1 : s == 0 ? 0 : 9);
                }
        CHECK_INT(bad, 0);
        free(b);
    }
    lb_array_free(pc);
    int64_t vs2[3] = {3, 3, 3};
    opt.voxel_size = vs2;
    CHECK_INT(lb_crop_binarize_new(c, NULL, &opt, &pc, &e), LB_EINVAL);
    CHECK_MSG(e, "no level has the voxel size (3, 3, 3)");
    lb_groupings_free(g);
    lb_crop_free(c);
}

static void test_write_and_check(void) {
    char p[1024], dest[1024], inside[1200];
    path_of("c.zarr/crop", p, sizeof p);
    path_of("out.zarr/pred", dest, sizeof dest);
    lb_crop *c = NULL;
    lb_error e = {0};
    CHECK_INT(lb_crop_open(p, NULL, &c, &e), 0);
    if (!c) return;
    lb_groupings *g = NULL;
    lb_groupings_new(&g, &e);
    lb_groupings_add_arg(g, "mito=3,4,5", &e);
    lb_groupings_add_arg(g, "ecs=1", &e);
    lb_crop_options opt;
    lb_crop_options_init(&opt);
    opt.unknown = 255;
    lb_array *s = NULL;
    CHECK_INT(lb_crop_binarize_new(c, g, &opt, &s, &e), 0);
    lb_crop_free(c);
    if (!s) return;
    lb_write_options wo;
    lb_write_options_init(&wo);
    wo.threads = 2;
    int64_t pos[2] = {0, 0};
    lb_write_stats st;
    memset(&st, 0, sizeof st);
    st.positive = pos;
    st.positive_len = 2;
    snprintf(inside, sizeof inside, "%s/pred", p);
    CHECK_INT(lb_crop_materialize(s, inside, &wo, &st, &e), LB_EOVERLAP);
    CHECK_INT(lb_array_materialize(s, inside, &wo, &st, &e), LB_EOVERLAP);
    CHECK_MSG(e, "the crop");
    CHECK_INT(lb_crop_materialize(s, dest, &wo, &st, &e), 0);
    int present = 0;
    for (int i = 0; i < NV; i++) present += state_of("ecs", i) == 1;
    CHECK_INT(pos[1], present);
    CHECK_INT(lb_crop_materialize(s, dest, &wo, &st, &e), LB_EEXIST);
    lb_array_free(s);
    lb_check_report *r = NULL;
    CHECK_INT(lb_crop_check(dest, NULL, 2, &r, &e), 0);
    /* "ecs" and "mito" are table names: a clean crop */
    CHECK_INT(lb_check_count(r), 0);
    for (size_t i = 0; i < lb_check_count(r); i++)
        fprintf(stderr, "# %s\n", lb_check_get(r, i)->message);
    lb_check_report_free(r);
    CHECK_INT(lb_crop_check(p, NULL, 0, &r, &e), 0);
    CHECK_INT(lb_check_count_level(r, LB_CHECK_ERROR), 0);
    lb_check_report_free(r);
    lb_groupings_free(g);
}

static void test_many_classes(void) {
    /* 66 classes (two words of class bits): class i holds truth == i % 7 */
    lb_classes *t = NULL;
    lb_error e = {0};
    lb_classes_builtin(&t, &e);
    char names[8192] = "[";
    size_t len = 1;
    uint64_t *v = calloc(NV, sizeof *v);
    for (int i = 0; i < 66; i++) {
        const char *nm = lb_classes_name(t, (size_t)i);
        len += (size_t)snprintf(names + len, sizeof names - len, "%s\"%s\"", i ? ", " : "", nm);
    }
    snprintf(names + len, sizeof names - len, "]");
    write_crop_attrs("m.zarr/crop", names);
    for (int i = 0; i < 66; i++) {
        for (int k = 0; k < NV; k++) v[k] = k % 7 == i % 7 ? 1 : (k % 11 == 0 ? 255 : 0);
        write_class("m.zarr/crop", lb_classes_name(t, (size_t)i), 0,
                    "{\"absent\": 0, \"present\": 1, \"unknown\": 255}", LB_DTYPE_UINT8, v, 1);
    }
    char p[1024];
    path_of("m.zarr/crop", p, sizeof p);
    lb_crop *c = NULL;
    CHECK_INT(lb_crop_open(p, NULL, &c, &e), 0);
    lb_groupings *g = NULL;
    lb_groupings_new(&g, &e);
    lb_groupings_add(g, "any", NULL, 0, &e);
    lb_id last = {lb_classes_id(t, 65), 0};
    lb_groupings_add(g, "last", &last, 1, &e);
    lb_array *a = NULL;
    lb_crop_options opt;
    lb_crop_options_init(&opt);
    opt.unknown = 255;
    CHECK_INT(lb_crop_binarize_new(c, g, &opt, &a, &e), 0);
    if (a) {
        lb_roi r;
        lb_array_roi(a, &r);
        uint8_t *b = malloc(2 * NV);
        CHECK_INT(lb_array_read(a, &r, b, 2 * NV, &e), 0);
        int bad = 0;
        for (int k = 0; k < NV; k++) {
            /* any: every voxel is present in some class */
            bad += b[k] != 1;
            int s = k % 7 == 65 % 7 ? 1 : (k % 11 == 0 ? 2 : 0);
            bad += b[NV + k] != (s == 1 ? 1 : s == 0 ? 0 : 255);
        }
        CHECK_INT(bad, 0);
        free(b);
    }
    lb_array_free(a);
    lb_groupings_free(g);
    lb_crop_free(c);
    lb_classes_free(t);
    free(v);
}

static void test_hostile(void) {
    static const char *cases[][2] = {
        {"[\"ecs\", \"..\"]", "cellmap.annotation.class_names[1]: \"..\" cannot name a class"},
        {"[\"ecs\", \"a/b\"]", "cellmap.annotation.class_names[1]: \"a/b\" cannot name"},
        {"[\"ecs\", 7]", "cellmap.annotation.class_names[1]: expected a string"},
        {"{\"ecs\": 1}", "cellmap.annotation.class_names: expected an array of class names"},
        {"[\"ecs\", \"nope\"]", "class \"nope\" is listed in class_names but the crop has no"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_crop_attrs("h.zarr/crop", cases[i][0]);
        if (i == 0) {
            uint64_t v[NV] = {0};
            write_class("h.zarr/crop", "ecs", 0, "{\"absent\": 0, \"present\": 1}",
                        LB_DTYPE_UINT8, v, 1);
        }
        char p[1024];
        path_of("h.zarr/crop", p, sizeof p);
        lb_crop *c = NULL;
        lb_error e = {0};
        CHECK(lb_crop_open(p, NULL, &c, &e) < 0);
        CHECK(c == NULL);
        CHECK_MSG(e, cases[i][1]);
        if (i < 4) CHECK_MSG(e, "h.zarr/crop/.zattrs");
        lb_check_report *r = NULL;
        CHECK_INT(lb_crop_check(p, NULL, 1, &r, &e), 0);
        CHECK(lb_check_count_level(r, LB_CHECK_ERROR) >= 1);
        lb_check_report_free(r);
    }
    write_crop_attrs("h.zarr/crop", "[\"ecs\"]");
    uint64_t v[NV] = {0};
    write_class("h.zarr/crop", "ecs", 0, "{\"absent\": 0, \"present\": 0}", LB_DTYPE_UINT8, v,
                1);
    char p[1024];
    path_of("h.zarr/crop", p, sizeof p);
    lb_crop *c = NULL;
    lb_error e = {0};
    CHECK_INT(lb_crop_open(p, NULL, &c, &e), LB_EFORMAT);
    CHECK_MSG(e, "\"absent\" and \"present\" both use the value 0");
}

/* The SIMD bitmaps equal the scalar ones, for every dtype, both kinds,
 * lengths not multiple of 16 or 64. */
static void test_kernel(void) {
    static const lb_dtype dts[] = {LB_DTYPE_UINT8, LB_DTYPE_UINT16, LB_DTYPE_UINT32,
                                   LB_DTYPE_UINT64, LB_DTYPE_INT8, LB_DTYPE_INT16};
    uint64_t seed = 12345;
    uint8_t *labels = malloc(1000 * 8);
    uint64_t P1[16], U1[16], P2[16], U2[16];
    int bad = 0;
    for (size_t d = 0; d < sizeof dts / sizeof *dts; d++)
        for (int inst = 0; inst < 2; inst++)
            for (int hasmask = 0; hasmask < 8; hasmask++) {
                int has[3] = {hasmask & 1, (hasmask >> 1) & 1 && !inst, (hasmask >> 2) & 1};
                uint64_t v[3] = {0, 1, lb_dtype_size(dts[d]) == 1 ? 255 : 65535};
                lb__class_code c;
                lb__class_code_init(&c, dts[d], inst, has, v);
                size_t is = lb_dtype_size(dts[d]);
                for (size_t i = 0; i < 1000; i++) {
                    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                    uint64_t r = seed >> 33, x = r % 4 == 0 ? 0 : r % 4 == 1 ? 1
                                              : r % 4 == 2 ? v[2] : (r >> 8);
                    memcpy(labels + i * is, &x, is);
                }
                for (size_t n = 0; n <= 1000; n += n < 70 ? 1 : 97) {
                    lb__class_bits(&c, labels, n, P1, U1);
                    lb__class_bits_portable(&c, labels, n, P2, U2);
                    size_t w = (n + 63) / 64;
                    bad += memcmp(P1, P2, w * 8) != 0 || memcmp(U1, U2, w * 8) != 0;
                    if (n == 1000) break;
                }
            }
    CHECK_INT(bad, 0);
    /* bytes from bitmaps, each mode */
    uint64_t T[2] = {0x00000000000000F1ULL, 1}, K[2] = {0x0000000000000FF3ULL, 3};
    uint8_t o[70];
    lb__group_bytes(T, K, 70, 2, 255, o);
    CHECK_INT(o[0], 1);
    CHECK_INT(o[1], 0);
    CHECK_INT(o[2], 255);
    CHECK_INT(o[4], 1);
    CHECK_INT(o[8], 0);
    CHECK_INT(o[12], 255);
    CHECK_INT(o[64], 1);
    CHECK_INT(o[65], 0);
    CHECK_INT(o[66], 255);
    lb__group_bytes(T, K, 70, 1, 255, o);
    CHECK_INT(o[2], 0);
    CHECK_INT(o[11], 1);
    free(labels);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lb_test_crops.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    make_crop();
    test_kernel();
    test_classes();
    test_open_and_rules();
    test_write_and_check();
    test_many_classes();
    test_hostile();
    lb_error e = {0};
    lb__fs_remove_tree(tmpdir, &e);
    return tap_done();
}
