/*
 * codec.c — the byte codecs behind Zarr v2 compressors and N5 compressions:
 * parsing their JSON into an lb__codec, printing it back, and bounded
 * encode/decode over blosc1, zstd, gzip/zlib (libdeflate), lz4 (numcodecs
 * and lz4-java framings), bzip2 and xz.
 *
 * Decoding is written against hostile input: every frame's declared size is
 * compared with the chunk size before anything is allocated, output is only
 * ever written into the caller's bounded buffer, and truncated frames,
 * trailing garbage and size mismatches are LB_EFORMAT. Where other writers
 * deviate in ways their readers accept, so do we: padding after a complete
 * blosc frame, and gzip and zlib streams under each other's names.
 */
#include "codec/codec.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <blosc.h>
#include <bzlib.h>
#include <libdeflate.h>
#include <lz4.h>
#include <lzma.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "core/json.h"

/* ------------------------------------------------------------------------
 * Per-thread codec contexts
 *
 * A zstd context costs as much to create (and its tables to clear) as a
 * small chunk costs to code: ZSTD_compress2 with a fresh level-3 context per
 * 256 KiB binary chunk spent ~1/3 of its time in creating and resetting it
 * (perf, -j1 binarize of 64 Mvoxels). Each thread keeps one compression and
 * one decompression context and reuses them; they are freed when the thread
 * ends. Without thread-specific storage the coders fall back to a context per
 * call.
 * ------------------------------------------------------------------------ */

typedef struct thread_ctx {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
} thread_ctx;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_key_ok;

static void thread_ctx_free(void *v) {
    thread_ctx *t = v;
    if (!t) return;
    ZSTD_freeCCtx(t->zc);
    ZSTD_freeDCtx(t->zd);
    free(t);
}

static void ctx_key_init(void) { ctx_key_ok = pthread_key_create(&ctx_key, thread_ctx_free) == 0; }

/* When the library is unloaded, threads that outlive it must not call into
 * it at exit: forget the key (their contexts leak, once). */
__attribute__((destructor)) static void ctx_key_fini(void) {
    if (ctx_key_ok) {
        thread_ctx_free(pthread_getspecific(ctx_key));
        pthread_setspecific(ctx_key, NULL);
        pthread_key_delete(ctx_key);
        ctx_key_ok = 0;
    }
}

