/*
 * test_store.c — the file-system store: atomic writes (no temporaries left
 * on success or failure, target untouched on failure), bounded reads, path
 * normalisation and the ".." rule, directory helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include "core/path.h"
#include "store/fs.h"
#include "tap.h"

static char root[256];

static char *P(const char *rel) {
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", root, rel);
    return buf[i];
}

static void put_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Number of entries in dir whose name contains ".lbtmp." */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".lbtmp.")) n++;
    closedir(d);
    return n;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_read_write(void) {
    lb_error e = {0};
    lb__buf b = {0};
    CHECK_INT(lb__fs_mkdirs(P("a/b/c"), &e), 0);
    CHECK(lb__fs_is_dir(P("a/b/c")));
    CHECK_INT(lb__fs_mkdirs(P("a/b/c"), &e), 0); /* idempotent */

    const char *text = "hello, store";
    CHECK_INT(lb__fs_write_atomic(P("a/b/c/f.txt"), text, strlen(text), &e), 0);
    CHECK(lb__fs_is_file(P("a/b/c/f.txt")));
    CHECK_INT(count_temps(P("a/b/c")), 0);
    CHECK_INT(lb__fs_read(P("a/b/c/f.txt"), 100, &b, &e), 0);
    CHECK_INT(b.size, strlen(text));
    CHECK(b.size == strlen(text) && memcmp(b.data, text, b.size) == 0);
    CHECK_INT(b.data[b.size], 0); /* NUL-terminated */

    /* Replace: new content wins, no temporaries. */
    CHECK_INT(lb__fs_write_atomic(P("a/b/c/f.txt"), "xy", 2, &e), 0);
    CHECK_INT(lb__fs_read(P("a/b/c/f.txt"), 100, &b, &e), 0);
    CHECK(b.size == 2 && memcmp(b.data, "xy", 2) == 0);
    CHECK_INT(count_entries(P("a/b/c")), 1);

    /* Empty file. */
    CHECK_INT(lb__fs_write_atomic(P("a/empty"), "", 0, &e), 0);
    CHECK_INT(lb__fs_read(P("a/empty"), 100, &b, &e), 0);
    CHECK_INT(b.size, 0);

    /* Larger content, exactly at the limit, and one byte over. */
    size_t n = 300000;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (uint8_t)(i * 31 + 7);
    CHECK_INT(lb__fs_write_atomic(P("a/big"), big, n, &e), 0);
    CHECK_INT(lb__fs_read(P("a/big"), n, &b, &e), 0);
    CHECK(b.size == n && memcmp(b.data, big, n) == 0);
    memset(&e, 0, sizeof e);
    CHECK_INT(lb__fs_read(P("a/big"), n - 1, &b, &e), LB_ELIMIT);
    CHECK_INT(e.code, LB_ELIMIT);
    CHECK_MSG(e, "a/big");
    CHECK_MSG(e, "limit");
    free(big);

    /* Missing file, directory where a file is expected. */
    CHECK_INT(lb__fs_read(P("a/nothing"), 100, &b, &e), LB_ENOTFOUND);
    CHECK_MSG(e, "a/nothing");
    CHECK_INT(lb__fs_read(P("a/b"), 100, &b, &e), LB_EFORMAT);
    CHECK_MSG(e, "is a directory");
    CHECK_MSG(e, "a/b");

    /* Writing over a directory fails and leaves no temporary. */
    CHECK(lb__fs_write_atomic(P("a/b"), "x", 1, &e) < 0);
    CHECK(lb__fs_is_dir(P("a/b")));
    CHECK_INT(count_temps(P("a")), 0);

    /* Missing parent folder: an error, nothing created. */
    CHECK(lb__fs_write_atomic(P("nope/x"), "x", 1, &e) < 0);
    CHECK(!lb__fs_exists(P("nope")));

    /* exists / is_file / unlink */
    CHECK(lb__fs_exists(P("a/empty")));
    CHECK(!lb__fs_is_dir(P("a/empty")));
    CHECK_INT(lb__fs_unlink(P("a/empty"), &e), 0);
    CHECK(!lb__fs_exists(P("a/empty")));
    CHECK_INT(lb__fs_unlink(P("a/empty"), &e), 0); /* missing is fine */
    CHECK(lb__fs_is_empty_dir(P("a/b/c")) == 0);
    CHECK_INT(lb__fs_mkdirs(P("a/e"), &e), 0);
    CHECK(lb__fs_is_empty_dir(P("a/e")));

    /* mkdirs through a file fails. */
    put_file(P("a/file"), "x");
    CHECK(lb__fs_mkdirs(P("a/file/sub"), &e) < 0);
    lb__buf_free(&b);
}

