/*
 * crop_classes.c — class tables: (name, id, member ids) rows that map a
 * crop's class names to label ids and group classes (mito = 3,4,5) to their
 * members. The built-in table is CellMap's; others are read from the same
 * CSV form. Every group class also gets its atomic ids (members resolved
 * through nested group classes), which inferred negatives compare.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "array/crop.h"
#include "core/json.h"

/* CellMap's label classes: name, id, and the members of group classes. */
static const struct {
    const char *name;
    unsigned id;
    const char *members;
} builtin[] = {
    {"ecs", 1, ""},
    {"pm", 2, ""},
    {"mito_mem", 3, ""},
    {"mito_lum", 4, ""},
    {"mito_ribo", 5, ""},
    {"golgi_mem", 6, ""},
    {"golgi_lum", 7, ""},
    {"ves_mem", 8, ""},
    {"ves_lum", 9, ""},
    {"endo_mem", 10, ""},
    {"endo_lum", 11, ""},
    {"lyso_mem", 12, ""},
    {"lyso_lum", 13, ""},
    {"ld_mem", 14, ""},
    {"ld_lum", 15, ""},
    {"er_mem", 16, ""},
    {"er_lum", 17, ""},
    {"eres_mem", 18, ""},
    {"eres_lum", 19, ""},
    {"ne_mem", 20, ""},
    {"ne_lum", 21, ""},
    {"np_out", 22, ""},
    {"np_in", 23, ""},
    {"hchrom", 24, ""},
    {"nhchrom", 25, ""},
    {"echrom", 26, ""},
    {"nechrom", 27, ""},
    {"nucpl", 28, ""},
    {"nucleo", 29, ""},
    {"mt_out", 30, ""},
    {"cent", 31, ""},
    {"cent_dapp", 32, ""},
    {"cent_sdapp", 33, ""},
    {"ribo", 34, ""},
    {"cyto", 35, ""},
    {"mt_in", 36, ""},
    {"nuc", 37, "20,21,22,23,24,25,26,27,28,29"},
    {"vim", 38, ""},
    {"glyco", 39, ""},
    {"golgi", 40, "6,7"},
    {"ves", 41, "8,9"},
    {"endo", 42, "10,11"},
    {"lyso", 43, "12,13"},
    {"ld", 44, "14,15"},
    {"rbc", 45, ""},
    {"eres", 46, "18,19"},
    {"perox_mem", 47, ""},
    {"perox_lum", 48, ""},
    {"perox", 49, "47,48"},
    {"mito", 50, "3,4,5"},
    {"er", 51, "16,17,18,19,20,21,22,23"},
    {"ne", 52, "20,21,22,23"},
    {"np", 53, "22,23"},
    {"chrom", 54, "24,25,26,27"},
    {"mt", 55, "30,36"},
    {"isg_mem", 56, ""},
    {"isg_lum", 57, ""},
    {"isg_ins", 58, ""},
    {"isg", 59, "56,57,58"},
    {"cell", 60, "2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,38,39,47,48,56,57,58,61,62"},
    {"actin", 61, ""},
    {"tbar", 62, ""},
    {"bm", 63, ""},
    {"er_mem_all", 64, "16,18,20"},
    {"ne_mem_all", 65, "20,22,23"},
    {"cent_all", 66, "31,32,33"},
    {"chloroplast_mem", 67, ""},
    {"chloroplast_lum", 68, ""},
    {"chloroplast_sg", 69, ""},
    {"chloroplast", 70, "67,68,69"},
    {"vacuole_mem", 71, ""},
    {"vacuole_lum", 72, ""},
    {"vacuole", 73, "71,72"},
    {"plasmodesmata", 74, ""},
};

#define MAX_NAME 255
#define MAX_ROWS 100000