/* This thread's contexts; NULL when there is no thread-specific storage. */
static thread_ctx *thread_ctx_get(void) {
    pthread_once(&ctx_once, ctx_key_init);
    if (!ctx_key_ok) return NULL;
    thread_ctx *t = pthread_getspecific(ctx_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (t && pthread_setspecific(ctx_key, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

/* ------------------------------------------------------------------------
 * Names and defaults
 * ------------------------------------------------------------------------ */

/* Indexed by lb__codec.blosc_cname; these are c-blosc's compressor names. */
static const char *const blosc_cnames[] = {"blosclz", "lz4", "lz4hc", "zlib", "zstd"};
#define N_BLOSC_CNAMES ((int)(sizeof blosc_cnames / sizeof blosc_cnames[0]))

#define ZARR2_IDS "blosc, zstd, gzip, zlib, lz4, bz2, lzma"
#define N5_TYPES "raw, gzip, bzip2, xz, lz4, blosc, zstd"

/* Defaults for short specs and absent keys. Zarr v2 keys follow numcodecs'
 * defaults; short specs pick the libraries' usual defaults. */
#define DEFAULT_ZSTD_LEVEL 3
#define DEFAULT_DEFLATE_LEVEL 6 /* what zlib means by level -1 */
#define DEFAULT_BZ2_LEVEL 9
#define DEFAULT_XZ_PRESET 6
#define DEFAULT_BLOSC_CLEVEL 5
#define DEFAULT_N5_LZ4_BLOCK 65536

/* lz4-java LZ4BlockOutputStream framing (N5 "lz4"). */
#define N5LZ4_MAGIC "LZ4Block"
#define N5LZ4_HEADER 21
#define N5LZ4_RAW 0x10
#define N5LZ4_LZ4 0x20
#define N5LZ4_LEVEL_BASE 10
#define N5LZ4_MIN_BLOCK 64
#define N5LZ4_MAX_BLOCK (1 << 25)
#define N5LZ4_SEED 0x9747b28cU

/* xz decoders may ask for large dictionaries; above this they are refused. */
#define XZ_MEMLIMIT ((uint64_t)1 << 30)

static void codec_defaults(lb__codec *c, lb__codec_id id) {
    memset(c, 0, sizeof *c);
    c->id = id;
    switch (id) {
    case LB__CODEC_BLOSC:
        c->level = DEFAULT_BLOSC_CLEVEL;
        c->blosc_cname = 1;
        c->blosc_shuffle = 1;
        break;
    case LB__CODEC_ZSTD: c->level = DEFAULT_ZSTD_LEVEL; break;
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB: c->level = DEFAULT_DEFLATE_LEVEL; break;
    case LB__CODEC_LZ4: c->acceleration = 1; break;
    case LB__CODEC_LZ4_N5: c->n5_block_size = DEFAULT_N5_LZ4_BLOCK; break;
    case LB__CODEC_BZ2:
        c->level = DEFAULT_BZ2_LEVEL;
        c->n5_block_size = DEFAULT_BZ2_LEVEL;
        break;
    case LB__CODEC_XZ: c->level = DEFAULT_XZ_PRESET; break;
    case LB__CODEC_RAW: break;
    }
}

/* ------------------------------------------------------------------------
 * JSON parsing helpers: optional members with a default, errors naming
 * "<where>.<key>".
 * ------------------------------------------------------------------------ */

/* Returns the member, or NULL when it is absent or JSON null (numcodecs
 * writes null for "use the default", e.g. lzma's preset). */
static json_object *member(json_object *obj, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v)) return NULL;
    return v; /* json-c represents null as NULL */
}

static int opt_int(json_object *obj, const char *key, const char *where, int64_t lo,
                   int64_t hi, int *out, lb_error *err) {
    json_object *v = member(obj, key);
    if (!v) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", where, key);
    int64_t x;
    int rc = lb__json_int64(v, path, &x, err);
    if (rc) return rc;
    if (x < lo || x > hi)
        return lb__err(err, LB_EFORMAT, "%s: %" PRId64 " is out of range %" PRId64 "..%" PRId64,
                       path, x, lo, hi);
    *out = (int)x;
    return 0;
}

static int opt_bool(json_object *obj, const char *key, const char *where, int *out,
                    lb_error *err) {
    json_object *v = member(obj, key);
    if (!v) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", where, key);
    return lb__json_bool(v, path, out, err);
}

static int opt_str(json_object *obj, const char *key, const char *where, const char **out,
                   lb_error *err) {
    json_object *v = member(obj, key);
    if (!v) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", where, key);
    return lb__json_str(v, path, out, err);
}

static int parse_blosc_fields(json_object *o, const char *where, lb__codec *c, lb_error *err) {
    const char *cname = NULL;
    int rc = opt_str(o, "cname", where, &cname, err);
    if (rc) return rc;
    if (cname) {
        int found = -1;
        for (int i = 0; i < N_BLOSC_CNAMES; i++)
            if (strcmp(cname, blosc_cnames[i]) == 0) found = i;
        if (found < 0)
            return lb__err(err, LB_EUNSUPPORTED,
                           "%s.cname: unsupported blosc compressor \"%s\" (supported: "
                           "blosclz, lz4, lz4hc, zlib, zstd)",
                           where, cname);
        c->blosc_cname = found;
    }
    if ((rc = opt_int(o, "clevel", where, 0, 9, &c->level, err))) return rc;
    if ((rc = opt_int(o, "shuffle", where, -1, 2, &c->blosc_shuffle, err))) return rc;
    if ((rc = opt_int(o, "blocksize", where, 0, INT_MAX, &c->blosc_blocksize, err))) return rc;
    return 0;
}

/* The level only matters when compressing: any integer is read (writers
 * store 0, negative "fast" levels, or levels above what this zstd knows),
 * and lb__codec_check_encode refuses the ones zstd cannot compress with. */
static int parse_zstd_level(json_object *o, const char *where, lb__codec *c, lb_error *err) {
    return opt_int(o, "level", where, INT_MIN, INT_MAX, &c->level, err);
}

int lb__codec_check_encode(const lb__codec *c, lb_error *err) {
    if (c->id == LB__CODEC_ZSTD && (c->level < ZSTD_minCLevel() || c->level > ZSTD_maxCLevel()))
        return lb__err(err, LB_EINVAL,
                       "zstd level %d cannot be used to compress: the valid levels are %d..%d "
                       "(0 = the default, 3)",
                       c->level, ZSTD_minCLevel(), ZSTD_maxCLevel());
    return 0;
}

/* numcodecs LZMA: {format, check, preset, filters}. Only the .xz container
 * (format 1) is supported; its frames are self-describing, so check and
 * filters only matter when encoding, where we use the defaults. */
static int parse_lzma_fields(json_object *o, const char *where, lb__codec *c, lb_error *err) {
    int format = 1, check = -1;
    int rc = opt_int(o, "format", where, INT_MIN, INT_MAX, &format, err);
    if (rc) return rc;
    if (format != 1)
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s.format: lzma format %d is not supported (only 1 = FORMAT_XZ)", where,
                       format);
    if ((rc = opt_int(o, "check", where, -1, 15, &check, err))) return rc;
    json_object *p = member(o, "preset");
    if (p) {
        char path[512];
        snprintf(path, sizeof path, "%s.preset", where);
        int64_t preset;
        if ((rc = lb__json_int64(p, path, &preset, err))) return rc;
        int64_t level = preset & ~(int64_t)LZMA_PRESET_EXTREME;
        if (preset < 0 || level > 9)
            return lb__err(err, LB_EFORMAT,
                           "%s: %" PRId64 " is not an xz preset (0..9, optionally | "
                           "PRESET_EXTREME)",
                           path, preset);
        c->level = (int)level;
        c->xz_extreme = (preset & LZMA_PRESET_EXTREME) != 0;
    }
    json_object *f = member(o, "filters");
    if (f && !json_object_is_type(f, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s.filters: expected an array or null, found %s",
                       where, lb__json_type_name(f));
    return 0;
}

int lb__codec_from_zarr2(json_object *compressor, const char *where, lb__codec *out,
                         lb_error *err) {
    lb__codec c;
    codec_defaults(&c, LB__CODEC_RAW);
    if (!compressor) {
        *out = c;
        return 0;
    }
    if (!json_object_is_type(compressor, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected a compressor object or null, found %s",
                       where, lb__json_type_name(compressor));
    json_object *idv = NULL;
    const char *id = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s.id", where);
    int rc = lb__json_require(compressor, "id", where, &idv, err);
    if (rc) return rc;
    if ((rc = lb__json_str(idv, path, &id, err))) return rc;

    if (strcmp(id, "blosc") == 0) {
        codec_defaults(&c, LB__CODEC_BLOSC);
        rc = parse_blosc_fields(compressor, where, &c, err);
    } else if (strcmp(id, "zstd") == 0) {
        codec_defaults(&c, LB__CODEC_ZSTD);
        c.level = 1; /* numcodecs' default */
        rc = parse_zstd_level(compressor, where, &c, err);
        if (!rc) rc = opt_bool(compressor, "checksum", where, &c.checksum, err);
    } else if (strcmp(id, "gzip") == 0 || strcmp(id, "zlib") == 0) {
        codec_defaults(&c, id[0] == 'g' ? LB__CODEC_GZIP : LB__CODEC_ZLIB);
        c.level = 1; /* numcodecs' default */
        rc = opt_int(compressor, "level", where, -1, 9, &c.level, err);
    } else if (strcmp(id, "lz4") == 0) {
        codec_defaults(&c, LB__CODEC_LZ4);
        rc = opt_int(compressor, "acceleration", where, INT_MIN, INT_MAX, &c.acceleration,
                     err);
    } else if (strcmp(id, "bz2") == 0) {
        codec_defaults(&c, LB__CODEC_BZ2);
        c.level = 1; /* numcodecs' default */
        rc = opt_int(compressor, "level", where, 1, 9, &c.level, err);
        c.n5_block_size = c.level;
    } else if (strcmp(id, "lzma") == 0) {
        codec_defaults(&c, LB__CODEC_XZ);
        rc = parse_lzma_fields(compressor, where, &c, err);
    } else {
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s: unsupported compressor id \"%s\" (supported: " ZARR2_IDS ")", path,
                       id);
    }
    if (rc) return rc;
    *out = c;
    return 0;
}

int lb__codec_from_n5(json_object *compression, const char *where, lb__codec *out,
                      lb_error *err) {
    lb__codec c;
    const char *type = NULL;
    json_object *o = NULL; /* the parameters object, NULL for the legacy string */
    char path[512];
    int rc;
    if (compression && json_object_is_type(compression, json_type_string)) {
        type = json_object_get_string(compression);
        snprintf(path, sizeof path, "%s", where);
    } else if (compression && json_object_is_type(compression, json_type_object)) {
        json_object *tv = NULL;
        o = compression;
        snprintf(path, sizeof path, "%s.type", where);
        if ((rc = lb__json_require(o, "type", where, &tv, err))) return rc;
        if ((rc = lb__json_str(tv, path, &type, err))) return rc;
    } else {
        return lb__err(err, LB_EFORMAT, "%s: expected a compression object, found %s", where,
                       compression ? lb__json_type_name(compression) : "null");
    }

    /* Absent keys take the Java defaults; the legacy string form has no
     * parameters at all (params == NULL). */
    json_object *params = o;
    rc = 0;
    if (strcmp(type, "raw") == 0) {
        codec_defaults(&c, LB__CODEC_RAW);
    } else if (strcmp(type, "gzip") == 0) {
        int use_zlib = 0;
        codec_defaults(&c, LB__CODEC_GZIP);
        c.level = -1;
        if (params) {
            rc = opt_int(params, "level", where, -1, 9, &c.level, err);
            if (!rc) rc = opt_bool(params, "useZlib", where, &use_zlib, err);
        }
        /* gzip with useZlib is a zlib stream: decode it as one. */
        if (use_zlib) {
            c.id = LB__CODEC_ZLIB;
            c.n5_use_zlib = 1;
        }
    } else if (strcmp(type, "bzip2") == 0) {
        codec_defaults(&c, LB__CODEC_BZ2);
        if (params) rc = opt_int(params, "blockSize", where, 1, 9, &c.n5_block_size, err);
        c.level = c.n5_block_size;
    } else if (strcmp(type, "xz") == 0) {
        codec_defaults(&c, LB__CODEC_XZ);
        if (params) rc = opt_int(params, "preset", where, 0, 9, &c.level, err);
    } else if (strcmp(type, "lz4") == 0) {
        codec_defaults(&c, LB__CODEC_LZ4_N5);
        if (params)
            rc = opt_int(params, "blockSize", where, N5LZ4_MIN_BLOCK, N5LZ4_MAX_BLOCK,
                         &c.n5_block_size, err);
    } else if (strcmp(type, "blosc") == 0) {
        codec_defaults(&c, LB__CODEC_BLOSC);
        if (params) {
            int nthreads = 1;
            rc = parse_blosc_fields(params, where, &c, err);
            if (!rc) rc = opt_int(params, "nthreads", where, 0, INT_MAX, &nthreads, err);
        }
    } else if (strcmp(type, "zstd") == 0) {
        codec_defaults(&c, LB__CODEC_ZSTD);
        if (params) {
            rc = parse_zstd_level(params, where, &c, err);
            if (!rc) rc = opt_bool(params, "useChecksums", where, &c.checksum, err);
        }
    } else {
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s: unsupported N5 compression \"%s\" (supported: " N5_TYPES ")", path,
                       type);
    }
    if (rc) return rc;
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------------
 * Short specs
 * ------------------------------------------------------------------------ */

static int spec_level(const char *spec, const char *arg, int lo, int hi, int *out,
                      lb_error *err) {
    char *end = NULL;
    if (!*arg)
        return lb__err(err, LB_EINVAL, "codec spec \"%s\": missing level after ':'", spec);
    long v = strtol(arg, &end, 10);
    if (*end || v < lo || v > hi)
        return lb__err(err, LB_EINVAL, "codec spec \"%s\": level must be an integer %d..%d",
                       spec, lo, hi);
    *out = (int)v;
    return 0;
}

int lb__codec_parse_spec(const char *spec, lb__codec *out, lb_error *err) {
    if (!spec) return lb__err(err, LB_EINVAL, "codec spec is missing");
    const char *s = spec;
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    if (*s == '{') {
        json_object *o = NULL;
        int rc = lb__json_parse(s, strlen(s), "codec spec", &o, err);
        if (rc) return rc;
        /* An N5 compression object has "type" and no "id". */
        if (!json_object_object_get_ex(o, "id", NULL) &&
            json_object_object_get_ex(o, "type", NULL))
            rc = lb__codec_from_n5(o, "codec spec", out, err);
        else
            rc = lb__codec_from_zarr2(o, "codec spec", out, err);
        json_object_put(o);
        /* A spec names an output codec: refuse what cannot encode now. */
        if (!rc) rc = lb__codec_check_encode(out, err);
        return rc;
    }

    char name[32];
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    if (len >= sizeof name) goto unknown;
    memcpy(name, s, len);
    name[len] = '\0';
    const char *arg = colon ? colon + 1 : NULL;
    lb__codec c;
    int rc = 0;

    if (!strcmp(name, "none") || !strcmp(name, "raw") || !strcmp(name, "null")) {
        codec_defaults(&c, LB__CODEC_RAW);
        if (arg) goto unknown;
    } else if (!strcmp(name, "zstd")) {
        codec_defaults(&c, LB__CODEC_ZSTD);
        if (arg) rc = spec_level(spec, arg, ZSTD_minCLevel(), ZSTD_maxCLevel(), &c.level, err);
    } else if (!strcmp(name, "gzip") || !strcmp(name, "zlib")) {
        codec_defaults(&c, name[0] == 'g' ? LB__CODEC_GZIP : LB__CODEC_ZLIB);
        if (arg) rc = spec_level(spec, arg, 0, 9, &c.level, err);
    } else if (!strcmp(name, "bz2") || !strcmp(name, "bzip2")) {
        codec_defaults(&c, LB__CODEC_BZ2);
        if (arg) rc = spec_level(spec, arg, 1, 9, &c.level, err);
        c.n5_block_size = c.level;
    } else if (!strcmp(name, "lz4")) {
        codec_defaults(&c, LB__CODEC_LZ4);
        if (arg) rc = spec_level(spec, arg, 1, 65537, &c.acceleration, err);
    } else if (!strcmp(name, "lzma") || !strcmp(name, "xz")) {
        codec_defaults(&c, LB__CODEC_XZ);
        if (arg) rc = spec_level(spec, arg, 0, 9, &c.level, err);
    } else if (!strcmp(name, "blosc") || !strncmp(name, "blosc-", 6)) {
        codec_defaults(&c, LB__CODEC_BLOSC);
        if (name[5] == '-') {
            int found = -1;
            for (int i = 0; i < N_BLOSC_CNAMES; i++)
                if (!strcmp(name + 6, blosc_cnames[i])) found = i;
            if (found < 0)
                return lb__err(err, LB_EINVAL,
                               "codec spec \"%s\": unknown blosc compressor \"%s\" (expected "
                               "lz4, lz4hc, zstd, zlib or blosclz)",
                               spec, name + 6);
            c.blosc_cname = found;
        }
        if (arg) rc = spec_level(spec, arg, 0, 9, &c.level, err);
    } else {
        goto unknown;
    }
    if (rc) return rc;
    *out = c;
    return 0;
unknown:
    return lb__err(err, LB_EINVAL,
                   "codec spec \"%s\": unknown codec (expected none, zstd[:LEVEL], "
                   "gzip[:LEVEL], zlib[:LEVEL], bz2[:LEVEL], lz4[:ACCELERATION], "
                   "blosc[-CNAME][:CLEVEL], lzma[:PRESET] or a JSON compressor object)",
                   spec);
}

/* ------------------------------------------------------------------------
 * Printing
 * ------------------------------------------------------------------------ */

/* json-c object builders that report ENOMEM once at the end. */
static void put_int(json_object *o, const char *key, int64_t v, int *bad) {
    json_object *x = json_object_new_int64(v);
    if (!x || json_object_object_add(o, key, x)) {
        json_object_put(x);
        *bad = 1;
    }
}
static void put_str(json_object *o, const char *key, const char *v, int *bad) {
    json_object *x = json_object_new_string(v);
    if (!x || json_object_object_add(o, key, x)) {
        json_object_put(x);
        *bad = 1;
    }
}
static void put_bool(json_object *o, const char *key, int v, int *bad) {
    json_object *x = json_object_new_boolean(v);
    if (!x || json_object_object_add(o, key, x)) {
        json_object_put(x);
        *bad = 1;
    }
}

static const char *cname_of(const lb__codec *c) {
    return c->blosc_cname >= 0 && c->blosc_cname < N_BLOSC_CNAMES ? blosc_cnames[c->blosc_cname]
                                                                   : "lz4";
}

static json_object *finish_obj(json_object *o, int bad, lb_error *err) {
    if (!o || bad) {
        json_object_put(o);
        lb__err(err, LB_ENOMEM, "out of memory building codec JSON");
        return NULL;
    }
    return o;
}

json_object *lb__codec_to_zarr2(const lb__codec *c, lb_error *err) {
    if (c->id == LB__CODEC_RAW) return NULL; /* JSON null */
    if (c->id == LB__CODEC_LZ4_N5) {
        lb__err(err, LB_EUNSUPPORTED,
                "N5's lz4 (lz4-java block stream) cannot be written as a Zarr v2 "
                "compressor; use \"lz4\" (numcodecs framing) instead");
        return NULL;
    }
    json_object *o = json_object_new_object();
    int bad = 0;
    if (!o) return finish_obj(NULL, 1, err);
    switch (c->id) {
    case LB__CODEC_BLOSC:
        put_str(o, "id", "blosc", &bad);
        put_str(o, "cname", cname_of(c), &bad);
        put_int(o, "clevel", c->level, &bad);
        put_int(o, "shuffle", c->blosc_shuffle, &bad);
        put_int(o, "blocksize", c->blosc_blocksize, &bad);
        break;
    case LB__CODEC_ZSTD:
        put_str(o, "id", "zstd", &bad);
        put_int(o, "level", c->level, &bad);
        /* numcodecs < 0.12 rejects an unknown "checksum" key: write it only
         * when it matters. */
        if (c->checksum) put_bool(o, "checksum", 1, &bad);
        break;
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB:
        put_str(o, "id", c->id == LB__CODEC_GZIP ? "gzip" : "zlib", &bad);
        put_int(o, "level", c->level, &bad);
        break;
    case LB__CODEC_LZ4:
        put_str(o, "id", "lz4", &bad);
        put_int(o, "acceleration", c->acceleration, &bad);
        break;
    case LB__CODEC_BZ2:
        put_str(o, "id", "bz2", &bad);
        put_int(o, "level", c->level, &bad);
        break;
    case LB__CODEC_XZ:
        put_str(o, "id", "lzma", &bad);
        put_int(o, "format", 1, &bad);
        put_int(o, "check", -1, &bad);
        put_int(o, "preset",
                (int64_t)c->level | (c->xz_extreme ? (int64_t)LZMA_PRESET_EXTREME : 0), &bad);
        if (json_object_object_add(o, "filters", NULL)) bad = 1;
        break;
    case LB__CODEC_RAW:
    case LB__CODEC_LZ4_N5: break;
    }
    return finish_obj(o, bad, err);
}

json_object *lb__codec_to_n5(const lb__codec *c, lb_error *err) {
    if (c->id == LB__CODEC_LZ4) {
        lb__err(err, LB_EUNSUPPORTED,
                "numcodecs' lz4 framing cannot be written as N5 compression; N5's lz4 is the "
                "lz4-java block stream");
        return NULL;
    }
    if (c->id == LB__CODEC_BLOSC && c->blosc_shuffle < 0) {
        lb__err(err, LB_EUNSUPPORTED,
                "blosc shuffle -1 (auto) cannot be written as N5 compression; use 0, 1 or 2");
        return NULL;
    }
    json_object *o = json_object_new_object();
    int bad = 0;
    if (!o) return finish_obj(NULL, 1, err);
    switch (c->id) {
    case LB__CODEC_RAW: put_str(o, "type", "raw", &bad); break;
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB:
        put_str(o, "type", "gzip", &bad);
        put_int(o, "level", c->level, &bad);
        put_bool(o, "useZlib", c->id == LB__CODEC_ZLIB, &bad);
        break;
    case LB__CODEC_BZ2:
        put_str(o, "type", "bzip2", &bad);
        put_int(o, "blockSize", c->level, &bad);
        break;
    case LB__CODEC_XZ:
        put_str(o, "type", "xz", &bad);
        put_int(o, "preset", c->level, &bad);
        break;
    case LB__CODEC_LZ4_N5:
        put_str(o, "type", "lz4", &bad);
        put_int(o, "blockSize", c->n5_block_size, &bad);
        break;
    case LB__CODEC_BLOSC:
        put_str(o, "type", "blosc", &bad);
        put_str(o, "cname", cname_of(c), &bad);
        put_int(o, "clevel", c->level, &bad);
        put_int(o, "shuffle", c->blosc_shuffle, &bad);
        put_int(o, "blocksize", c->blosc_blocksize, &bad);
        put_int(o, "nthreads", 1, &bad);
        break;
    case LB__CODEC_ZSTD:
        put_str(o, "type", "zstd", &bad);
        put_int(o, "level", c->level, &bad);
        break;
    case LB__CODEC_LZ4: break;
    }
    return finish_obj(o, bad, err);
}

void lb__codec_describe(const lb__codec *c, char *buf, size_t size) {
    static const char *const shuffles[] = {"auto shuffle", "no shuffle", "byte shuffle",
                                           "bit shuffle"};
    if (!buf || !size) return;
    switch (c->id) {
    case LB__CODEC_RAW: snprintf(buf, size, "raw"); break;
    case LB__CODEC_BLOSC: {
        int sh = c->blosc_shuffle >= -1 && c->blosc_shuffle <= 2 ? c->blosc_shuffle + 1 : 0;
        if (c->blosc_blocksize)
            snprintf(buf, size, "blosc(%s, clevel %d, %s, blocksize %d)", cname_of(c),
                     c->level, shuffles[sh], c->blosc_blocksize);
        else
            snprintf(buf, size, "blosc(%s, clevel %d, %s)", cname_of(c), c->level,
                     shuffles[sh]);
        break;
    }
    case LB__CODEC_ZSTD:
        snprintf(buf, size, c->checksum ? "zstd(%d, checksum)" : "zstd(%d)", c->level);
        break;
    case LB__CODEC_GZIP: snprintf(buf, size, "gzip(%d)", c->level); break;
    case LB__CODEC_ZLIB: snprintf(buf, size, "zlib(%d)", c->level); break;
    case LB__CODEC_LZ4: snprintf(buf, size, "lz4(acceleration %d)", c->acceleration); break;
    case LB__CODEC_LZ4_N5: snprintf(buf, size, "lz4-n5(blockSize %d)", c->n5_block_size); break;
    case LB__CODEC_BZ2: snprintf(buf, size, "bz2(%d)", c->level); break;
    case LB__CODEC_XZ:
        snprintf(buf, size, c->xz_extreme ? "xz(%de)" : "xz(%d)", c->level);
        break;
    default: snprintf(buf, size, "unknown codec %d", (int)c->id); break;
    }
}

/* ------------------------------------------------------------------------
 * Small byte helpers
 * ------------------------------------------------------------------------ */

static uint32_t rd_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* XXH32 (Yann Collet's xxHash, 32-bit variant), written from the published
 * algorithm description; lz4-java checksums N5 lz4 blocks with it. */
#define XXP1 0x9E3779B1U
#define XXP2 0x85EBCA77U
#define XXP3 0xC2B2AE3DU
#define XXP4 0x27D4EB2FU
#define XXP5 0x165667B1U
static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static uint32_t xxh_round(uint32_t acc, uint32_t lane) {
    return rotl32(acc + lane * XXP2, 13) * XXP1;
}
uint32_t lb__xxh32(const void *data, size_t len, uint32_t seed) {
    const uint8_t *p = data ? data : (const void *)"", *end = p + (data ? len : 0);
    uint32_t h;
    if (len >= 16) {
        uint32_t v1 = seed + XXP1 + XXP2, v2 = seed + XXP2, v3 = seed, v4 = seed - XXP1;
        const uint8_t *limit = end - 16;
        do {
            v1 = xxh_round(v1, rd_le32(p));
            v2 = xxh_round(v2, rd_le32(p + 4));
            v3 = xxh_round(v3, rd_le32(p + 8));
            v4 = xxh_round(v4, rd_le32(p + 12));
            p += 16;
        } while (p <= limit);
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = seed + XXP5;
    }
    h += (uint32_t)len;
    while (end - p >= 4) {
        h = rotl32(h + rd_le32(p) * XXP3, 17) * XXP4;
        p += 4;
    }
    while (p < end) {
        h = rotl32(h + (*p++) * XXP5, 11) * XXP1;
    }
    h ^= h >> 15;
    h *= XXP2;
    h ^= h >> 13;
    h *= XXP3;
    h ^= h >> 16;
    return h;
}

/* Size errors, worded once. `exact` decodes must produce exactly cap bytes;
 * bounded ("upto") decodes at most cap. */
static int err_declared(lb_error *err, const char *what, uint64_t declared, size_t cap,
                        int exact) {
    return lb__err(err, LB_EFORMAT, "%s declares %" PRIu64 " bytes, chunk holds %s%zu", what,
                   declared, exact ? "" : "at most ", cap);
}
static int err_expands(lb_error *err, const char *what, size_t cap) {
    return lb__err(err, LB_EFORMAT, "%s expands beyond the chunk's %zu bytes", what, cap);
}
static int err_short(lb_error *err, const char *what, size_t got, size_t cap) {
    return lb__err(err, LB_EFORMAT, "%s holds %zu bytes, chunk holds %zu", what, got, cap);
}

/* ------------------------------------------------------------------------
 * Decoders. Each writes at most `cap` bytes to dst, sets *got, and when
 * `exact` also requires *got == cap (where a frame declares its size, the
 * declaration is checked first).
 * ------------------------------------------------------------------------ */

static int dec_raw(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                   int exact, lb_error *err) {
    if (n > cap || (exact && n != cap))
        return lb__err(err, LB_EFORMAT, "raw chunk holds %zu bytes, expected %s%zu", n,
                       exact ? "" : "at most ", cap);
    if (n) memcpy(dst, src, n);
    *got = n;
    return 0;
}

static int dec_blosc(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                     int exact, lb_error *err) {
    if (n < BLOSC_MIN_HEADER_LENGTH)
        return lb__err(err, LB_EFORMAT, "blosc data is truncated (%zu bytes, the header alone "
                       "has 16)", n);
    int version = src[0], flags = src[2], typesize = src[3];
    if (version < 1 || version > BLOSC_VERSION_FORMAT)
        return lb__err(err, LB_EFORMAT,
                       "blosc header: format version %d is not blosc1 (expected 1..%d)",
                       version, BLOSC_VERSION_FORMAT);
    size_t nbytes = rd_le32(src + 4), blocksize = rd_le32(src + 8), cbytes = rd_le32(src + 12);
    /* Bytes after a complete frame are ignored, as c-blosc and numcodecs
     * ignore them (z5py before 2.0.10 padded every chunk with 16). From here
     * on the frame is the first cbytes bytes. */
    if (cbytes > n)
        return lb__err(err, LB_EFORMAT,
                       "blosc header: cbytes %zu but the compressed chunk has %zu bytes "
                       "(truncated)",
                       cbytes, n);
    if (cbytes < BLOSC_MIN_HEADER_LENGTH)
        return lb__err(err, LB_EFORMAT, "blosc header: cbytes %zu is shorter than the header",
                       cbytes);
    n = cbytes;
    if (nbytes > cap || (exact && nbytes != cap))
        return lb__err(err, LB_EFORMAT, "blosc header: nbytes %zu but chunk holds %s%zu",
                       nbytes, exact ? "" : "at most ", cap);
    /* Sanity beyond what c-blosc checks, so that it never divides by zero or
     * walks a block table past the end of the frame. */
    if (typesize == 0 || (nbytes > 0 && blocksize == 0) || nbytes > BLOSC_MAX_BUFFERSIZE)
        return lb__err(err, LB_EFORMAT, "blosc header is invalid (typesize %d, blocksize %zu)",
                       typesize, blocksize);
    if (flags & BLOSC_MEMCPYED) {
        if (cbytes != nbytes + BLOSC_MAX_OVERHEAD)
            return lb__err(err, LB_EFORMAT, "blosc header: stored frame of %zu bytes needs "
                           "cbytes %zu, has %zu", nbytes, nbytes + BLOSC_MAX_OVERHEAD, cbytes);
    } else if (nbytes > 0) {
        size_t nblocks = nbytes / blocksize + (nbytes % blocksize != 0);
        if (nblocks > (n - BLOSC_MIN_HEADER_LENGTH) / 4)
            return lb__err(err, LB_EFORMAT, "blosc data is truncated (%zu blocks do not fit "
                           "in %zu bytes)", nblocks, n);
        size_t table_end = BLOSC_MIN_HEADER_LENGTH + 4 * nblocks;
        for (size_t i = 0; i < nblocks; i++) {
            size_t start = rd_le32(src + BLOSC_MIN_HEADER_LENGTH + 4 * i);
            if (start < table_end || start > n - 4)
                return lb__err(err, LB_EFORMAT, "blosc block %zu starts at %zu, outside the "
                               "%zu-byte frame", i, start, n);
        }
    }
    size_t vbytes = 0;
    if (blosc_cbuffer_validate(src, n, &vbytes) != 0 || vbytes != nbytes)
        return lb__err(err, LB_EFORMAT, "blosc header is invalid");
    if (nbytes == 0) {
        *got = 0;
        return 0;
    }
    int r = blosc_decompress_ctx(src, dst, nbytes, 1);
    if (r < 0 || (size_t)r != nbytes)
        return lb__err(err, LB_EFORMAT, "blosc data is corrupt (decompression returned %d)", r);
    *got = nbytes;
    return 0;
}

/* Sum of the content sizes that the frames declare (skippable frames count
 * 0), stopping at the first frame whose structure is broken (-1; the
 * decoder then says how). *unknown is set when a frame has no content size. */
static int zstd_declared(const uint8_t *src, size_t n, uint64_t *total, int *unknown) {
    size_t pos = 0;
    *total = 0;
    *unknown = 0;
    while (pos < n) {
        unsigned long long cs = ZSTD_getFrameContentSize(src + pos, n - pos);
        if (cs == ZSTD_CONTENTSIZE_ERROR) return -1;
        if (cs == ZSTD_CONTENTSIZE_UNKNOWN) *unknown = 1;
        else if (__builtin_add_overflow(*total, (uint64_t)cs, total)) *total = UINT64_MAX;
        size_t fs = ZSTD_findFrameCompressedSize(src + pos, n - pos);
        if (ZSTD_isError(fs) || fs == 0) return -1;
        pos += fs;
    }
    return 0;
}

static int dec_zstd(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                    int exact, lb_error *err) {
    if (n == 0) return lb__err(err, LB_EFORMAT, "zstd data is empty");
    /* Declared sizes are checked before any decoding (even those of a frame
     * that turns out truncated); frames without one decode straight into
     * dst, which bounds them (one-shot decoding needs no window buffer). */
    uint64_t total;
    int unknown;
    int whole = zstd_declared(src, n, &total, &unknown) == 0;
    if (total > cap || (whole && exact && !unknown && total != cap))
        return err_declared(err, "zstd frame", total, cap, exact);
    thread_ctx *t = thread_ctx_get();
    if (t && !t->zd) t->zd = ZSTD_createDCtx();
    size_t r = t && t->zd ? ZSTD_decompressDCtx(t->zd, dst, cap, src, n)
                          : ZSTD_decompress(dst, cap, src, n);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return err_expands(err, "zstd data", cap);
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return lb__err(err, LB_ENOMEM, "zstd: out of memory");
        return lb__err(err, LB_EFORMAT, "zstd data is truncated or corrupt (%s)",
                       ZSTD_getErrorName(r));
    }
    if (exact && r != cap) return err_short(err, "zstd data", r, cap);
    *got = r;
    return 0;
}

/* libdeflate reads past the end of a truncated stream as if zeros followed,
 * so "out of output space" can also mean truncation or corruption. */
static int deflate_result(enum libdeflate_result r, const char *what, size_t cap,
                          lb_error *err) {
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
        return lb__err(err, LB_EFORMAT,
                       "%s expands beyond the chunk's %zu bytes (or is truncated or corrupt)",
                       what, cap);
    return lb__err(err, LB_EFORMAT, "%s is truncated or corrupt", what);
}

/* For gzip the ISIZE trailer (size mod 2^32 of the last member) says more:
 * a plausible one (deflate expands at most ~1032:1) that exceeds the room
 * left is a size mismatch; anything else is damage. */
static int gzip_overflow(const uint8_t *src, size_t n, size_t in, size_t room, size_t cap,
                         int exact, lb_error *err) {
    uint64_t isize = rd_le32(src + n - 4);
    if (isize > room && isize <= (uint64_t)(n - in) * 1032) {
        if (in == 0) return err_declared(err, "gzip trailer", isize, cap, exact);
        return err_expands(err, "gzip data", cap);
    }
    return lb__err(err, LB_EFORMAT, "gzip data is truncated or corrupt");
}

static int dec_gzip(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                    int exact, lb_error *err) {
    /* 10-byte header + empty deflate block + 8-byte trailer */
    if (n < 20) return lb__err(err, LB_EFORMAT, "gzip data is truncated (%zu bytes)", n);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) return lb__err(err, LB_ENOMEM, "out of memory (gzip decompressor)");
    size_t in = 0, out = 0;
    int rc = 0;
    /* Members are concatenated (RFC 1952 2.2); gzip readers also skip zero
     * padding after the last one. */
    while (in < n) {
        size_t used_in = 0, used_out = 0;
        enum libdeflate_result r = libdeflate_gzip_decompress_ex(
            d, src + in, n - in, dst + out, cap - out, &used_in, &used_out);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            rc = gzip_overflow(src, n, in, cap - out, cap, exact, err);
            break;
        }
        if (r != LIBDEFLATE_SUCCESS) {
            rc = deflate_result(r, "gzip data", cap, err);
            break;
        }
        in += used_in;
        out += used_out;
        size_t z = in;
        while (z < n && src[z] == 0) z++;
        if (z == n) break;
        if (n - in < 2 || src[in] != 0x1f || src[in + 1] != 0x8b) {
            rc = lb__err(err, LB_EFORMAT, "gzip data has %zu bytes of trailing garbage",
                         n - in);
            break;
        }
    }
    libdeflate_free_decompressor(d);
    if (rc) return rc;
    if (exact && out != cap) return err_short(err, "gzip data", out, cap);
    *got = out;
    return 0;
}

