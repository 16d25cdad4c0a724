/*
 * tap.h — the in-house test header: CHECK macros that print a line per
 * failure (file:line, the expression, the values) and a summary; main()
 * returns tap_done(). Header-only, no dependencies.
 */
#ifndef LB_TAP_H
#define LB_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tap_checks, tap_failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        tap_checks++;                                                        \
        if (!(cond)) {                                                       \
            tap_failures++;                                                  \
            fprintf(stderr, "not ok %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                      \
    do {                                                                     \
        long long tap_a = (long long)(a), tap_b = (long long)(b);            \
        tap_checks++;                                                        \
        if (tap_a != tap_b) {                                                \
            tap_failures++;                                                  \
            fprintf(stderr, "not ok %s:%d: %s == %s (%lld != %lld)\n",       \
                    __FILE__, __LINE__, #a, #b, tap_a, tap_b);               \
        }                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *tap_a = (a), *tap_b = (b);                               \
        tap_checks++;                                                        \
        if (!tap_a || !tap_b || strcmp(tap_a, tap_b) != 0) {                 \
            tap_failures++;                                                  \
            fprintf(stderr, "not ok %s:%d: %s == %s (\"%s\" != \"%s\")\n",   \
                    __FILE__, __LINE__, #a, #b, tap_a ? tap_a : "(null)",    \
                    tap_b ? tap_b : "(null)");                               \
        }                                                                    \
    } while (0)

/* The error message contains `needle`. */
#define CHECK_MSG(err, needle)                                               \
    do {                                                                     \
        tap_checks++;                                                        \
        if (!strstr((err).message, (needle))) {                              \
            tap_failures++;                                                  \
            fprintf(stderr, "not ok %s:%d: message \"%s\" lacks \"%s\"\n",   \
                    __FILE__, __LINE__, (err).message, (needle));            \
        }                                                                    \
    } while (0)

static inline int tap_done(void) {
    printf("%d checks, %d failed\n", tap_checks, tap_failures);
    return tap_failures ? 1 : 0;
}

#endif /* LB_TAP_H */
