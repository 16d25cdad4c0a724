/*
 * tool_lbio.c — a small program on the public API that reads and writes
 * stored datasets as raw native-endian C-order bytes, so that
 * tests/py_interop.py can compare labelbin with zarr-python byte for byte.
 * Not installed; errors go to stderr as "tool_lbio: <message>", exit 1
 * (usage errors exit 2).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <labelbin.h>

static const char usage[] =
    "usage: tool_lbio read PATH OUTFILE [--roi ROI | --start A,B,.. --count X,Y,..]\n"
    "       tool_lbio write PATH INFILE --format zarr2|n5 --dtype DTYPE\n"
    "                 --shape A,B,.. --chunks X,Y,.. [--order C|F] [--sep .|/]\n"
    "                 [--big-endian] [--codec SPEC] [--fill JSON] [--attrs JSON]\n"
    "                 [--overwrite] [--no-data]\n"
    "       tool_lbio write-partial PATH INFILE --start A,B,.. --count X,Y,..\n"
    "Buffers are raw native-endian C-order bytes. `read` prints a one-line\n"
    "JSON description of the array on stdout. `write --no-data` only creates\n"
    "the dataset (INFILE is not read; every chunk stays absent).\n";

static int fail(const char *fmt, ...) {
    va_list ap;
    fputs("tool_lbio: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int usage_error(const char *fmt, ...) {
    va_list ap;
    fputs("tool_lbio: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage, stderr);
    return 2;
}

/* The library's messages already name the path, chunk key or ROI. */
static int lib_fail(const char *what, const lb_error *err) {
    const char *msg = err->message[0] ? err->message : lb_strerror(err->code);
    return what ? fail("%s: %s", what, msg) : fail("%s", msg);
}