static int dec_zlib(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                    int exact, lb_error *err) {
    if (n < 7) return lb__err(err, LB_EFORMAT, "zlib data is truncated (%zu bytes)", n);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) return lb__err(err, LB_ENOMEM, "out of memory (zlib decompressor)");
    size_t used_in = 0, used_out = 0;
    enum libdeflate_result r =
        libdeflate_zlib_decompress_ex(d, src, n, dst, cap, &used_in, &used_out);
    libdeflate_free_decompressor(d);
    if (r != LIBDEFLATE_SUCCESS) return deflate_result(r, "zlib data", cap, err);
    if (used_in != n)
        return lb__err(err, LB_EFORMAT, "zlib data has %zu bytes of trailing garbage",
                       n - used_in);
    if (exact && used_out != cap) return err_short(err, "zlib data", used_out, cap);
    *got = used_out;
    return 0;
}

/* The container of a deflate stream, from its first two bytes, as zlib's
 * inflateInit2(windowBits 15 + 32) tells them apart: gzip's magic 1f 8b, or
 * a zlib header (CM 8 = deflate, a window of at most 32 KiB, FCHECK making
 * CMF * 256 + FLG a multiple of 31). The two never overlap (CM of 0x1f is
 * 15). Writers put either under either name: old z5py wrote zlib streams
 * under the Zarr "gzip" id, N5's useZlib flag is easily mismatched. */
