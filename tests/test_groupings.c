/* test_groupings.c — CLI and DaCapo JSON forms of groupings; JSON helpers. */
#include <stdlib.h>

#include "core/json.h"
#include "labelbin.h"
#include "tap.h"

static void test_arg_form(void) {
    lb_groupings *g;
    lb_error e = {0};
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "mito=3,4,5", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "all=", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "neg=-8,18446744073709551615", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "a=b=1", &e), LB_EINVAL); /* name "a", id "b=1" */
    CHECK_INT(lb_groupings_add_arg(g, "=1", &e), LB_EINVAL);
    CHECK_INT(lb_groupings_add_arg(g, "noeq", &e), LB_EINVAL);
    CHECK_MSG(e, "NAME=ID");
    CHECK_INT(lb_groupings_add_arg(g, "x=1,,2", &e), LB_EINVAL);
    CHECK_INT(lb_groupings_add_arg(g, "x=1,", &e), LB_EINVAL);
    CHECK_INT(lb_groupings_add_arg(g, "x=1,zz", &e), LB_EINVAL);
    CHECK_MSG(e, "group \"x\"");
    CHECK_INT(lb_groupings_count(g), 3);
    CHECK_STR(lb_groupings_name(g, 0), "mito");
    const lb_id *ids;
    CHECK_INT(lb_groupings_ids(g, 0, &ids), 3);
    CHECK_INT(ids[2].bits, 5);
    CHECK_INT(lb_groupings_ids(g, 1, &ids), 0);
    CHECK_INT(lb_groupings_ids(g, 2, &ids), 2);
    CHECK(ids[0].negative && (int64_t)ids[0].bits == -8);
    CHECK(ids[1].bits == UINT64_MAX && !ids[1].negative);
    CHECK_STR(lb_groupings_json(g),
              "[[\"mito\", [3, 4, 5]], [\"all\", []], [\"neg\", [-8, 18446744073709551615]]]");
    CHECK(lb_groupings_name(g, 3) == NULL);
    lb_groupings *c;
    CHECK_INT(lb_groupings_copy(g, &c, &e), 0);
    CHECK_STR(lb_groupings_json(c), lb_groupings_json(g));
    lb_groupings_free(c);
    lb_groupings_free(g);
    lb_groupings_free(NULL);
}

