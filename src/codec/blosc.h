/*
 * blosc.h — blosc's compressor names, for the formats that write them.
 */
#ifndef LB_CODEC_BLOSC_H
#define LB_CODEC_BLOSC_H

/* c-blosc's name for lb__codec.blosc_cname `i` ("lz4", "zstd", …), or NULL. */
const char *lb__blosc_cname(int i);
/* The index of a c-blosc compressor name, or -1. */
int lb__blosc_cname_index(const char *name);

#endif /* LB_CODEC_BLOSC_H */