static int is_gzip_header(const uint8_t *s, size_t n) {
    return n >= 2 && s[0] == 0x1f && s[1] == 0x8b;
}
static int is_zlib_header(const uint8_t *s, size_t n) {
    return n >= 2 && (s[0] & 0x0F) == 8 && (s[0] >> 4) <= 7 && ((s[0] << 8) | s[1]) % 31 == 0;
}

static int dec_deflate(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    int declared_gzip = c->id == LB__CODEC_GZIP && !c->n5_use_zlib;
    int gzip = declared_gzip;
    if (is_gzip_header(src, n)) gzip = 1;
    else if (is_zlib_header(src, n)) gzip = 0;
    /* Neither header: the declared container says what is wrong. */
    return gzip ? dec_gzip(src, n, dst, cap, got, exact, err)
                : dec_zlib(src, n, dst, cap, got, exact, err);
}

static int dec_lz4(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                   int exact, lb_error *err) {
    if (n < 4) return lb__err(err, LB_EFORMAT, "lz4 data is truncated (%zu bytes)", n);
    size_t declared = rd_le32(src);
    if (declared > cap || (exact && declared != cap))
        return err_declared(err, "lz4 header", declared, cap, exact);
    if (declared > LZ4_MAX_INPUT_SIZE || n - 4 > INT_MAX)
        return lb__err(err, LB_EFORMAT, "lz4 block is too large (%zu bytes)", declared);
    if (declared == 0 && n == 4) { /* no block at all: accept as empty */
        *got = 0;
        return 0;
    }
    int r = LZ4_decompress_safe((const char *)src + 4, (char *)dst, (int)(n - 4), (int)declared);
    if (r < 0 || (size_t)r != declared)
        return lb__err(err, LB_EFORMAT, "lz4 data is truncated or corrupt");
    *got = declared;
    return 0;
}

