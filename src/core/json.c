/*
 * json.c — strict json-c parsing and typed getters whose errors name the
 * JSON path. json-c keeps integers exact up to 2^64-1 (int64 and uint64
 * storage), which label ids need.
 */
#include "core/json.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define LB__JSON_MAX_DEPTH 64

/* Line and column (1-based) of byte offset `pos` in text. */
static void position(const char *text, size_t pos, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* json-c saturates integers outside [-2^63, 2^64-1] without telling, and
 * then prints the saturated value: label ids would silently change. Find
 * such literals in the raw text first (outside strings). */
static int check_integer_ranges(const char *text, size_t len, const char *what,
                                lb_error *err) {
    static const char max_pos[] = "18446744073709551615"; /* 2^64-1 */
    static const char max_neg[] = "9223372036854775808";  /* 2^63   */
    size_t i = 0;
    while (i < len) {
        char c = text[i];
        if (c == '"') { /* skip a string, honouring escapes */
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
            i++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i, d0;
            int neg = c == '-';
            if (neg) i++;
            while (i < len && text[i] == '0' && i + 1 < len && text[i + 1] >= '0' && text[i + 1] <= '9') i++;
            d0 = i;
            while (i < len && text[i] >= '0' && text[i] <= '9') i++;
            size_t nd = i - d0;
            int is_int = !(i < len && (text[i] == '.' || text[i] == 'e' || text[i] == 'E'));
            while (i < len && (text[i] == '.' || text[i] == 'e' || text[i] == 'E' || text[i] == '+' ||
                               text[i] == '-' || (text[i] >= '0' && text[i] <= '9')))
                i++;
            if (!is_int) continue;
            const char *lim = neg ? max_neg : max_pos;
            size_t nl = strlen(lim);
            if (nd > nl || (nd == nl && memcmp(text + d0, lim, nl) > 0)) {
                int line, col;
                position(text, start, &line, &col);
                return lb__err(err, LB_EFORMAT,
                               "%s: integer %.*s at line %d, column %d is outside the 64-bit "
                               "range [-2^63, 2^64-1]", what, (int)(i - start > 40 ? 40 : i - start),
                               text + start, line, col);
            }
            continue;
        }
        i++;
    }
    return 0;
}

int lb__json_parse(const char *text, size_t len, const char *what,
                   json_object **out, lb_error *err) {
    *out = NULL;
    if (len > (size_t)INT_MAX)
        return lb__err(err, LB_ELIMIT, "%s: JSON text too large", what);
    int rc0 = check_integer_ranges(text, len, what, err);
    if (rc0) return rc0;
    /* json-c stops at a NUL byte and calls it "unexpected end of data";
     * say what it is (a binary or zero-filled file). */
    size_t scan = len > 0 && text[len - 1] == '\0' ? len - 1 : len; /* a terminator is fine */
    const char *nul = memchr(text, '\0', scan);
    if (nul) {
        int line, col;
        position(text, (size_t)(nul - text), &line, &col);
        return lb__err(err, LB_EFORMAT, "%s: invalid JSON at line %d, column %d: NUL byte",
                       what, line, col);
    }
    json_tokener *tok = json_tokener_new_ex(LB__JSON_MAX_DEPTH);
    if (!tok) return lb__err(err, LB_ENOMEM, "%s: out of memory", what);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && !o && len > 0) {
        /* A bare number ("7") is only complete once json-c sees a
         * terminator; give it one trailing space. Any error now is at the
         * end of the text, and "unexpected end of data" means truncated. */
        o = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
        if (jerr == json_tokener_error_parse_eof) jerr = json_tokener_continue;
        end = len;
    }
    int rc = 0;
    if (jerr == json_tokener_continue || (!o && jerr == json_tokener_success)) {
        rc = lb__err(err, LB_EFORMAT, o || jerr == json_tokener_continue
                                          ? "%s: JSON text is truncated or empty"
                                          : "%s: expected a JSON value other than null", what);
    } else if (jerr != json_tokener_success) {
        int line, col;
        position(text, end < len ? end : len, &line, &col);
        rc = lb__err(err, LB_EFORMAT, "%s: invalid JSON at line %d, column %d: %s",
                     what, line, col, json_tokener_error_desc(jerr));
    } else {
        for (size_t i = end; i < len; i++) {
            char ch = text[i];
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t' || ch == '\0') continue;
            int line, col;
            position(text, i, &line, &col);
            rc = lb__err(err, LB_EFORMAT,
                         "%s: unexpected text after the JSON value at line %d, column %d",
                         what, line, col);
            break;
        }
    }
    json_tokener_free(tok);
    if (rc) {
        json_object_put(o);
        return rc;
    }
    *out = o;
    return 0;
}

