/*
 * sample.c — the synthetic CellMap-like label volume of `labelbin sample`:
 * a cell (plasma membrane, cytosol) in extracellular space, a nucleus
 * (envelope, pores, heterochromatin, nucleolus), mitochondria, ER sheets,
 * vesicles, peroxisomes and microtubules, and an unannotated margin. A
 * seeded model of shapes, evaluated voxel by voxel: the same shape and seed
 * give the same labels.
 */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const sample_class sample_classes[] = {
    {1, "ecs", "Extracellular space"},
    {2, "pm", "Plasma membrane"},
    {3, "mito_mem", "Mitochondrial membrane"},
    {4, "mito_lum", "Mitochondrial lumen"},
    {5, "mito_ribo", "Mitochondrial ribosome"},
    {6, "golgi_mem", "Golgi membrane"},
    {7, "golgi_lum", "Golgi lumen"},
    {8, "ves_mem", "Vesicle membrane"},
    {9, "ves_lum", "Vesicle lumen"},
    {16, "er_mem", "Endoplasmic reticulum membrane"},
    {17, "er_lum", "Endoplasmic reticulum lumen"},
    {20, "ne_mem", "Nuclear envelope membrane"},
    {21, "ne_lum", "Nuclear envelope lumen"},
    {22, "np_out", "Nuclear pore out"},
    {23, "np_in", "Nuclear pore in"},
    {24, "hchrom", "Heterochromatin"},
    {28, "nucpl", "Nucleoplasm"},
    {29, "nucleo", "Nucleolus"},
    {30, "mt_out", "Microtubule out"},
    {35, "cyto", "Cytosol"},
    {36, "mt_in", "Microtubule in"},
    {47, "perox_mem", "Peroxisome membrane"},
    {48, "perox_lum", "Peroxisome lumen"},
};
const size_t sample_n_classes = sizeof sample_classes / sizeof sample_classes[0];

typedef enum { OBJ_BLOB, OBJ_SHEET, OBJ_TUBE } obj_type;

/* An object painted over cytosol only (so objects stay in the cell and
 * out of the nucleus). Coordinates in voxels (z, y, x). */
typedef struct sample_obj {
    obj_type type;
    double c[3], r[3]; /* BLOB: ellipsoid; SHEET: c = base point, r[0] =
                          amplitude, r[1] = wavelength, r[2] = half-extent */
    double t;          /* membrane thickness                              */
    int mem, lum, dot; /* labels; dot: small inclusions in the lumen      */
    double dots[4][3];
    int n_dots;
    int64_t bb0[3], bb1[3]; /* bounding box [bb0, bb1) */
} sample_obj;

struct sample_model {
    int64_t shape[3];
    double cell_c[3], cell_r[3];
    double nuc_c[3], nuc_r[3];
    double pores[6][3]; /* unit directions of nuclear pores */
    int n_pores;
    int64_t margin_x; /* x >= margin_x is unannotated (0) */
    sample_obj obj[128];
    int n_obj;
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double urand(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0));
}

/* Normalised ellipsoid distance: < 1 inside. */
static double ell_q(const double *p, const double *c, const double *r)
{
    double q = 0;
    int i;
    for (i = 0; i < 3; i++) {
        double d = (p[i] - c[i]) / r[i];
        q += d * d;
    }
    return q;
}

static void bbox_of_ellipsoid(const double *c, const double *r, const int64_t *shape,
                              int64_t *b0, int64_t *b1)
{
    int i;
    for (i = 0; i < 3; i++) {
        double lo = floor(c[i] - r[i] - 1), hi = ceil(c[i] + r[i] + 2);
        b0[i] = lo < 0 ? 0 : (int64_t)lo;
        b1[i] = hi > (double)shape[i] ? shape[i] : (int64_t)hi;
    }
}

/* A random point in the cytosol region: inside the cell at fraction `f`
 * of its radii and well away from the nucleus. */