const char *lb__crop_name_problem(const char *name) {
    size_t n = strlen(name);
    if (n == 0) return "it is empty";
    if (n > MAX_NAME) return "it is longer than 255 bytes";
    if (!strcmp(name, ".") || !strcmp(name, "..")) return "it names a relative directory";
    if (name[0] == '_' && name[1] == '_') return "names starting with \"__\" are reserved";
    if (!strncmp(name, ".z", 2)) return "names starting with \".z\" are Zarr metadata files";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p == '/' || *p == '\\') return "it contains a path separator";
        if (*p < 0x20 || *p == 0x7f) return "it contains a control character";
    }
    if (!lb__utf8_valid(name, n)) return "it is not valid UTF-8";
    return NULL;
}

void lb_classes_free(lb_classes *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].name);
        free(c->e[i].members);
        free(c->e[i].atomic);
    }
    free(c->e);
    free(c->source);
    free(c);
}

size_t lb_classes_count(const lb_classes *c) { return c ? c->n : 0; }
const char *lb_classes_name(const lb_classes *c, size_t i) {
    return c && i < c->n ? c->e[i].name : NULL;
}
uint64_t lb_classes_id(const lb_classes *c, size_t i) { return c && i < c->n ? c->e[i].id : 0; }
size_t lb_classes_members(const lb_classes *c, size_t i, const uint64_t **ids) {
    if (ids) *ids = NULL;
    if (!c || i >= c->n) return 0;
    if (ids) *ids = c->e[i].members;
    return c->e[i].n_members;
}
const char *lb_classes_source(const lb_classes *c) { return c ? c->source : NULL; }

long lb__classes_by_id(const lb_classes *c, uint64_t id) {
    for (size_t i = 0; c && i < c->n; i++)
        if (c->e[i].id == id) return (long)i;
    return -1;
}

long lb__classes_by_name(const lb_classes *c, const char *name) {
    for (size_t i = 0; c && i < c->n; i++)
        if (!strcmp(c->e[i].name, name)) return (long)i;
    return -1;
}

static int u64_cmp(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Append the atomic ids of row i to *out (depth-first; `state` 1 = on the
 * current path: a cycle). */
static int collect_atomic(lb_classes *c, size_t i, uint8_t *state, lb__buf *out,
                          const int *lines, const char *where, lb_error *err) {
    lb__class_entry *e = &c->e[i];
    if (e->n_members == 0) return lb__buf_append(out, &e->id, sizeof e->id, err);
    if (state[i] == 1)
        return lines ? lb__err(err, LB_EFORMAT, "%s:%d: group class \"%s\" contains itself "
                               "through its members", where, lines[i], e->name)
                     : lb__err(err, LB_EFORMAT, "%s: group class \"%s\" contains itself "
                               "through its members", where, e->name);
    state[i] = 1;
    for (size_t k = 0; k < e->n_members; k++) {
        long m = lb__classes_by_id(c, e->members[k]);
        int rc = collect_atomic(c, (size_t)m, state, out, lines, where, err);
        if (rc) return rc;
    }
    state[i] = 0;
    return 0;
}

/* Check the rows (unique names and ids, members known) and compute every
 * row's atomic ids. `lines` (may be NULL) gives each row's line. */
static int finish(lb_classes *c, const int *lines, const char *where, lb_error *err) {
    char at[64] = "";
    for (size_t i = 0; i < c->n; i++) {
        lb__class_entry *e = &c->e[i];
        if (lines) snprintf(at, sizeof at, ":%d", lines[i]);
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(c->e[j].name, e->name))
                return lb__err(err, LB_EFORMAT, "%s%s: class \"%s\" is listed twice", where, at,
                               e->name);
            if (c->e[j].id == e->id)
                return lb__err(err, LB_EFORMAT, "%s%s: id %llu is used by \"%s\" and \"%s\"",
                               where, at, (unsigned long long)e->id, c->e[j].name, e->name);
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        lb__class_entry *e = &c->e[i];
        if (lines) snprintf(at, sizeof at, ":%d", lines[i]);
        for (size_t k = 0; k < e->n_members; k++) {
            if (e->members[k] == e->id)
                return lb__err(err, LB_EFORMAT, "%s%s: group class \"%s\" lists its own id %llu",
                               where, at, e->name, (unsigned long long)e->id);
            if (lb__classes_by_id(c, e->members[k]) < 0)
                return lb__err(err, LB_EFORMAT, "%s%s: member %llu of \"%s\" is not an id of "
                               "the table", where, at, (unsigned long long)e->members[k],
                               e->name);
        }
    }
    uint8_t *state = lb__calloc(c->n ? c->n : 1, 1, "class table", err);
    if (!state) return LB_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        lb__buf b = {0};
        memset(state, 0, c->n);
        rc = collect_atomic(c, i, state, &b, lines, where, err);
        if (!rc) {
            size_t n = b.size / sizeof(uint64_t);
            uint64_t *v = (uint64_t *)b.data;
            qsort(v, n, sizeof *v, u64_cmp);
            size_t m = 0;
            for (size_t k = 0; k < n; k++)
                if (m == 0 || v[m - 1] != v[k]) v[m++] = v[k];
            c->e[i].atomic = v;
            c->e[i].n_atomic = m;
        } else {
            lb__buf_free(&b);
        }
    }
    free(state);
    return rc;
}