/* Parse "a,b,c" into at most LB_MAX_DIMS int64 values; -1 on bad text. */
static int parse_list(const char *text, int64_t *out) {
    int n = 0;
    const char *p = text;
    if (!*p)
        return -1;
    for (;;) {
        char *end;
        long long v;
        if (n == LB_MAX_DIMS)
            return -1;
        errno = 0;
        v = strtoll(p, &end, 10);
        if (end == p || errno)
            return -1;
        out[n++] = (int64_t)v;
        if (*end == '\0')
            return n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

static const struct {
    const char *name;
    lb_dtype dtype;
} dtype_names[] = {
    {"uint8", LB_DTYPE_UINT8}, {"uint16", LB_DTYPE_UINT16},
    {"uint32", LB_DTYPE_UINT32}, {"uint64", LB_DTYPE_UINT64},
    {"int8", LB_DTYPE_INT8}, {"int16", LB_DTYPE_INT16},
    {"int32", LB_DTYPE_INT32}, {"int64", LB_DTYPE_INT64},
};

static int parse_dtype(const char *name, lb_dtype *out) {
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++) {
        if (strcmp(name, dtype_names[i].name) == 0) {
            *out = dtype_names[i].dtype;
            return 0;
        }
    }
    return -1;
}

/* Π count × itemsize as size_t; -1 on a negative entry or overflow. */
static int box_bytes(const int64_t *count, int n, size_t itemsize, size_t *out) {
    size_t total = itemsize;
    for (int i = 0; i < n; i++) {
        if (count[i] < 0 || (uint64_t)count[i] > SIZE_MAX)
            return -1;
        if (__builtin_mul_overflow(total, (size_t)count[i], &total))
            return -1;
    }
    *out = total;
    return 0;
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail("%s: %s", path, strerror(errno));
    if (n && fwrite(data, 1, n, f) != n) {
        int e = errno;
        fclose(f);
        return fail("%s: write failed: %s", path, strerror(e));
    }
    if (fclose(f) != 0)
        return fail("%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* Read the whole file; it must hold exactly `expect` bytes. */
static int read_file(const char *path, size_t expect, void **out) {
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    size_t got;
    int extra;
    if (!f)
        return fail("%s: %s", path, strerror(errno));
    buf = malloc(expect ? expect : 1);
    if (!buf) {
        fclose(f);
        return fail("%s: out of memory for %zu bytes", path, expect);
    }
    got = fread(buf, 1, expect, f);
    extra = fgetc(f);
    fclose(f);
    if (got != expect || extra != EOF) {
        free(buf);
        return fail("%s: expected exactly %zu bytes of input", path, expect);
    }
    *out = buf;
    return 0;
}

/* JSON string with the escapes JSON requires. */
static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_i64_list(FILE *f, const int64_t *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%" PRId64, i ? ", " : "", v[i]);
    fputc(']', f);
}

/* The one-line description `read` prints. Embedded JSON texts (codec,
 * attrs) come from the library and are printed as they are, so a Python
 * json.loads of the line also checks that they are valid JSON. */
static void describe(FILE *f, const lb_array *a) {
    lb_roi roi;
    int ndim = lb_array_ndim(a), dims = lb_array_dims(a);
    const char *fmt = lb_array_format(a), *codec = lb_array_codec_json(a);
    const char *attrs = lb_array_attrs_json(a);
    const int64_t *chunks = lb_array_chunks(a);
    lb_array_roi(a, &roi);
    fputs("{\"dtype\": ", f);
    put_json_string(f, lb_dtype_name(lb_array_dtype(a)));
    fputs(", \"shape\": ", f);
    put_i64_list(f, lb_array_shape(a), ndim);
    fputs(", \"format\": ", f);
    if (fmt)
        put_json_string(f, fmt);
    else
        fputs("null", f);
    fputs(", \"chunks\": ", f);
    if (chunks)
        put_i64_list(f, chunks, ndim);
    else
        fputs("null", f);
    fputs(", \"voxel_size\": ", f);
    put_i64_list(f, lb_array_voxel_size(a), dims);
    fputs(", \"roi\": {\"offset\": ", f);
    put_i64_list(f, roi.offset, roi.ndim);
    fputs(", \"shape\": ", f);
    put_i64_list(f, roi.shape, roi.ndim);
    fputs("}, \"axes\": [", f);
    for (int i = 0; i < ndim; i++) {
        if (i)
            fputs(", ", f);
        put_json_string(f, lb_array_axis(a, i));
    }
    fprintf(f, "], \"num_channels\": %" PRId64, lb_array_num_channels(a));
    fprintf(f, ", \"writable\": %s", lb_array_writable(a) ? "true" : "false");
    fprintf(f, ", \"codec\": %s", codec ? codec : "null");
    fprintf(f, ", \"attrs\": %s", attrs ? attrs : "null");
    fputs(", \"warnings\": [", f);
    for (int i = 0; i < lb_array_warning_count(a); i++) {
        if (i)
            fputs(", ", f);
        put_json_string(f, lb_array_warning(a, i));
    }
    fputs("]}\n", f);
}

static int cmd_read(int argc, char **argv) {
    const char *path, *outfile, *roi_text = NULL, *start_text = NULL,
               *count_text = NULL;
    lb_error err = {0};
    lb_array *a = NULL;
    void *buf = NULL;
    size_t size = 0;
    int rc = 1, ndim;
    int64_t start[LB_MAX_DIMS] = {0}, count[LB_MAX_DIMS];

    if (argc < 2)
        return usage_error("read: expected PATH OUTFILE");
    path = argv[0];
    outfile = argv[1];
    for (int i = 2; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--roi") == 0)
            roi_text = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--start") == 0)
            start_text = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--count") == 0)
            count_text = argv[++i];
        else
            return usage_error("read: unexpected argument '%s'", argv[i]);
    }
    if (roi_text && (start_text || count_text))
        return usage_error("read: --roi excludes --start/--count");
    if (!start_text != !count_text)
        return usage_error("read: --start and --count go together");

    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &err) != 0)
        return lib_fail(NULL, &err);
    ndim = lb_array_ndim(a);

    if (roi_text) {
        lb_roi roi;
        if (lb_roi_parse(roi_text, &roi, &err) != 0) {
            rc = lib_fail("--roi", &err);
            goto done;
        }
        size = lb_array_read_size(a, &roi);
        buf = malloc(size ? size : 1);
        if (!buf) {
            rc = fail("out of memory for %zu bytes", size);
            goto done;
        }
        if (lb_array_read(a, &roi, buf, size, &err) != 0) {
            rc = lib_fail(NULL, &err);
            goto done;
        }
    } else {
        if (start_text) {
            if (parse_list(start_text, start) != ndim ||
                parse_list(count_text, count) != ndim) {
                rc = usage_error("read: --start/--count need %d integers", ndim);
                goto done;
            }
        } else {
            memcpy(count, lb_array_shape(a), (size_t)ndim * sizeof *count);
        }
        if (box_bytes(count, ndim, lb_dtype_size(lb_array_dtype(a)), &size) != 0) {
            rc = fail("%s: the requested box is too large", path);
            goto done;
        }
        buf = malloc(size ? size : 1);
        if (!buf) {
            rc = fail("out of memory for %zu bytes", size);
            goto done;
        }
        if (lb_array_data_read(a, start, count, buf, size, &err) != 0) {
            rc = lib_fail(NULL, &err);
            goto done;
        }
    }
    if (write_file(outfile, buf, size) != 0)
        goto done;
    describe(stdout, a);
    rc = fflush(stdout) == 0 ? 0 : fail("stdout: %s", strerror(errno));
done:
    free(buf);
    lb_array_free(a);
    return rc;
}

static int cmd_write(int argc, char **argv) {
    const char *path, *infile;
    const char *format = NULL, *dtype = NULL, *shape_text = NULL,
               *chunks_text = NULL;
    lb_create_options opt;
    lb_error err = {0};
    lb_array *a = NULL;
    void *buf = NULL;
    size_t size;
    int ndim, rc = 1, no_data = 0;
    int64_t shape[LB_MAX_DIMS], chunks[LB_MAX_DIMS], start[LB_MAX_DIMS] = {0};

    if (argc < 2)
        return usage_error("write: expected PATH INFILE");
    path = argv[0];
    infile = argv[1];
    lb_create_options_init(&opt);
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--big-endian") == 0) {
            opt.big_endian = 1;
            continue;
        }
        if (strcmp(o, "--overwrite") == 0) {
            opt.overwrite = 1;
            continue;
        }
        if (strcmp(o, "--no-data") == 0) {
            no_data = 1;
            continue;
        }
        if (!v)
            return usage_error("write: option '%s' needs a value", o);
        i++;
        if (strcmp(o, "--format") == 0)
            format = v;
        else if (strcmp(o, "--dtype") == 0)
            dtype = v;
        else if (strcmp(o, "--shape") == 0)
            shape_text = v;
        else if (strcmp(o, "--chunks") == 0)
            chunks_text = v;
        else if (strcmp(o, "--order") == 0 && (!strcmp(v, "C") || !strcmp(v, "F")))
            opt.fortran_order = v[0] == 'F';
        else if (strcmp(o, "--sep") == 0 && (!strcmp(v, ".") || !strcmp(v, "/")))
            opt.separator = v[0];
        else if (strcmp(o, "--codec") == 0)
            opt.codec = v;
        else if (strcmp(o, "--fill") == 0)
            opt.fill_value_json = v;
        else if (strcmp(o, "--attrs") == 0)
            opt.attrs_json = v;
        else
            return usage_error("write: bad option '%s %s'", o, v);
    }
    if (!format || !dtype || !shape_text || !chunks_text)
        return usage_error("write: --format, --dtype, --shape and --chunks are required");
    if (strcmp(format, "zarr2") == 0)
        opt.format = LB_FORMAT_ZARR2;
    else if (strcmp(format, "n5") == 0)
        opt.format = LB_FORMAT_N5;
    else
        return usage_error("write: --format must be zarr2 or n5, not '%s'", format);
    if (parse_dtype(dtype, &opt.dtype) != 0)
        return usage_error("write: unknown --dtype '%s'", dtype);
    ndim = parse_list(shape_text, shape);
    if (ndim < 1 || parse_list(chunks_text, chunks) != ndim)
        return usage_error("write: --shape and --chunks need the same number of integers");
    if (box_bytes(shape, ndim, lb_dtype_size(opt.dtype), &size) != 0)
        return fail("write: --shape %s is too large", shape_text);
    if (!no_data && read_file(infile, size, &buf) != 0)
        return 1;
    if (lb_dataset_create(path, ndim, shape, chunks, &opt, &a, &err) != 0) {
        rc = lib_fail(NULL, &err);
        goto done;
    }
    if (!no_data && lb_array_data_write(a, start, shape, buf, size, &err) != 0) {
        rc = lib_fail(NULL, &err);
        goto done;
    }
    rc = 0;