static int random_cyto_point(const sample_model *m, uint64_t *s, double f,
                             double *p)
{
    int tries, i;
    for (tries = 0; tries < 200; tries++) {
        double nr[3];
        for (i = 0; i < 3; i++)
            p[i] = urand(s, m->cell_c[i] - f * m->cell_r[i], m->cell_c[i] + f * m->cell_r[i]);
        for (i = 0; i < 3; i++)
            nr[i] = m->nuc_r[i] * 1.25;
        if (ell_q(p, m->cell_c, m->cell_r) < f * f && ell_q(p, m->nuc_c, nr) > 1)
            return 0;
    }
    return -1;
}

static void sample_model_init(sample_model *m, const int64_t *shape, uint64_t seed)
{
    uint64_t s = seed ^ 0x6c6162656c62696eULL; /* "labelbin" */
    double sc = (double)(shape[0] < shape[1] ? (shape[0] < shape[2] ? shape[0] : shape[2])
                                            : (shape[1] < shape[2] ? shape[1] : shape[2])) / 96.0;
    int i, k;

    memset(m, 0, sizeof *m);
    memcpy(m->shape, shape, sizeof m->shape);
    m->margin_x = shape[2] - (shape[2] / 16 > 2 ? shape[2] / 16 : 2);
    for (i = 0; i < 3; i++) {
        m->cell_c[i] = (double)shape[i] * urand(&s, 0.47, 0.53);
        m->cell_r[i] = (double)shape[i] * urand(&s, 0.50, 0.56);
    }
    m->cell_c[2] = (double)shape[2] * 0.46; /* leave room for the margin */
    m->nuc_c[0] = m->cell_c[0];
    m->nuc_c[1] = m->cell_c[1] + m->cell_r[1] * 0.30;
    m->nuc_c[2] = m->cell_c[2] + m->cell_r[2] * 0.30;
    for (i = 0; i < 3; i++)
        m->nuc_r[i] = m->cell_r[i] * urand(&s, 0.36, 0.42);
    m->n_pores = 6;
    for (k = 0; k < m->n_pores; k++) {
        double d[3], n = 0;
        for (i = 0; i < 3; i++) {
            d[i] = urand(&s, -1, 1);
            n += d[i] * d[i];
        }
        n = sqrt(n) + 1e-9;
        for (i = 0; i < 3; i++)
            m->pores[k][i] = d[i] / n;
    }

    /* Mitochondria: elongated ellipsoids with a membrane shell, lumen and a
     * few ribosome dots (id 5, the class the metadata leaves unannotated). */
    for (k = 0; k < 12 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        if (random_cyto_point(m, &s, 0.75, o->c) != 0)
            continue;
        o->type = OBJ_BLOB;
        o->r[0] = sc * urand(&s, 4.5, 6.5);
        o->r[1] = sc * urand(&s, 5, 8);
        o->r[2] = sc * urand(&s, 10, 18);
        if (k % 2) { /* some run along y instead of x */
            double t = o->r[1];
            o->r[1] = o->r[2];
            o->r[2] = t;
        }
        o->t = 1.3;
        o->mem = 3;
        o->lum = 4;
        o->dot = 5;
        o->n_dots = 3;
        for (i = 0; i < o->n_dots; i++) {
            int j;
            for (j = 0; j < 3; j++)
                o->dots[i][j] = o->c[j] + urand(&s, -0.4, 0.4) * o->r[j];
        }
        bbox_of_ellipsoid(o->c, o->r, shape, o->bb0, o->bb1);
        m->n_obj++;
    }
    /* Peroxisomes. */
    for (k = 0; k < 3 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        double r = sc * urand(&s, 3.5, 5);
        if (random_cyto_point(m, &s, 0.8, o->c) != 0)
            continue;
        o->type = OBJ_BLOB;
        o->r[0] = o->r[1] = o->r[2] = r;
        o->t = 1.1;
        o->mem = 47;
        o->lum = 48;
        bbox_of_ellipsoid(o->c, o->r, shape, o->bb0, o->bb1);
        m->n_obj++;
    }
    /* ER sheets: thin wavy slabs y = y0 + a sin(2 pi x / w) of limited extent. */
    for (k = 0; k < 8 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        double ext;
        if (random_cyto_point(m, &s, 0.7, o->c) != 0)
            continue;
        o->type = OBJ_SHEET;
        o->r[0] = sc * urand(&s, 1.5, 3.5);
        o->r[1] = sc * urand(&s, 14, 24);
        o->r[2] = ext = sc * urand(&s, 12, 22);
        o->t = 1.6;
        o->mem = 16;
        o->lum = 17;
        {
            double rr[3] = {ext, o->r[0] + 3, ext};
            bbox_of_ellipsoid(o->c, rr, shape, o->bb0, o->bb1);
        }
        m->n_obj++;
    }
    /* Vesicles. */
    for (k = 0; k < 50 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        double r = sc * urand(&s, 1.8, 3.0);
        if (r < 1.8)
            r = 1.8;
        if (random_cyto_point(m, &s, 0.9, o->c) != 0)
            continue;
        o->type = OBJ_BLOB;
        o->r[0] = o->r[1] = o->r[2] = r;
        o->t = 1.0;
        o->mem = 8;
        o->lum = 9;
        bbox_of_ellipsoid(o->c, o->r, shape, o->bb0, o->bb1);
        m->n_obj++;
    }
    /* Microtubules along x through the cytosol. */
    for (k = 0; k < 3 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        if (random_cyto_point(m, &s, 0.8, o->c) != 0)
            continue;
        o->type = OBJ_TUBE;
        o->r[0] = 1.6; /* outer radius */
        o->t = 0.8;    /* inner radius */
        o->mem = 30;
        o->lum = 36;
        o->bb0[0] = o->c[0] - 3 < 0 ? 0 : (int64_t)(o->c[0] - 3);
        o->bb1[0] = (int64_t)(o->c[0] + 4) > shape[0] ? shape[0] : (int64_t)(o->c[0] + 4);
        o->bb0[1] = o->c[1] - 3 < 0 ? 0 : (int64_t)(o->c[1] - 3);
        o->bb1[1] = (int64_t)(o->c[1] + 4) > shape[1] ? shape[1] : (int64_t)(o->c[1] + 4);
        o->bb0[2] = 0;
        o->bb1[2] = shape[2];
        m->n_obj++;
    }
}