/* Parse a comma-separated list of decimal ids ("3,4,5"; spaces allowed). */
static int parse_members(const char *s, size_t len, lb__class_entry *e, const char *at,
                         lb_error *err) {
    size_t cap = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i == len) break;
        size_t b = i;
        uint64_t v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            unsigned d = (unsigned)(s[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return lb__err(err, LB_EFORMAT, "%s: member id \"%.*s\" is too large", at,
                               (int)(len - b > 24 ? 24 : len - b), s + b);
            v = v * 10 + d;
            i++;
        }
        if (i == b)
            return lb__err(err, LB_EFORMAT, "%s: member ids \"%.*s\": expected decimal ids "
                           "separated by commas", at, (int)(len > 60 ? 60 : len), s);
        while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i < len && s[i] != ',')
            return lb__err(err, LB_EFORMAT, "%s: member ids \"%.*s\": expected decimal ids "
                           "separated by commas", at, (int)(len > 60 ? 60 : len), s);
        if (i < len) {
            i++;
            size_t k = i;
            while (k < len && (s[k] == ' ' || s[k] == '\t')) k++;
            if (k == len)
                return lb__err(err, LB_EFORMAT, "%s: member ids \"%.*s\" end with a comma", at,
                               (int)(len > 60 ? 60 : len), s);
        }
        for (size_t k = 0; k < e->n_members; k++)
            if (e->members[k] == v)
                return lb__err(err, LB_EFORMAT, "%s: member %llu is listed twice", at,
                               (unsigned long long)v);
        if (e->n_members == cap) {
            size_t nc = cap ? cap * 2 : 8;
            uint64_t *m = realloc(e->members, nc * sizeof *m);
            if (!m) return lb__err(err, LB_ENOMEM, "out of memory reading a class table");
            e->members = m;
            cap = nc;
        }
        e->members[e->n_members++] = v;
    }
    return 0;
}

static int add_row(lb_classes *c, size_t *cap, const char *name, size_t name_len, uint64_t id,
                   const char *members, size_t members_len, const char *at, lb_error *err) {
    if (c->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        lb__class_entry *e = realloc(c->e, nc * sizeof *e);
        if (!e) return lb__err(err, LB_ENOMEM, "out of memory reading a class table");
        c->e = e;
        *cap = nc;
    }
    lb__class_entry *e = &c->e[c->n];
    memset(e, 0, sizeof *e);
    e->name = lb__malloc(name_len + 1, "class table", err);
    if (!e->name) return LB_ENOMEM;
    memcpy(e->name, name, name_len);
    e->name[name_len] = '\0';
    c->n++;
    if (strlen(e->name) != name_len)
        return lb__err(err, LB_EFORMAT, "%s: the name contains a NUL byte", at);
    const char *why = lb__crop_name_problem(e->name);
    if (why)
        return lb__err(err, LB_EFORMAT, "%s: class name \"%.60s\" cannot name a group: %s", at,
                       e->name, why);
    e->id = id;
    return parse_members(members, members_len, e, at, err);
}