static int dec_lz4_n5(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                      int exact, lb_error *err) {
    size_t in = 0, out = 0;
    for (;;) {
        if (in == n) break; /* lz4-java also accepts a stream without its end block */
        if (n - in < N5LZ4_HEADER)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block header at byte %zu is truncated", in);
        const uint8_t *h = src + in;
        if (memcmp(h, N5LZ4_MAGIC, 8) != 0)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu lacks the \"LZ4Block\" "
                           "magic", in);
        int method = h[8] & 0xF0, level = N5LZ4_LEVEL_BASE + (h[8] & 0x0F);
        uint32_t clen = rd_le32(h + 9), olen = rd_le32(h + 13), check = rd_le32(h + 17);
        if ((method != N5LZ4_RAW && method != N5LZ4_LZ4) || olen > (1U << level) ||
            clen > INT_MAX || (olen == 0) != (clen == 0) ||
            (method == N5LZ4_RAW && olen != clen))
            return lb__err(err, LB_EFORMAT, "N5 lz4 block header at byte %zu is invalid", in);
        in += N5LZ4_HEADER;
        if (olen == 0) { /* end block */
            if (check != 0)
                return lb__err(err, LB_EFORMAT, "N5 lz4 end block has a nonzero checksum");
            if (in != n)
                return lb__err(err, LB_EFORMAT, "N5 lz4 data has %zu bytes after its end block",
                               n - in);
            break;
        }
        if (clen > n - in)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu is truncated",
                           in - N5LZ4_HEADER);
        if (olen > cap - out)
            return err_expands(err, "N5 lz4 data", cap);
        if (method == N5LZ4_RAW) {
            memcpy(dst + out, src + in, olen);
        } else {
            int r = LZ4_decompress_safe((const char *)src + in, (char *)dst + out, (int)clen,
                                        (int)olen);
            if (r < 0 || (uint32_t)r != olen)
                return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu is corrupt",
                               in - N5LZ4_HEADER);
        }
        if ((lb__xxh32(dst + out, olen, N5LZ4_SEED) & 0x0FFFFFFFU) != check)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu fails its checksum",
                           in - N5LZ4_HEADER);
        in += clen;
        out += olen;
    }
    if (exact && out != cap) return err_short(err, "N5 lz4 data", out, cap);
    *got = out;
    return 0;
}