/* In a child: a file size limit of 1000 bytes with SIGXFSZ ignored, so the
 * write fails with EFBIG. Exit code 0 when every expectation holds. */
static int child_fsize(void) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {1000, 1000};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 10;
    uint8_t data[5000];
    memset(data, 'z', sizeof data);
    lb_error e = {0};
    int rc = lb__fs_write_atomic(P("lim/target"), data, sizeof data, &e);
    if (rc != LB_EIO) return 11;
    if (e.code != LB_EIO) return 12;
    if (!strstr(e.message, "lim/target")) return 13;
    if (count_temps(P("lim")) != 0) return 14;
    /* Small writes still work. */
    if (lb__fs_write_atomic(P("lim/small"), data, 10, &e) != 0) return 15;
    return 0;
}

static void test_write_failure(void) {
    lb_error e = {0};
    CHECK_INT(lb__fs_mkdirs(P("lim"), &e), 0);
    CHECK_INT(lb__fs_write_atomic(P("lim/target"), "original", 8, &e), 0);
    pid_t pid = fork();
    if (pid == 0) _exit(child_fsize());
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), 0);
    /* The target is untouched and no temporary remains. */
    lb__buf b = {0};
    CHECK_INT(lb__fs_read(P("lim/target"), 100, &b, &e), 0);
    CHECK(b.size == 8 && memcmp(b.data, "original", 8) == 0);
    CHECK_INT(count_temps(P("lim")), 0);
    CHECK(lb__fs_is_file(P("lim/small")));
    lb__buf_free(&b);
}

static char shared_path[512]; /* P() is not thread-safe: computed once */

static void *writer_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    char buf[64];
    lb_error e = {0};
    int fails = 0;
    for (int i = 0; i < 50; i++) {
        int n = snprintf(buf, sizeof buf, "thread %d iteration %d", id, i);
        if (lb__fs_write_atomic(shared_path, buf, (size_t)n, &e) != 0) fails++;
    }
    return (void *)(intptr_t)fails;
}

static void test_concurrent(void) {
    lb_error e = {0};
    CHECK_INT(lb__fs_mkdirs(P("conc"), &e), 0);
    snprintf(shared_path, sizeof shared_path, "%s", P("conc/shared"));
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, writer_thread, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK_INT((intptr_t)r, 0);
    }
    CHECK_INT(count_entries(P("conc")), 1);
    lb__buf b = {0};
    CHECK_INT(lb__fs_read(P("conc/shared"), 100, &b, &e), 0);
    CHECK(b.size > 0 && strncmp((char *)b.data, "thread ", 7) == 0);
    lb__buf_free(&b);
}

static void test_temps_and_tree(void) {
    lb_error e = {0};
    CHECK_INT(lb__fs_mkdirs(P("t/x/y"), &e), 0);
    put_file(P("t/.0.0.lbtmp.123.4"), "stale");
    put_file(P("t/x/y/.1.lbtmp.9.9"), "stale");
    put_file(P("t/x/keep"), "data");
    put_file(P("t/x/.zarray"), "{}");
    CHECK_INT(lb__fs_remove_temps(P("t"), &e), 0);
    CHECK(!lb__fs_exists(P("t/.0.0.lbtmp.123.4")));
    CHECK(!lb__fs_exists(P("t/x/y/.1.lbtmp.9.9")));
    CHECK(lb__fs_exists(P("t/x/keep")));
    CHECK(lb__fs_exists(P("t/x/.zarray")));
    CHECK_INT(lb__fs_remove_temps(P("t/missing"), &e), 0);

    /* Stale temporaries of one file: only those of dead writers go. */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char n1[64], n2[64], n3[64], n4[64];
    snprintf(n1, sizeof n1, "g/..zgroup.lbtmp.%ld.0", (long)dead);      /* dead: removed */
    snprintf(n2, sizeof n2, "g/..zgroup.lbtmp.%ld.1", (long)getpid());  /* alive: kept */
    snprintf(n3, sizeof n3, "g/..zattrs.lbtmp.%ld.0", (long)dead);      /* other file */
    snprintf(n4, sizeof n4, "g/..zgroup.lbtmp.x.0");                     /* not a pid */
    CHECK_INT(lb__fs_mkdirs(P("g"), &e), 0);
    put_file(P(n1), "stale");
    put_file(P(n2), "in flight");
    put_file(P(n3), "stale");
    put_file(P(n4), "odd");
    lb__fs_remove_stale_temps_of(P("g/.zgroup"));
    CHECK(!lb__fs_exists(P(n1)));
    CHECK(lb__fs_exists(P(n2)));
    CHECK(lb__fs_exists(P(n3)));
    CHECK(lb__fs_exists(P(n4)));
    lb__fs_remove_stale_temps_of(P("missing/.zgroup")); /* no directory: nothing */

    /* remove_tree: refuses dangerous paths, removes trees, does not follow
     * symlinks out of the tree. */
    const char *bad[] = {"", "/", ".", "./", "..", "a/..", "a/../", "//", "x/."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&e, 0, sizeof e);
        CHECK_INT(lb__fs_remove_tree(bad[i], &e), LB_EINVAL);
        CHECK_MSG(e, "refusing");
    }
    CHECK_INT(lb__fs_mkdirs(P("outside"), &e), 0);
    put_file(P("outside/precious"), "keep me");
    CHECK_INT(symlink(P("outside"), P("t/x/link")), 0);
    CHECK_INT(lb__fs_remove_tree(P("t"), &e), 0);
    CHECK(!lb__fs_exists(P("t")));
    CHECK(lb__fs_is_file(P("outside/precious")));
    CHECK_INT(lb__fs_remove_tree(P("t"), &e), 0); /* missing is fine */
}