const char *lb__json_string(json_object *o, int pretty) {
    int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
    flags |= pretty ? (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED) : JSON_C_TO_STRING_PLAIN;
    return json_object_to_json_string_ext(o, flags);
}

/* Length of the valid UTF-8 sequence at p (n bytes available) and its code
 * point, or 0 when the bytes there are not valid UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF are invalid). */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp) {
    unsigned c = p[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || (v >= 0xd800 && v <= 0xdfff) ||
        v > 0x10ffff)
        return 0;
    *cp = v;
    return len;
}

int lb__utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = utf8_decode(p + i, n - i, &cp)) == 0) return 0;
    return 1;
}

int lb__json_append_ascii(lb__buf *b, const char *text, size_t n, lb_error *err) {
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] < 0x80) run++;
        int rc = lb__buf_append(b, p + i, run - i, err);
        if (rc) return rc;
        if (run == n) break;
        uint32_t cp;
        size_t len = utf8_decode(p + run, n - run, &cp);
        char esc[16];
        if (len == 0) {
            /* Not UTF-8: U+FFFD for the byte. A lone surrogate (Python's
             * surrogateescape) would keep the byte but strict readers
             * (serde_json, hence zarrs) refuse it. */
            snprintf(esc, sizeof esc, "\\ufffd");
            len = 1;
        } else if (cp < 0x10000) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
        } else {
            cp -= 0x10000;
            snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800u | (unsigned)(cp >> 10),
                     0xdc00u | (unsigned)(cp & 0x3ff));
        }
        rc = lb__buf_append(b, esc, strlen(esc), err);
        if (rc) return rc;
        i = run + len;
    }
    return 0;
}

const char *lb__json_type_name(json_object *o) {
    switch (json_object_get_type(o)) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double: return "a number with a fraction";
    case json_type_int: return "an integer";
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    }
    return "an unknown value";
}

/* json-c stores integers as int64 or uint64; json_object_get_int64 clamps
 * uint64 values above INT64_MAX, so look at the textual form to tell. */
static int is_big_unsigned(json_object *o) {
    if (!json_object_is_type(o, json_type_int)) return 0;
    uint64_t u = json_object_get_uint64(o);
    int64_t s = json_object_get_int64(o);
    return s == INT64_MAX && u > (uint64_t)INT64_MAX;
}

int lb__json_int64(json_object *o, const char *where, int64_t *out, lb_error *err) {
    if (!o || !json_object_is_type(o, json_type_int))
        return lb__err(err, LB_EFORMAT, "%s: expected an integer, found %s", where,
                       o ? lb__json_type_name(o) : "nothing");
    if (is_big_unsigned(o))
        return lb__err(err, LB_EFORMAT, "%s: integer %" PRIu64 " is too large", where,
                       json_object_get_uint64(o));
    *out = json_object_get_int64(o);
    return 0;
}

int lb__json_id(json_object *o, const char *where, lb_id *out, lb_error *err) {
    if (!o || !json_object_is_type(o, json_type_int))
        return lb__err(err, LB_EFORMAT, "%s: expected an integer label id, found %s", where,
                       o ? lb__json_type_name(o) : "nothing");
    if (is_big_unsigned(o)) {
        out->bits = json_object_get_uint64(o);
        out->negative = 0;
        return 0;
    }
    int64_t v = json_object_get_int64(o); /* range checked at parse time */
    out->bits = (uint64_t)v;
    out->negative = v < 0;
    return 0;
}