static int dec_bz2(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                   int exact, lb_error *err) {
    if (n < 14) return lb__err(err, LB_EFORMAT, "bz2 data is truncated (%zu bytes)", n);
    if (n > UINT_MAX || cap > UINT_MAX)
        return lb__err(err, LB_ELIMIT, "bz2 chunks over 4 GiB are not supported");
    bz_stream s;
    memset(&s, 0, sizeof s);
    uint8_t spill; /* one byte past cap tells "too big" from "exactly full" */
    int spilled = 0, inited = 0, rc = 0;
    s.next_in = (char *)(uintptr_t)src;
    s.avail_in = (unsigned)n;
    s.next_out = (char *)dst;
    s.avail_out = (unsigned)cap;
    /* Streams may be concatenated (pbzip2); each gets a fresh decoder. */
    for (;;) {
        if (!inited) {
            int r = BZ2_bzDecompressInit(&s, 0, 0);
            if (r != BZ_OK) {
                rc = lb__err(err, r == BZ_MEM_ERROR ? LB_ENOMEM : LB_EFORMAT,
                             "bz2: cannot start a decoder (%d)", r);
                break;
            }
            inited = 1;
        }
        unsigned in0 = s.avail_in, out0 = s.avail_out;
        int r = BZ2_bzDecompress(&s);
        if (r == BZ_STREAM_END) {
            BZ2_bzDecompressEnd(&s);
            inited = 0;
            if (s.avail_in == 0) break;
            continue;
        }
        if (r != BZ_OK) {
            rc = lb__err(err, r == BZ_MEM_ERROR ? LB_ENOMEM : LB_EFORMAT,
                         "bz2 data is corrupt (%d)", r);
            break;
        }
        if (s.avail_out == 0) {
            if (spilled) {
                rc = err_expands(err, "bz2 data", cap);
                break;
            }
            spilled = 1;
            s.next_out = (char *)&spill;
            s.avail_out = 1;
            continue;
        }
        if (s.avail_in == in0 && s.avail_out == out0) {
            rc = lb__err(err, LB_EFORMAT, "bz2 data is truncated");
            break;
        }
    }
    if (inited) BZ2_bzDecompressEnd(&s);
    if (rc) return rc;
    if (spilled && s.avail_out == 0) return err_expands(err, "bz2 data", cap);
    size_t out = spilled ? cap : cap - s.avail_out;
    if (exact && out != cap) return err_short(err, "bz2 data", out, cap);
    *got = out;
    return 0;
}