static void check_norm(const char *in, const char *want) {
    char *out = NULL;
    lb_error e = {0};
    int rc = lb__path_normalize(in, &out, &e);
    CHECK_INT(rc, 0);
    CHECK_STR(out, want);
    free(out);
}

static void check_norm_fails(const char *in) {
    char *out = NULL;
    lb_error e = {0};
    CHECK_INT(lb__path_normalize(in, &out, &e), LB_EINVAL);
    CHECK(out == NULL);
    CHECK_MSG(e, "'..' is not allowed in a dataset path");
    CHECK_MSG(e, in);
}

static void test_paths(void) {
    lb_error e = {0};
    check_norm("crop.zarr/labels/all", "crop.zarr/labels/all");
    check_norm("crop.zarr//labels///all/", "crop.zarr/labels/all");
    check_norm("./crop.zarr/./labels/.", "crop.zarr/labels");
    check_norm("/data//crop.n5/volumes/", "/data/crop.n5/volumes");
    check_norm("../up/crop.zarr/labels", "../up/crop.zarr/labels");
    check_norm("a.zarr/../b.zarr/x", "a.zarr/../b.zarr/x"); /* before the container */
    check_norm("plain/../dir", "plain/../dir");             /* no container */
    check_norm("/", "/");
    check_norm(".", ".");
    check_norm("./", ".");
    check_norm_fails("crop.zarr/labels/../../etc");
    check_norm_fails("crop.zarr/..");
    check_norm_fails("/x/crop.n5/a/../b");
    char *out = NULL;
    CHECK_INT(lb__path_normalize("", &out, &e), LB_EINVAL);

    CHECK_INT(lb__path_container_len("crop.zarr/labels"), 9);
    CHECK_INT(lb__path_container_len("/d/crop.n5/v/g"), 10);
    CHECK_INT(lb__path_container_len("a.zarr/b.zarr/c"), 13);
    CHECK_INT(lb__path_container_len("data/labels"), 0);
    CHECK_INT(lb__path_container_len(".zarr/x"), 0); /* a bare ".zarr" is not a container name */
    CHECK_INT(lb__path_container_len("x.zarr"), 6);

    char *p = lb__path_join("a/b", "c", &e);
    CHECK_STR(p, "a/b/c");
    free(p);
    p = lb__path_join("a/b/", "c", &e);
    CHECK_STR(p, "a/b/c");
    free(p);
    p = lb__path_join("", "c", &e);
    CHECK_STR(p, "c");
    free(p);
    p = lb__path_parent("a/b/c", &e);
    CHECK_STR(p, "a/b");
    free(p);
    p = lb__path_parent("a/b/c/", &e);
    CHECK_STR(p, "a/b");
    free(p);
    p = lb__path_parent("c", &e);
    CHECK_STR(p, ".");
    free(p);
    p = lb__path_parent("/c", &e);
    CHECK_STR(p, "/");
    free(p);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/lb_test_store_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_read_write();
    test_write_failure();
    test_concurrent();
    test_temps_and_tree();
    test_paths();
    lb_error e = {0};
    CHECK_INT(lb__fs_remove_tree(root, &e), 0);
    CHECK(!lb__fs_exists(root));
    return tap_done();
}