int lb__json_number(json_object *o, const char *where, double *out, lb_error *err) {
    if (!o || !(json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double)))
        return lb__err(err, LB_EFORMAT, "%s: expected a number, found %s", where,
                       o ? lb__json_type_name(o) : "nothing");
    if (json_object_is_type(o, json_type_int))
        *out = is_big_unsigned(o) ? (double)json_object_get_uint64(o)
                                  : (double)json_object_get_int64(o);
    else
        *out = json_object_get_double(o);
    if (!isfinite(*out))
        return lb__err(err, LB_EFORMAT, "%s: expected a finite number", where);
    return 0;
}

int lb__json_bool(json_object *o, const char *where, int *out, lb_error *err) {
    if (!o || !json_object_is_type(o, json_type_boolean))
        return lb__err(err, LB_EFORMAT, "%s: expected a boolean, found %s", where,
                       o ? lb__json_type_name(o) : "nothing");
    *out = json_object_get_boolean(o) ? 1 : 0;
    return 0;
}

int lb__json_str(json_object *o, const char *where, const char **out, lb_error *err) {
    if (!o || !json_object_is_type(o, json_type_string))
        return lb__err(err, LB_EFORMAT, "%s: expected a string, found %s", where,
                       o ? lb__json_type_name(o) : "nothing");
    *out = json_object_get_string(o);
    return 0;
}

/* Read an array of at most `max` elements with `get`, which stores element
 * i at `out` + i * `size`; `what` names the element type in messages. */
static int json_array(json_object *o, const char *where, const char *what, void *out,
                      size_t size, int max, int *n_out,
                      int (*get)(json_object *, const char *, void *, lb_error *),
                      lb_error *err) {
    if (!o || !json_object_is_type(o, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array of %s, found %s", where, what,
                       o ? lb__json_type_name(o) : "nothing");
    size_t n = json_object_array_length(o);
    if (n > (size_t)max)
        return lb__err(err, LB_ELIMIT, "%s: %zu entries, at most %d are supported", where, n, max);
    for (size_t i = 0; i < n; i++) {
        char w[512];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        int rc = get(json_object_array_get_idx(o, i), w, (char *)out + i * size, err);
        if (rc) return rc;
    }
    *n_out = (int)n;
    return 0;
}

static int get_int64(json_object *o, const char *where, void *out, lb_error *err) {
    return lb__json_int64(o, where, out, err);
}

static int get_number(json_object *o, const char *where, void *out, lb_error *err) {
    return lb__json_number(o, where, out, err);
}

int lb__json_int64_array(json_object *o, const char *where, int64_t *out, int max,
                         int *n_out, lb_error *err) {
    return json_array(o, where, "integers", out, sizeof *out, max, n_out, get_int64, err);
}

int lb__json_number_array(json_object *o, const char *where, double *out, int max,
                          int *n_out, lb_error *err) {
    return json_array(o, where, "numbers", out, sizeof *out, max, n_out, get_number, err);
}

json_object *lb__json_int64_list(const int64_t *v, int n, int reversed) {
    json_object *a = json_object_new_array();
    if (!a) return NULL;
    for (int i = 0; i < n; i++) {
        json_object *x = json_object_new_int64(v[reversed ? n - 1 - i : i]);
        if (!x || json_object_array_add(a, x) != 0) {
            json_object_put(x);
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

json_object *lb__json_get(json_object *obj, const char *key) {
    json_object *v = NULL;
    if (!obj || !json_object_is_type(obj, json_type_object)) return NULL;
    if (!json_object_object_get_ex(obj, key, &v)) return NULL;
    return v;
}

int lb__json_require(json_object *obj, const char *key, const char *where,
                     json_object **out, lb_error *err) {
    if (!obj || !json_object_is_type(obj, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected an object, found %s", where,
                       obj ? lb__json_type_name(obj) : "nothing");
    if (!json_object_object_get_ex(obj, key, out))
        return lb__err(err, LB_EFORMAT, "%s: missing key \"%s\"", where, key);
    return 0;
}
