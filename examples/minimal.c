/*
 * minimal.c — labelbin from C: open a label crop, make the "mito" and "er"
 * target channels and their training mask, read a 64³-voxel region of both
 * and count.
 *
 *   cc minimal.c $(pkg-config --cflags --libs labelbin) -o minimal
 *   ./minimal demo-out/crop.zarr/volumes/labels/all
 */
#include <labelbin.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "demo-out/crop.zarr/volumes/labels/all";
    lb_error err = {0};
    lb_groupings *groups = NULL;
    lb_array *labels = NULL, *gt = NULL, *mask = NULL;
    uint8_t *target = NULL, *weight = NULL;
    int rc = 1;

    /* Channel i of the output is group i. */
    if (lb_groupings_new(&groups, &err) ||
        lb_groupings_add_arg(groups, "mito=3,4,5", &err) ||
        lb_groupings_add_arg(groups, "er=16,17,18,19,20,21,22,23", &err))
        goto done;
    /* A wrapper owns the source it is given (also when it fails). */
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &labels, &err) ||
        lb_binarize_new(labels, groups, (lb_id){0, 0}, &gt, &err) ||
        lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &labels, &err) ||
        lb_mask_new(labels, groups, &mask, &err))
        goto done;

    /* The first 64³ voxels of the crop, in world units (nm). */
    lb_roi roi;
    lb_array_roi(gt, &roi);
    for (int d = 0; d < roi.ndim; d++) roi.shape[d] = 64 * lb_array_voxel_size(gt)[d];
    size_t size = lb_array_read_size(gt, &roi);
    target = malloc(size);
    weight = malloc(size);
    if (!target || !weight) {
        fprintf(stderr, "minimal: out of memory\n");
        goto done;
    }
    if (lb_array_read(gt, &roi, target, size, &err) ||
        lb_array_read(mask, &roi, weight, size, &err))
        goto done;

    int64_t channels = lb_array_num_channels(gt);
    size_t n = size / (size_t)channels;
    for (int64_t c = 0; c < channels; c++) {
        size_t ones = 0, kept = 0;
        for (size_t i = 0; i < n; i++) {
            ones += target[(size_t)c * n + i];
            kept += weight[(size_t)c * n + i];
        }
        printf("channel %lld (%s): %zu of %zu voxels are 1, the mask keeps %zu\n",
               (long long)c, lb_array_channel_name(gt, c), ones, n, kept);
    }
    rc = 0;
done:
    if (rc && err.code) fprintf(stderr, "minimal: %s\n", err.message);
    free(target);
    free(weight);
    lb_array_free(gt);
    lb_array_free(mask);
    lb_groupings_free(groups);
    return rc;
}