static int dec_xz(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                  int exact, lb_error *err) {
    if (n < 32) return lb__err(err, LB_EFORMAT, "xz data is truncated (%zu bytes)", n);
    lzma_stream s = LZMA_STREAM_INIT;
    lzma_ret r = lzma_stream_decoder(&s, XZ_MEMLIMIT, LZMA_CONCATENATED);
    if (r != LZMA_OK)
        return lb__err(err, r == LZMA_MEM_ERROR ? LB_ENOMEM : LB_EFORMAT,
                       "xz: cannot start a decoder (%d)", (int)r);
    uint8_t spill;
    int spilled = 0, rc = 0;
    s.next_in = src;
    s.avail_in = n;
    s.next_out = dst;
    s.avail_out = cap;
    for (;;) {
        r = lzma_code(&s, LZMA_FINISH);
        if (r == LZMA_STREAM_END) break;
        if (r == LZMA_OK && s.avail_out == 0) {
            if (spilled) {
                rc = err_expands(err, "xz data", cap);
                break;
            }
            spilled = 1;
            s.next_out = &spill;
            s.avail_out = 1;
            continue;
        }
        if (r == LZMA_OK) continue;
        if (r == LZMA_BUF_ERROR && s.avail_out == 0)
            rc = err_expands(err, "xz data", cap);
        else if (r == LZMA_MEM_ERROR)
            rc = lb__err(err, LB_ENOMEM, "xz: out of memory");
        else if (r == LZMA_MEMLIMIT_ERROR)
            rc = lb__err(err, LB_EFORMAT, "xz data needs more than %" PRIu64 " MiB to decode",
                         XZ_MEMLIMIT >> 20);
        else if (r == LZMA_BUF_ERROR)
            rc = lb__err(err, LB_EFORMAT, "xz data is truncated");
        else
            rc = lb__err(err, LB_EFORMAT, "xz data is corrupt (%d)", (int)r);
        break;
    }
    size_t left = s.avail_out;
    lzma_end(&s);
    if (rc) return rc;
    if (spilled && left == 0) return err_expands(err, "xz data", cap);
    size_t out = spilled ? cap : cap - left;
    if (exact && out != cap) return err_short(err, "xz data", out, cap);
    *got = out;
    return 0;
}

static int decode_any(const lb__codec *c, const void *src, size_t n, void *dst, size_t cap,
                      size_t *got, int exact, lb_error *err) {
    if (!c || (!src && n) || (!dst && cap) || !got)
        return lb__err(err, LB_EINVAL, "codec decode: NULL argument");
    const uint8_t *s = src;
    uint8_t *d = dst;
    switch (c->id) {
    case LB__CODEC_RAW: return dec_raw(s, n, d, cap, got, exact, err);
    case LB__CODEC_BLOSC: return dec_blosc(s, n, d, cap, got, exact, err);
    case LB__CODEC_ZSTD: return dec_zstd(s, n, d, cap, got, exact, err);
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB: return dec_deflate(c, s, n, d, cap, got, exact, err);
    case LB__CODEC_LZ4: return dec_lz4(s, n, d, cap, got, exact, err);
    case LB__CODEC_LZ4_N5: return dec_lz4_n5(s, n, d, cap, got, exact, err);
    case LB__CODEC_BZ2: return dec_bz2(s, n, d, cap, got, exact, err);
    case LB__CODEC_XZ: return dec_xz(s, n, d, cap, got, exact, err);
    }
    return lb__err(err, LB_EINVAL, "unknown codec id %d", (int)c->id);
}

int lb__codec_decode(const lb__codec *c, const void *src, size_t n, void *dst,
                     size_t dst_size, size_t typesize, lb_error *err) {
    size_t got = 0;
    (void)typesize; /* every supported frame describes its own layout */
    return decode_any(c, src, n, dst, dst_size, &got, 1, err);
}

int lb__codec_decode_upto(const lb__codec *c, const void *src, size_t n, void *dst,
                          size_t dst_capacity, size_t *out_size, size_t typesize,
                          lb_error *err) {
    size_t got = 0;
    (void)typesize;
    int rc = decode_any(c, src, n, dst, dst_capacity, &got, 0, err);
    if (!rc && out_size) *out_size = got;
    return rc;
}

/* ------------------------------------------------------------------------
 * Encoders: reserve the library's worst-case bound in `out`, then compress
 * straight into it.
 * ------------------------------------------------------------------------ */

static int reserve_bound(lb__buf *out, size_t base, size_t extra, const char *what,
                         lb_error *err) {
    size_t need;
    if (lb__add_size(base, extra, &need))
        return lb__err(err, LB_ELIMIT, "%s: output bound overflows", what);
    return lb__buf_reserve(out, need, err);
}

static int enc_blosc(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                     lb__buf *out, lb_error *err) {
    if (n > BLOSC_MAX_BUFFERSIZE)
        return lb__err(err, LB_ELIMIT, "blosc cannot compress %zu bytes (at most %d)", n,
                       BLOSC_MAX_BUFFERSIZE);
    int rc = reserve_bound(out, n, BLOSC_MAX_OVERHEAD, "blosc", err);
    if (rc) return rc;
    if (typesize == 0) typesize = 1;
    int shuffle = c->blosc_shuffle;
    if (shuffle < 0) /* numcodecs AUTOSHUFFLE */
        shuffle = typesize == 1 ? BLOSC_BITSHUFFLE : BLOSC_SHUFFLE;
    int r = blosc_compress_ctx(c->level, shuffle, typesize, n, src, out->data,
                               n + BLOSC_MAX_OVERHEAD, cname_of(c),
                               (size_t)(c->blosc_blocksize > 0 ? c->blosc_blocksize : 0), 1);
    if (r <= 0) return lb__err(err, LB_EINVAL, "blosc compression failed (%d)", r);
    out->size = (size_t)r;
    return 0;
}

static int enc_zstd(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                    lb_error *err) {
    int rc = lb__codec_check_encode(c, err);
    if (rc) return rc;
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound)) return lb__err(err, LB_ELIMIT, "zstd cannot compress %zu bytes", n);
    rc = lb__buf_reserve(out, bound, err);
    if (rc) return rc;
    thread_ctx *t = thread_ctx_get();
    if (t && !t->zc) t->zc = ZSTD_createCCtx();
    ZSTD_CCtx *cc = t && t->zc ? t->zc : ZSTD_createCCtx();
    if (!cc) return lb__err(err, LB_ENOMEM, "out of memory (zstd compressor)");
    /* A reused context keeps the parameters of its last use: set all. */
    size_t r = ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, c->level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, c->checksum ? 1 : 0);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_compress2(cc, out->data, bound, src, n);
    if (!t || cc != t->zc) ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r))
        return lb__err(err, LB_EINVAL, "zstd compression failed (%s)", ZSTD_getErrorName(r));
    out->size = r;
    return 0;
}