/* The label of the cell / nucleus layer at voxel p (before objects). */
static uint64_t sample_base_label(const sample_model *m, const double *p, int64_t x)
{
    double q, qn, rr[3], d[3], len;
    int i, k;

    if (x >= m->margin_x)
        return 0; /* unannotated margin */
    q = ell_q(p, m->cell_c, m->cell_r);
    if (q >= 1)
        return 1; /* ecs */
    for (i = 0; i < 3; i++)
        rr[i] = m->cell_r[i] - 1.6;
    if (ell_q(p, m->cell_c, rr) >= 1)
        return 2; /* pm */
    qn = ell_q(p, m->nuc_c, m->nuc_r);
    if (qn >= 1)
        return 35; /* cyto */
    /* Nuclear envelope: outer membrane, lumen, inner membrane; pores cut
     * through it at a few directions. */
    for (i = 0; i < 3; i++)
        rr[i] = m->nuc_r[i] - 4.2;
    if (ell_q(p, m->nuc_c, rr) >= 1) {
        len = 0;
        for (i = 0; i < 3; i++) {
            d[i] = (p[i] - m->nuc_c[i]) / m->nuc_r[i];
            len += d[i] * d[i];
        }
        len = sqrt(len) + 1e-9;
        for (k = 0; k < m->n_pores; k++) {
            double dot = 0, ang;
            for (i = 0; i < 3; i++)
                dot += d[i] / len * m->pores[k][i];
            ang = 1 - dot; /* small near the pore axis */
            if (ang < 0.004)
                return 23; /* np_in */
            if (ang < 0.012)
                return 22; /* np_out */
        }
        for (i = 0; i < 3; i++)
            rr[i] = m->nuc_r[i] - 1.4;
        if (ell_q(p, m->nuc_c, rr) >= 1)
            return 20;
        for (i = 0; i < 3; i++)
            rr[i] = m->nuc_r[i] - 2.8;
        if (ell_q(p, m->nuc_c, rr) >= 1)
            return 21;
        return 20;
    }
    /* Nucleolus off-centre, heterochromatin lining the envelope. */
    for (i = 0; i < 3; i++) {
        d[i] = m->nuc_c[i] + (i == 2 ? -0.25 : 0.15) * m->nuc_r[i];
        rr[i] = m->nuc_r[i] * 0.28;
    }
    if (ell_q(p, d, rr) < 1)
        return 29;
    for (i = 0; i < 3; i++)
        rr[i] = m->nuc_r[i] - 8.0;
    if (rr[0] > 1 && rr[1] > 1 && rr[2] > 1 && ell_q(p, m->nuc_c, rr) >= 1 &&
        sin(p[0] * 0.35) + sin(p[1] * 0.29 + 1) + sin(p[2] * 0.31 + 2) > 0.6)
        return 24;
    return 28;
}