static void test_json_form(void) {
    lb_groupings *g;
    lb_error e = {0};
    lb_groupings_new(&g, &e);
    CHECK_INT(lb_groupings_add_json(g, "[[\"mito\", [3,4,5]], [\"m \\\"q\\\"\", []],"
                                       " [\"big\", [18446744073709551615, -9223372036854775808]]]",
                                    &e), 0);
    CHECK_INT(lb_groupings_count(g), 3);
    CHECK_STR(lb_groupings_name(g, 1), "m \"q\"");
    const lb_id *ids;
    CHECK_INT(lb_groupings_ids(g, 2, &ids), 2);
    CHECK(ids[0].bits == UINT64_MAX && !ids[0].negative);
    CHECK(ids[1].negative && (int64_t)ids[1].bits == INT64_MIN);
    CHECK_STR(lb_groupings_json(g), "[[\"mito\", [3, 4, 5]], [\"m \\\"q\\\"\", []], "
                                    "[\"big\", [18446744073709551615, -9223372036854775808]]]");
    struct { const char *json, *msg; } bad[] = {
        {"3", "groupings: expected an array of [name, [ids]] pairs or an object"},
        {"{\"a\": 3}", "groupings[\"a\"]: expected an array of label ids"},
        {"{\"a\": [1, \"2\"]}", "groupings[\"a\"][1]: expected an integer"},
        {"[[\"a\"]]", "groupings[0]: expected a [name, [ids]] pair"},
        {"[[1, [2]]]", "groupings[0][0]: expected a string"},
        {"[[\"a\", 3]]", "groupings[0][1]: expected an array of label ids"},
        {"[[\"a\", [1, 2.5]]]", "groupings[0][1][1]: expected an integer"},
        {"[[\"a\", [\"3\"]]]", "groupings[0][1][0]: expected an integer"},
        {"[[\"a\", [18446744073709551616]]]", "line 1, column 9 is outside"},
        {"[[\"a\", [1]]", "groupings: "},
        {"[[\"a\", [1]]] x", "groupings: "},
        {"[[\"a\", [-9223372036854775809]]]", "outside the 64-bit range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lb_error e2 = {0};
        CHECK(lb_groupings_add_json(g, bad[i].json, &e2) < 0);
        CHECK_MSG(e2, bad[i].msg);
    }
    lb_groupings_free(g);
}

/* Every group names an output channel: names are non-empty and unique in
 * every form (DaCapo accepts both and writes indistinguishable channels). */
static void test_names_unique(void) {
    lb_groupings *g;
    lb_error e = {0};
    lb_id three = {3, 0};
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    CHECK_INT(lb_groupings_add(g, "a", &three, 1, &e), 0);
    CHECK_INT(lb_groupings_add(g, "a", NULL, 0, &e), LB_EINVAL);
    CHECK_MSG(e, "group \"a\" is given twice (groups 0 and 1)");
    CHECK_MSG(e, "names must be unique");
    CHECK_INT(lb_groupings_add(g, "", &three, 1, &e), LB_EINVAL);
    CHECK_MSG(e, "group 1 has an empty name");
    CHECK_INT(lb_groupings_add_arg(g, "a=4", &e), LB_EINVAL);
    CHECK_MSG(e, "group \"a\" is given twice");
    CHECK_INT(lb_groupings_add_arg(g, "=4", &e), LB_EINVAL);
    CHECK_INT(lb_groupings_add_json(g, "[[\"b\", [1]], [\"a\", [2]]]", &e), LB_EFORMAT);
    CHECK_MSG(e, "groupings[1][0]: group \"a\" is given twice (groups 0 and 2)");
    CHECK_INT(lb_groupings_count(g), 1);
    CHECK_INT(lb_groupings_add_json(g, "[[\"\", [1]]]", &e), LB_EFORMAT);
    CHECK_MSG(e, "groupings[0][0]: group 1 has an empty name");
    CHECK_INT(lb_groupings_add_json(g, "{\"\": [1]}", &e), LB_EFORMAT);
    CHECK_MSG(e, "empty name");
    /* case matters, as in the channels attribute */
    CHECK_INT(lb_groupings_add_arg(g, "A=4", &e), 0);
    CHECK_INT(lb_groupings_count(g), 2); /* a, A: a failed JSON add adds nothing */
    CHECK_STR(lb_groupings_name(g, 1), "A");
    lb_groupings_free(g);
}

/* The object form {"mito": [3,4,5], ...} that Python accepts: keys in
 * file order, the JSON paths name the key. */
static void test_json_object_form(void) {
    lb_groupings *g;
    lb_error e = {0};
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    CHECK_INT(lb_groupings_add_json(g, "{\"mito\": [3, 4, 5], \"all\": [], "
                                       "\"er\": [18446744073709551615, -2], \"b\": [1]}", &e), 0);
    CHECK_INT(lb_groupings_count(g), 4);
    CHECK_STR(lb_groupings_json(g), "[[\"mito\", [3, 4, 5]], [\"all\", []], "
                                    "[\"er\", [18446744073709551615, -2]], [\"b\", [1]]]");
    /* empty forms add nothing */
    CHECK_INT(lb_groupings_add_json(g, "{}", &e), 0);
    CHECK_INT(lb_groupings_add_json(g, "[]", &e), 0);
    CHECK_INT(lb_groupings_count(g), 4);
    /* a key given twice keeps its last value at its first place, like Python */
    lb_groupings *h;
    CHECK_INT(lb_groupings_new(&h, &e), 0);
    CHECK_INT(lb_groupings_add_json(h, "{\"a\": [1], \"b\": [2], \"a\": [3]}", &e), 0);
    CHECK_STR(lb_groupings_json(h), "[[\"a\", [3]], [\"b\", [2]]]");
    lb_groupings_free(h);
    lb_groupings_free(g);
}

static void test_json_helpers(void) {
    json_object *o;
    lb_error e = {0};
    const char *t = "{\"a\": 18446744073709551615, \"b\": -3, \"c\": 2.5, \"d\": true}";
    CHECK_INT(lb__json_parse(t, strlen(t), "x.json", &o, &e), 0);
    lb_id id;
    CHECK_INT(lb__json_id(lb__json_get(o, "a"), "x.a", &id, &e), 0);
    CHECK(id.bits == UINT64_MAX);
    int64_t v;
    CHECK_INT(lb__json_int64(lb__json_get(o, "a"), "x.a", &v, &e), LB_EFORMAT);
    CHECK_MSG(e, "too large");
    CHECK_INT(lb__json_int64(lb__json_get(o, "b"), "x.b", &v, &e), 0);
    CHECK_INT(v, -3);
    CHECK_INT(lb__json_int64(lb__json_get(o, "c"), "x.c", &v, &e), LB_EFORMAT);
    CHECK_MSG(e, "x.c: expected an integer");
    int b;
    CHECK_INT(lb__json_bool(lb__json_get(o, "b"), "x.b", &b, &e), LB_EFORMAT);
    CHECK_MSG(e, "x.b: expected a boolean");
    json_object *m;
    CHECK_INT(lb__json_require(o, "zz", "x", &m, &e), LB_EFORMAT);
    CHECK_MSG(e, "x: missing key \"zz\"");
    json_object_put(o);
    const char *broken = "{\n  \"a\": [1,\n  }";
    CHECK_INT(lb__json_parse(broken, strlen(broken), "y.json", &o, &e), LB_EFORMAT);
    CHECK_MSG(e, "y.json: invalid JSON at line 3");
    CHECK_INT(lb__json_parse("", 0, "z.json", &o, &e), LB_EFORMAT);
    CHECK_INT(lb__json_parse("{\"a\":1", 6, "z.json", &o, &e), LB_EFORMAT);
    CHECK_MSG(e, "truncated");
    CHECK_INT(lb__json_parse("7", 1, "n.json", &o, &e), 0); /* bare number, no NUL */
    int64_t seven = 0;
    CHECK_INT(lb__json_int64(o, "n", &seven, &e), 0);
    CHECK_INT(seven, 7);
    json_object_put(o);
    CHECK_INT(lb__json_parse("-12 ", 4, "n.json", &o, &e), 0);
    json_object_put(o);
    CHECK_INT(lb__json_parse("null", 4, "n.json", &o, &e), LB_EFORMAT);
    CHECK_MSG(e, "other than null");
    CHECK_INT(lb__json_parse("1 2", 3, "n.json", &o, &e), LB_EFORMAT);
    /* deep nesting is refused, not a stack overflow */
    char deep[4096];
    memset(deep, '[', sizeof deep);
    CHECK_INT(lb__json_parse(deep, sizeof deep, "deep.json", &o, &e), LB_EFORMAT);
}

int main(void) {
    test_arg_form();
    test_json_form();
    test_names_unique();
    test_json_object_form();
    test_json_helpers();
    return tap_done();
}
