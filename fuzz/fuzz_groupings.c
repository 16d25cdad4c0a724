/*
 * fuzz_groupings.c — groupings from DaCapo's JSON form and the CLI's
 * "NAME=ID,ID" form. The whole input goes to lb_groupings_add_json, then
 * every line to lb_groupings_add_arg; the result is formatted, copied and
 * its JSON parsed back (it must round-trip).
 */
#include "fuzz.h"
#include "labelbin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    if (!text) return 0;
    lb_groupings *g = NULL, *back = NULL, *copy = NULL;
    lb_error err = {0};
    if (lb_groupings_new(&g, &err)) goto done;
    lb_groupings_add_json(g, text, &err);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        lb_groupings_add_arg(g, line, &err);
    }
    const char *json = lb_groupings_json(g);
    if (!json) goto done;
    if (lb_groupings_new(&back, &err)) goto done;
    if (lb_groupings_add_json(back, json, &err)) abort(); /* our own output must parse */
    if (lb_groupings_count(back) != lb_groupings_count(g)) abort();
    for (size_t i = 0; i < lb_groupings_count(g); i++) {
        const lb_id *a, *b;
        size_t na = lb_groupings_ids(g, i, &a), nb = lb_groupings_ids(back, i, &b);
        if (na != nb || strcmp(lb_groupings_name(g, i), lb_groupings_name(back, i)) != 0) abort();
        for (size_t j = 0; j < na; j++)
            if (a[j].bits != b[j].bits || a[j].negative != b[j].negative) abort();
    }
    if (lb_groupings_copy(g, &copy, &err) == 0 && lb_groupings_count(copy) != lb_groupings_count(g))
        abort();
done:
    lb_groupings_free(copy);
    lb_groupings_free(back);
    lb_groupings_free(g);
    free(text);
    return 0;
}
