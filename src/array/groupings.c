/*
 * groupings.c — the ordered (name, [ids]) list that defines the channels of a
 * BinarizeArray / MissingAnnotationsMask, with its textual forms: the CLI's
 * "NAME=ID,ID,…", DaCapo's JSON `[["mito", [3,4,5]], …]` and the JSON object
 * `{"mito": [3,4,5], …}`. Each group names an output channel, so names are
 * non-empty and unique.
 */
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/groupings.h"
#include "core/json.h"
#include "core/util.h"

typedef struct group {
    char *name;
    lb_id *ids;
    size_t n_ids;
} group;

struct lb_groupings {
    group *groups;
    size_t n, cap;
    lb__buf json; /* lb_groupings_json's text */
};

int lb_groupings_new(lb_groupings **out, lb_error *err) {
    *out = lb__calloc(1, sizeof **out, "groupings", err);
    return *out ? 0 : LB_ENOMEM;
}

void lb_groupings_free(lb_groupings *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) {
        free(g->groups[i].name);
        free(g->groups[i].ids);
    }
    free(g->groups);
    lb__buf_free(&g->json);
    free(g);
}

/* The name of a new group must be non-empty and not used yet: it names an
 * output channel. `where` ("groupings[2][0]") or, when NULL, the group's
 * index names the group in the message. */
static int check_name(const lb_groupings *g, const char *name, int code, const char *where,
                      lb_error *err) {
    char w[600];
    if (where)
        snprintf(w, sizeof w, "%s: ", where);
    else
        w[0] = '\0';
    if (!*name)
        return lb__err(err, code, "%sgroup %zu has an empty name: every group names an output "
                       "channel, give it a name", w, g->n);
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->groups[i].name, name))
            return lb__err(err, code, "%sgroup \"%s\" is given twice (groups %zu and %zu): "
                           "every group names an output channel, so names must be unique; "
                           "merge the ids into one group or rename one", w, name, i, g->n);
    return 0;
}

int lb_groupings_add(lb_groupings *g, const char *name, const lb_id *ids, size_t n_ids,
                     lb_error *err) {
    if (!g || !name) return lb__err(err, LB_EINVAL, "group name missing");
    /* The name becomes a channel name in JSON metadata, which is text. */
    if (!lb__utf8_valid(name, strlen(name)))
        return lb__err(err, LB_EINVAL, "group name \"%s\": not valid UTF-8 (names are "
                       "stored as text in the metadata; use UTF-8)", name);
    int rc = check_name(g, name, LB_EINVAL, NULL, err);
    if (rc) return rc;
    if (n_ids && !ids) return lb__err(err, LB_EINVAL, "group \"%s\": ids missing", name);
    if (n_ids > ((size_t)1 << 28))
        return lb__err(err, LB_ELIMIT, "group \"%s\": too many ids (%zu)", name, n_ids);
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        group *p = realloc(g->groups, cap * sizeof *p);
        if (!p) return lb__err(err, LB_ENOMEM, "out of memory adding group \"%s\"", name);
        g->groups = p;
        g->cap = cap;
    }
    group grp = {0};
    grp.name = lb__strdup(name, err);
    if (!grp.name) return LB_ENOMEM;
    if (n_ids) {
        grp.ids = lb__malloc(n_ids * sizeof *grp.ids, "group ids", err);
        if (!grp.ids) {
            free(grp.name);
            return LB_ENOMEM;
        }
        memcpy(grp.ids, ids, n_ids * sizeof *ids);
    }
    grp.n_ids = n_ids;
    g->groups[g->n++] = grp;
    return 0;
}

int lb_groupings_add_arg(lb_groupings *g, const char *arg, lb_error *err) {
    const char *eq = arg ? strchr(arg, '=') : NULL;
    if (!eq || eq == arg)
        return lb__err(err, LB_EINVAL,
                       "group \"%s\": expected NAME=ID,ID,... (e.g. mito=3,4,5; \"all=\" for "
                       "every label but the background)", arg ? arg : "");
    size_t name_len = (size_t)(eq - arg);
    char *name = lb__malloc(name_len + 1, "group name", err);
    if (!name) return LB_ENOMEM;
    memcpy(name, arg, name_len);
    name[name_len] = '\0';

    /* Count the ids first: commas + 1 unless the list is empty. */
    const char *list = eq + 1;
    size_t cap = 0;
    int rc = 0;
    lb_id *ids = NULL;
    size_t n = 0;
    if (*list) {
        cap = 1;
        for (const char *p = list; *p; p++) cap += *p == ',';
        ids = lb__malloc(cap * sizeof *ids, "group ids", err);
        if (!ids) {
            rc = LB_ENOMEM;
            goto done;
        }
        const char *p = list;
        while (n < cap) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char tok[64];
            if (len == 0 || len >= sizeof tok) {
                rc = lb__err(err, LB_EINVAL, "group \"%s\": bad id list \"%s\" (expected "
                             "decimal ids separated by commas)", name, list);
                goto done;
            }
            memcpy(tok, p, len);
            tok[len] = '\0';
            rc = lb_id_parse(tok, &ids[n], err);
            if (rc) {
                lb__err_prefix(err, "group \"%s\"", name);
                goto done;
            }
            n++;
            p = comma ? comma + 1 : p + len;
        }
    }
    rc = lb_groupings_add(g, name, ids, n, err);
done:
    free(ids);
    free(name);
    return rc;
}

/* One group from JSON: `name` and its ids `ids` (an array); `w` is the
 * group's JSON path, `wn` its name's and `wi` its ids'. */