done:
    free(buf);
    lb_array_free(a);
    return rc;
}

static int cmd_write_partial(int argc, char **argv) {
    const char *path, *infile, *start_text = NULL, *count_text = NULL;
    lb_error err = {0};
    lb_array *a = NULL;
    void *buf = NULL;
    size_t size;
    int ndim, rc = 1;
    int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS];

    if (argc < 2)
        return usage_error("write-partial: expected PATH INFILE");
    path = argv[0];
    infile = argv[1];
    for (int i = 2; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--start") == 0)
            start_text = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--count") == 0)
            count_text = argv[++i];
        else
            return usage_error("write-partial: unexpected argument '%s'", argv[i]);
    }
    if (!start_text || !count_text)
        return usage_error("write-partial: --start and --count are required");

    if (lb_array_open(path, LB_OPEN_WRITE, NULL, 0, &a, &err) != 0)
        return lib_fail(NULL, &err);
    ndim = lb_array_ndim(a);
    if (parse_list(start_text, start) != ndim || parse_list(count_text, count) != ndim) {
        rc = usage_error("write-partial: --start/--count need %d integers", ndim);
        goto done;
    }
    if (box_bytes(count, ndim, lb_dtype_size(lb_array_dtype(a)), &size) != 0) {
        rc = fail("write-partial: --count %s is too large", count_text);
        goto done;
    }
    if (read_file(infile, size, &buf) != 0)
        goto done;
    if (lb_array_data_write(a, start, count, buf, size, &err) != 0) {
        rc = lib_fail(NULL, &err);
        goto done;
    }
    rc = 0;
done:
    free(buf);
    lb_array_free(a);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return usage_error("expected a subcommand");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "read") == 0)
        return cmd_read(argc - 2, argv + 2);
    if (strcmp(argv[1], "write") == 0)
        return cmd_write(argc - 2, argv + 2);
    if (strcmp(argv[1], "write-partial") == 0)
        return cmd_write_partial(argc - 2, argv + 2);
    return usage_error("unknown subcommand '%s'", argv[1]);
}
