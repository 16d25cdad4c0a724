/*
 * fuzz_v3.h — what the Zarr v3 targets (fuzz_zarr3.c, fuzz_shard.c) check
 * about an array's first stored chunk, beyond not crashing:
 *
 *  - it is read as a region (a sharded array inner chunk by inner chunk:
 *    the index and each inner chunk by byte range) and decoded whole
 *    through the chain; when the chunk lies inside the array, both succeed
 *    or both fail, with the same data;
 *  - what decodes encodes again, and that decodes to the same bytes.
 *
 * A violation aborts, so libFuzzer reports it.
 */
#ifndef LB_FUZZ_V3_H
#define LB_FUZZ_V3_H

#include "dataset/dataset.h"
#include "fuzz.h"
#include "store/memory.h"

/* Re-encoding costs more than decoding (zstd 22, xz 9): only small chunks. */
#define FUZZ_V3_MAX_ROUNDTRIP ((size_t)64 << 10)

static inline void fuzz_v3_check(const uint8_t *meta, size_t n, const uint8_t *chunk,
                                 size_t nchunk) {
    lb__store *s = NULL;
    lb__dataset *d = NULL;
    lb_error err = {0};
    uint8_t *region = NULL, *whole = NULL, *again = NULL;
    lb__codec_scratch sc;
    lb__buf enc = {0};
    memset(&sc, 0, sizeof sc);
    if (lb__store_memory(&s, &err)) return;
    if (lb__store_put(s, "a/zarr.json", meta, n, &err) ||
        lb__dataset_open_at(s, "a", 0, &d, &err))
        goto done;
    int64_t cidx[LB_MAX_DIMS] = {0}, start[LB_MAX_DIMS] = {0}, count[LB_MAX_DIMS];
    int inside = !lb__dataset_chunk_extent(d, cidx, count);
    for (int k = 0; k < d->ndim; k++)
        if (count[k] <= 0) goto done; /* an empty array has no chunk */
    if (!chunk || d->schunk_bytes > FUZZ_MAX_OUT) goto done;
    char key[LB_MAX_DIMS * 24 + 8];
    if ((size_t)lb__dataset_chunk_path(d, cidx, key, sizeof key) >= sizeof key ||
        lb__store_put(s, key, chunk, nchunk, &err))
        goto done;
    region = malloc(d->schunk_bytes);
    whole = malloc(d->schunk_bytes);
    again = malloc(d->schunk_bytes);
    if (!region || !whole || !again) goto done;
    int rc_region = lb__dataset_read(d, start, count, region, &err);
    int rc_whole = lb__chain_decode(d->m.chain, &d->srepr, chunk, nchunk, whole, &sc, &err);
    if (!inside || rc_whole == LB_ENOMEM || rc_region == LB_ENOMEM) goto done;
    /* Inside the array the region is the whole stored chunk. */
    if ((rc_region == 0) != (rc_whole == 0)) abort();
    if (rc_whole) goto done;
    if (memcmp(region, whole, d->schunk_bytes) != 0) abort();
    if (d->schunk_bytes > FUZZ_V3_MAX_ROUNDTRIP) goto done;
    if (lb__chain_encode(d->m.chain, &d->srepr, NULL, whole, &enc, &sc, &err)) goto done;
    if (lb__chain_decode(d->m.chain, &d->srepr, enc.data, enc.size, again, &sc, &err) != 0)
        abort(); /* what labelbin writes, it must read */
    if (memcmp(whole, again, d->schunk_bytes) != 0) abort();
done:
    free(region);
    free(whole);
    free(again);
    lb__buf_free(&enc);
    lb__codec_scratch_free(&sc);
    lb__dataset_free(d);
    lb__store_free(s);
}

#endif /* LB_FUZZ_V3_H */