static int add_json_group(lb_groupings *g, const char *name, json_object *ids, const char *wn,
                          const char *wi, lb_error *err) {
    int rc = check_name(g, name, LB_EFORMAT, wn, err);
    if (rc) return rc;
    if (!ids || !json_object_is_type(ids, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array of label ids, found %s", wi,
                       ids ? lb__json_type_name(ids) : "null");
    size_t m = json_object_array_length(ids);
    lb_id *v = m ? lb__malloc(m * sizeof *v, "group ids", err) : NULL;
    if (m && !v) return LB_ENOMEM;
    for (size_t j = 0; j < m; j++) {
        char wj[700];
        snprintf(wj, sizeof wj, "%s[%zu]", wi, j);
        rc = lb__json_id(json_object_array_get_idx(ids, j), wj, &v[j], err);
        if (rc) {
            free(v);
            return rc;
        }
    }
    rc = lb_groupings_add(g, name, v, m, err);
    free(v);
    return rc;
}

/* Add groups from parsed JSON: an array of [name, [ids]] pairs, or an object
 * {name: [ids], …} (its keys in file order); `where` prefixes JSON paths. */
static int add_json_value(lb_groupings *g, json_object *arr, const char *where, lb_error *err) {
    if (arr && json_object_is_type(arr, json_type_object)) {
        json_object_object_foreach(arr, key, val) {
            char wn[560], wi[600];
            snprintf(wn, sizeof wn, "%s[\"%s\"]", where, key);
            snprintf(wi, sizeof wi, "%s", wn);
            int rc = add_json_group(g, key, val, wn, wi, err);
            if (rc) return rc;
        }
        return 0;
    }
    if (!arr || !json_object_is_type(arr, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array of [name, [ids]] pairs or an "
                       "object {name: [ids]}, found %s", where,
                       arr ? lb__json_type_name(arr) : "null");
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *pair = json_object_array_get_idx(arr, i);
        char w[512];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        if (!pair || !json_object_is_type(pair, json_type_array) ||
            json_object_array_length(pair) != 2)
            return lb__err(err, LB_EFORMAT, "%s: expected a [name, [ids]] pair, found %s", w,
                           pair ? lb__json_type_name(pair) : "null");
        const char *name;
        char wn[560], wi[600];
        snprintf(wn, sizeof wn, "%s[0]", w);
        snprintf(wi, sizeof wi, "%s[1]", w);
        int rc = lb__json_str(json_object_array_get_idx(pair, 0), wn, &name, err);
        if (!rc) rc = add_json_group(g, name, json_object_array_get_idx(pair, 1), wn, wi, err);
        if (rc) return rc;
    }
    return 0;
}

/* Drop the groups added after the first `n` (a failed JSON add adds
 * nothing). */
static void truncate_to(lb_groupings *g, size_t n) {
    while (g->n > n) {
        g->n--;
        free(g->groups[g->n].name);
        free(g->groups[g->n].ids);
    }
}

int lb__groupings_add_json_object(lb_groupings *g, json_object *arr, const char *where,
                                  lb_error *err) {
    size_t n0 = g->n;
    int rc = add_json_value(g, arr, where, err);
    if (rc) truncate_to(g, n0);
    return rc;
}

int lb_groupings_add_json(lb_groupings *g, const char *json, lb_error *err) {
    if (!json) return lb__err(err, LB_EINVAL, "no groupings JSON given");
    json_object *o;
    int rc = lb__json_parse(json, strlen(json), "groupings", &o, err);
    if (rc) return rc;
    rc = lb__groupings_add_json_object(g, o, "groupings", err);
    json_object_put(o);
    return rc;
}

int lb_groupings_copy(const lb_groupings *g, lb_groupings **out, lb_error *err) {
    lb_groupings *c;
    int rc = lb_groupings_new(&c, err);
    if (rc) return rc;
    for (size_t i = 0; i < g->n; i++) {
        rc = lb_groupings_add(c, g->groups[i].name, g->groups[i].ids, g->groups[i].n_ids, err);
        if (rc) {
            lb_groupings_free(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

size_t lb_groupings_count(const lb_groupings *g) { return g ? g->n : 0; }

const char *lb_groupings_name(const lb_groupings *g, size_t i) {
    return g && i < g->n ? g->groups[i].name : NULL;
}

size_t lb_groupings_ids(const lb_groupings *g, size_t i, const lb_id **ids) {
    if (!g || i >= g->n) {
        if (ids) *ids = NULL;
        return 0;
    }
    if (ids) *ids = g->groups[i].ids;
    return g->groups[i].n_ids;
}

const lb_groupings *lb_array_groupings(const lb_array *a) {
    const lb_groupings *g = NULL;
    return a && lb__array_groupings(a, &g, NULL, NULL) == 0 ? g : NULL;
}

const char *lb_groupings_json(lb_groupings *g) {
    /* Built by hand: ids must stay exact beyond 2^63 and names need JSON
     * string escaping, which json-c's serialiser gives us. */
    lb__buf *b = &g->json;
    b->size = 0;
    int fail = lb__buf_append(b, "[", 1, NULL);
    for (size_t i = 0; i < g->n && !fail; i++) {
        json_object *name = json_object_new_string(g->groups[i].name);
        const char *qn = name ? json_object_to_json_string_ext(name, JSON_C_TO_STRING_NOSLASHESCAPE) : "\"\"";
        fail |= lb__buf_printf(b, NULL, "%s[%s, [", i ? ", " : "", qn);
        json_object_put(name);
        for (size_t j = 0; j < g->groups[i].n_ids && !fail; j++) {
            char num[32];
            lb_id_format(g->groups[i].ids[j], num, sizeof num);
            fail |= lb__buf_printf(b, NULL, "%s%s", j ? ", " : "", num);
        }
        fail |= lb__buf_append(b, "]]", 2, NULL);
    }
    fail |= lb__buf_append(b, "]", 1, NULL);
    return fail ? NULL : (const char *)b->data;
}