static uint64_t sample_obj_label(const sample_obj *o, const double *p)
{
    double q, rr[3];
    int i, k;
    switch (o->type) {
    case OBJ_BLOB:
        q = ell_q(p, o->c, o->r);
        if (q >= 1)
            return 0;
        for (i = 0; i < 3; i++)
            rr[i] = o->r[i] - o->t;
        if (rr[0] <= 0 || rr[1] <= 0 || rr[2] <= 0 || ell_q(p, o->c, rr) >= 1)
            return (uint64_t)o->mem;
        for (k = 0; k < o->n_dots; k++) {
            double dd = 0;
            for (i = 0; i < 3; i++)
                dd += (p[i] - o->dots[k][i]) * (p[i] - o->dots[k][i]);
            if (dd < 1.3)
                return (uint64_t)o->dot;
        }
        return (uint64_t)o->lum;
    case OBJ_SHEET: {
        double dz = p[0] - o->c[0], dx = p[2] - o->c[2];
        double y0 = o->c[1] + o->r[0] * sin(6.283185307179586 * p[2] / o->r[1]);
        double dy = fabs(p[1] - y0);
        if (dz * dz + dx * dx > o->r[2] * o->r[2])
            return 0;
        if (dy < 0.7)
            return (uint64_t)o->lum;
        if (dy < 0.7 + o->t)
            return (uint64_t)o->mem;
        return 0;
    }
    case OBJ_TUBE: {
        double dz = p[0] - o->c[0], dy = p[1] - o->c[1], d2 = dz * dz + dy * dy;
        if (d2 < o->t * o->t)
            return (uint64_t)o->lum;
        if (d2 < o->r[0] * o->r[0])
            return (uint64_t)o->mem;
        return 0;
    }
    }
    return 0;
}

/* Fill slab z in [z0, z1) (buf holds (z1-z0) * Y * X labels). */
void sample_fill(const sample_model *m, int64_t z0, int64_t z1, uint64_t *buf)
{
    int64_t Y = m->shape[1], X = m->shape[2], z, y, x;
    int k;
    for (z = z0; z < z1; z++)
        for (y = 0; y < Y; y++)
            for (x = 0; x < X; x++) {
                double p[3] = {(double)z + 0.5, (double)y + 0.5, (double)x + 0.5};
                buf[((z - z0) * Y + y) * X + x] = sample_base_label(m, p, x);
            }
    /* Objects in order; each paints only over cytosol. */
    for (k = 0; k < m->n_obj; k++) {
        const sample_obj *o = &m->obj[k];
        int64_t a0 = o->bb0[0] > z0 ? o->bb0[0] : z0;
        int64_t a1 = o->bb1[0] < z1 ? o->bb1[0] : z1;
        for (z = a0; z < a1; z++)
            for (y = o->bb0[1]; y < o->bb1[1]; y++)
                for (x = o->bb0[2]; x < o->bb1[2]; x++) {
                    uint64_t *v = &buf[((z - z0) * Y + y) * X + x];
                    double p[3] = {(double)z + 0.5, (double)y + 0.5, (double)x + 0.5};
                    uint64_t l;
                    if (*v != 35)
                        continue;
                    l = sample_obj_label(o, p);
                    if (l)
                        *v = l;
                }
    }
}

sample_model *sample_model_new(const int64_t shape[3], uint64_t seed)
{
    sample_model *m = malloc(sizeof *m);
    if (m)
        sample_model_init(m, shape, seed);
    return m;
}

void sample_model_free(sample_model *m)
{
    free(m);
}