static int enc_deflate(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                       lb_error *err) {
    int gzip = c->id == LB__CODEC_GZIP && !c->n5_use_zlib;
    int level = c->level < 0 ? DEFAULT_DEFLATE_LEVEL : c->level;
    if (level > 12) level = 12;
    struct libdeflate_compressor *d = libdeflate_alloc_compressor(level);
    if (!d) return lb__err(err, LB_ENOMEM, "out of memory (deflate compressor)");
    size_t bound = gzip ? libdeflate_gzip_compress_bound(d, n) : libdeflate_zlib_compress_bound(d, n);
    int rc = lb__buf_reserve(out, bound, err);
    if (!rc) {
        size_t r = gzip ? libdeflate_gzip_compress(d, src, n, out->data, bound)
                        : libdeflate_zlib_compress(d, src, n, out->data, bound);
        if (r == 0) rc = lb__err(err, LB_EINVAL, "%s compression failed", gzip ? "gzip" : "zlib");
        else out->size = r;
    }
    libdeflate_free_compressor(d);
    return rc;
}

static int enc_lz4(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                   lb_error *err) {
    if (n > LZ4_MAX_INPUT_SIZE)
        return lb__err(err, LB_ELIMIT, "lz4 cannot compress %zu bytes (at most %d)", n,
                       LZ4_MAX_INPUT_SIZE);
    int bound = LZ4_compressBound((int)n);
    int rc = reserve_bound(out, (size_t)bound, 4, "lz4", err);
    if (rc) return rc;
    wr_le32(out->data, (uint32_t)n);
    int r = LZ4_compress_fast((const char *)src, (char *)out->data + 4, (int)n, bound,
                              c->acceleration);
    if (r <= 0) return lb__err(err, LB_EINVAL, "lz4 compression failed");
    out->size = 4 + (size_t)r;
    return 0;
}

static int enc_lz4_n5(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                      lb_error *err) {
    size_t bs = (size_t)(c->n5_block_size >= N5LZ4_MIN_BLOCK && c->n5_block_size <= N5LZ4_MAX_BLOCK
                             ? c->n5_block_size
                             : DEFAULT_N5_LZ4_BLOCK);
    /* lz4-java's token level: ceil(log2(blockSize)) - 10, at least 0. */
    int level = 0;
    while (((size_t)1 << (level + N5LZ4_LEVEL_BASE)) < bs) level++;
    size_t nblocks = n / bs + (n % bs != 0);
    size_t per = N5LZ4_HEADER + (size_t)LZ4_compressBound((int)bs), need;
    if (lb__mul_size(nblocks, per, &need))
        return lb__err(err, LB_ELIMIT, "N5 lz4: output bound overflows");
    int rc = reserve_bound(out, need, N5LZ4_HEADER, "N5 lz4", err);
    if (rc) return rc;
    uint8_t *o = out->data;
    for (size_t i = 0; i < nblocks; i++) {
        size_t len = i + 1 < nblocks ? bs : n - i * bs;
        const uint8_t *blk = src + i * bs;
        uint8_t *h = o;
        int r = LZ4_compress_default((const char *)blk, (char *)h + N5LZ4_HEADER, (int)len,
                                     LZ4_compressBound((int)bs));
        int method = N5LZ4_LZ4;
        if (r <= 0 || (size_t)r >= len) { /* incompressible: store, as lz4-java does */
            memcpy(h + N5LZ4_HEADER, blk, len);
            r = (int)len;
            method = N5LZ4_RAW;
        }
        memcpy(h, N5LZ4_MAGIC, 8);
        h[8] = (uint8_t)(method | level);
        wr_le32(h + 9, (uint32_t)r);
        wr_le32(h + 13, (uint32_t)len);
        wr_le32(h + 17, lb__xxh32(blk, len, N5LZ4_SEED) & 0x0FFFFFFFU);
        o += N5LZ4_HEADER + (size_t)r;
    }
    memcpy(o, N5LZ4_MAGIC, 8); /* end block: raw, empty, checksum 0 */
    o[8] = (uint8_t)(N5LZ4_RAW | level);
    memset(o + 9, 0, 12);
    o += N5LZ4_HEADER;
    out->size = (size_t)(o - out->data);
    return 0;
}

static int enc_bz2(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                   lb_error *err) {
    if (n > UINT_MAX / 2)
        return lb__err(err, LB_ELIMIT, "bz2 cannot compress %zu bytes in one call", n);
    size_t bound = n + n / 100 + 601; /* bzlib manual: 1% + 600 bytes */
    int rc = lb__buf_reserve(out, bound, err);
    if (rc) return rc;
    unsigned dlen = (unsigned)bound;
    int level = c->level >= 1 && c->level <= 9 ? c->level : DEFAULT_BZ2_LEVEL;
    int r = BZ2_bzBuffToBuffCompress((char *)out->data, &dlen, (char *)(uintptr_t)src,
                                     (unsigned)n, level, 0, 0);
    if (r != BZ_OK)
        return lb__err(err, r == BZ_MEM_ERROR ? LB_ENOMEM : LB_EINVAL,
                       "bz2 compression failed (%d)", r);
    out->size = dlen;
    return 0;
}

static int enc_xz(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                  lb_error *err) {
    size_t bound = lzma_stream_buffer_bound(n);
    if (bound == 0) return lb__err(err, LB_ELIMIT, "xz cannot compress %zu bytes", n);
    int rc = lb__buf_reserve(out, bound, err);
    if (rc) return rc;
    uint32_t preset = (uint32_t)(c->level >= 0 && c->level <= 9 ? c->level : DEFAULT_XZ_PRESET);
    if (c->xz_extreme) preset |= LZMA_PRESET_EXTREME;
    size_t pos = 0;
    lzma_ret r = lzma_easy_buffer_encode(preset, LZMA_CHECK_CRC64, NULL, src, n, out->data,
                                         &pos, bound);
    if (r != LZMA_OK)
        return lb__err(err, r == LZMA_MEM_ERROR ? LB_ENOMEM : LB_EINVAL,
                       "xz compression failed (%d)", (int)r);
    out->size = pos;
    return 0;
}

int lb__codec_encode(const lb__codec *c, const void *src, size_t n, size_t typesize,
                     lb__buf *out, lb_error *err) {
    if (!c || !out || (!src && n)) return lb__err(err, LB_EINVAL, "codec encode: NULL argument");
    static const uint8_t empty[1] = {0};
    const uint8_t *s = n ? src : empty;
    out->size = 0;
    switch (c->id) {
    case LB__CODEC_RAW: {
        int rc = lb__buf_reserve(out, n, err);
        if (rc) return rc;
        if (n) memcpy(out->data, s, n);
        out->size = n;
        return 0;
    }
    case LB__CODEC_BLOSC: return enc_blosc(c, s, n, typesize, out, err);
    case LB__CODEC_ZSTD: return enc_zstd(c, s, n, out, err);
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB: return enc_deflate(c, s, n, out, err);
    case LB__CODEC_LZ4: return enc_lz4(c, s, n, out, err);
    case LB__CODEC_LZ4_N5: return enc_lz4_n5(c, s, n, out, err);
    case LB__CODEC_BZ2: return enc_bz2(c, s, n, out, err);
    case LB__CODEC_XZ: return enc_xz(c, s, n, out, err);
    }
    return lb__err(err, LB_EINVAL, "unknown codec id %d", (int)c->id);
}