static lb_classes *new_table(const char *source, lb_error *err) {
    lb_classes *c = lb__calloc(1, sizeof *c, "class table", err);
    if (!c) return NULL;
    c->source = lb__strdup(source, err);
    if (!c->source) {
        free(c);
        return NULL;
    }
    return c;
}

int lb_classes_builtin(lb_classes **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_classes_builtin: no output pointer");
    *out = NULL;
    lb_classes *c = new_table("built-in CellMap table", err);
    if (!c) return LB_ENOMEM;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin && !rc; i++)
        rc = add_row(c, &cap, builtin[i].name, strlen(builtin[i].name), builtin[i].id,
                     builtin[i].members, strlen(builtin[i].members), "built-in CellMap table",
                     err);
    if (!rc) rc = finish(c, NULL, "built-in CellMap table", err);
    if (rc) {
        lb_classes_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* One CSV field starting at *p (before `end`): quoted ("" is a quote) or
 * plain up to the next comma. The field's text goes to buf. Returns 0, or
 * an error naming `at`. *more = 1 when a comma follows. */
static int csv_field(const char **p, const char *end, lb__buf *buf, int *more, const char *at,
                     lb_error *err) {
    const char *s = *p;
    buf->size = 0;
    *more = 0;
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    if (s < end && *s == '"') {
        s++;
        for (;;) {
            if (s >= end)
                return lb__err(err, LB_EFORMAT, "%s: a quoted field does not end", at);
            if (*s == '"') {
                if (s + 1 < end && s[1] == '"') {
                    if (lb__buf_append(buf, "\"", 1, err)) return LB_ENOMEM;
                    s += 2;
                    continue;
                }
                s++;
                break;
            }
            if (lb__buf_append(buf, s, 1, err)) return LB_ENOMEM;
            s++;
        }
        while (s < end && (*s == ' ' || *s == '\t')) s++;
        if (s < end && *s != ',')
            return lb__err(err, LB_EFORMAT, "%s: text after a quoted field", at);
    } else {
        const char *b = s;
        while (s < end && *s != ',') {
            if (*s == '"') return lb__err(err, LB_EFORMAT, "%s: a quote inside a field", at);
            s++;
        }
        const char *e = s;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (lb__buf_append(buf, b, (size_t)(e - b), err)) return LB_ENOMEM;
    }
    if (s < end && *s == ',') {
        *more = 1;
        s++;
    }
    *p = s;
    if (lb__buf_append(buf, "", 1, err)) return LB_ENOMEM; /* NUL, not counted */
    buf->size--;
    return 0;
}

static int parse_id_text(const char *s, uint64_t *out) {
    if (!*s) return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int lb_classes_parse(const char *text, size_t len, const char *where, lb_classes **out,
                     lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_classes_parse: no output pointer");
    *out = NULL;
    if (!text && len) return lb__err(err, LB_EINVAL, "lb_classes_parse: no text");
    if (!where) where = "class table";
    lb_classes *c = new_table(where, err);
    if (!c) return LB_ENOMEM;
    lb__buf f[3] = {{0}};
    int *lines = NULL;
    size_t cap = 0, lines_cap = 0;
    int rc = 0, line = 0, first = 1;
    const char *p = text, *end = text + len;
    while (p < end && !rc) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        line++;
        const char *ls = p;
        p = eol ? eol + 1 : end;
        if (le > ls && le[-1] == '\r') le--;
        if (line == 1 && le - ls >= 3 && !memcmp(ls, "\xef\xbb\xbf", 3)) ls += 3; /* BOM */
        const char *q = ls;
        while (q < le && (*q == ' ' || *q == '\t')) q++;
        if (q == le) continue; /* blank */
        char at[1100];
        snprintf(at, sizeof at, "%.1000s:%d", where, line);
        int nf = 0, more = 1;
        q = ls;
        while (more) {
            if (nf == 3) {
                rc = lb__err(err, LB_EFORMAT, "%s: expected name,id,\"member ids\" (3 fields "
                             "at most)", at);
                break;
            }
            rc = csv_field(&q, le, &f[nf], &more, at, err);
            if (rc) break;
            nf++;
        }
        if (rc) break;
        if (nf < 2) {
            rc = lb__err(err, LB_EFORMAT, "%s: expected name,id,\"member ids\"", at);
            break;
        }
        uint64_t id;
        if (parse_id_text((const char *)f[1].data, &id) != 0) {
            if (first && !strcmp((const char *)f[0].data, "name")) {
                first = 0;
                continue; /* a header row */
            }
            rc = lb__err(err, LB_EFORMAT, "%s: id \"%.40s\": expected a decimal integer from 0 "
                         "to 2^64-1", at, (const char *)f[1].data);
            break;
        }
        first = 0;
        if (c->n >= MAX_ROWS) {
            rc = lb__err(err, LB_ELIMIT, "%s: more than %d classes", at, MAX_ROWS);
            break;
        }
        if (c->n == lines_cap) {
            size_t nc = lines_cap ? lines_cap * 2 : 64;
            int *nl = realloc(lines, nc * sizeof *nl);
            if (!nl) {
                rc = lb__err(err, LB_ENOMEM, "out of memory reading a class table");
                break;
            }
            lines = nl;
            lines_cap = nc;
        }
        lines[c->n] = line;
        rc = add_row(c, &cap, (const char *)f[0].data, f[0].size, id,
                     nf == 3 ? (const char *)f[2].data : "", nf == 3 ? f[2].size : 0, at, err);
    }
    if (!rc && c->n == 0) rc = lb__err(err, LB_EFORMAT, "%s: no classes", where);
    if (!rc) rc = finish(c, lines, where, err);
    for (int i = 0; i < 3; i++) lb__buf_free(&f[i]);
    free(lines);
    if (rc) {
        lb_classes_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int lb__classes_copy(const lb_classes *src, lb_classes **out, lb_error *err) {
    *out = NULL;
    lb_classes *c = new_table(src->source, err);
    if (!c) return LB_ENOMEM;
    c->e = lb__calloc(src->n ? src->n : 1, sizeof *c->e, "class table", err);
    if (!c->e) {
        lb_classes_free(c);
        return LB_ENOMEM;
    }
    for (size_t i = 0; i < src->n; i++) {
        const lb__class_entry *s = &src->e[i];
        lb__class_entry *d = &c->e[i];
        c->n = i + 1;
        d->id = s->id;
        d->name = lb__strdup(s->name, err);
        d->n_members = s->n_members;
        d->n_atomic = s->n_atomic;
        if (s->n_members) d->members = lb__malloc(s->n_members * sizeof *d->members, "class table", err);
        d->atomic = lb__malloc((s->n_atomic ? s->n_atomic : 1) * sizeof *d->atomic, "class table", err);
        if (!d->name || (s->n_members && !d->members) || !d->atomic) {
            lb_classes_free(c);
            return LB_ENOMEM;
        }
        if (s->n_members) memcpy(d->members, s->members, s->n_members * sizeof *d->members);
        if (s->n_atomic) memcpy(d->atomic, s->atomic, s->n_atomic * sizeof *d->atomic);
    }
    *out = c;
    return 0;
}
