/*
 * labelbinmodule.c — labelbin._labelbin, the CPython extension: a thin base
 * type over lb_array (public API only) whose reads release the GIL and fill
 * numpy arrays in place. The Pythonic API (Roi, configs, DaCapo classes)
 * is written in Python on top of it (python/labelbin/).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "labelbin.h"

static PyObject *FormatError; /* labelbin.FormatError (owned by the module) */

/* ---- errors -------------------------------------------------------------- */

/* Map an LB_E* code to a Python exception carrying the library's message. */
static PyObject *raise_lb(int rc, const lb_error *err) {
    const char *msg = err && err->message[0] ? err->message : lb_strerror(rc);
    PyObject *type;
    switch (rc) {
    case LB_EROI:
    case LB_EINVAL:
    case LB_EOVERLAP: /* DEST is or holds the input: a bad argument */
    case LB_EVIRTUAL: type = PyExc_ValueError; break;
    case LB_ENOMEM: type = PyExc_MemoryError; break;
    case LB_EIO: type = PyExc_OSError; break;
    case LB_ENOTFOUND: type = PyExc_FileNotFoundError; break;
    case LB_EEXIST: type = PyExc_FileExistsError; break;
    case LB_EFORMAT:
    case LB_EUNSUPPORTED:
    case LB_ELIMIT: type = FormatError; break;
    case LB_ECANCELED: type = PyExc_KeyboardInterrupt; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_SetString(type, msg);
    return NULL;
}

/* ---- the Array base type ------------------------------------------------- */

/* Locking: lb_array_read is thread-safe, but writes, set_cache and close
 * must not overlap reads. Readers take `lock` shared, those take it
 * exclusive. Rule that keeps this deadlock-free: never block on `lock`
 * while holding the GIL. `arr` changes only under the exclusive lock AND
 * the GIL, so code holding either one sees a stable pointer. */
typedef struct {
    PyObject_HEAD
    lb_array *arr;
    int closed;
    pthread_rwlock_t lock;
} ArrayObject;

static PyTypeObject ArrayType;

static lb_array *get_arr(ArrayObject *self) {
    if (self->arr) return self->arr;
    PyErr_SetString(PyExc_ValueError,
                    self->closed ? "the array is closed" : "the array is not open");
    return NULL;
}

static PyObject *closed_error(void) {
    PyErr_SetString(PyExc_ValueError, "the array is closed");
    return NULL;
}

static PyObject *Array_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    ArrayObject *self = (ArrayObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->arr = NULL;
    self->closed = 0;
    if (pthread_rwlock_init(&self->lock, NULL) != 0) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void Array_dealloc(ArrayObject *self) {
    /* No other reference exists, so nobody holds the lock. */
    lb_array_free(self->arr);
    self->arr = NULL;
    pthread_rwlock_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Install a freshly built array, refusing to replace one. */
static PyObject *install(ArrayObject *self, lb_array *a) {
    if (self->arr || self->closed) {
        lb_array_free(a);
        PyErr_SetString(PyExc_RuntimeError, "the array is already initialised");
        return NULL;
    }
    self->arr = a;
    Py_RETURN_NONE;
}

/* A sequence of ints into int64_t[]; returns the length or -1. */
static int int64_seq(PyObject *seq, int64_t *out, int max, const char *what) {
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of integers");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > max) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s has %zd entries, at most %d are supported", what, n,
                     max);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        PyObject *idx = PyNumber_Index(item);
        if (!idx) {
            Py_DECREF(fast);
            return -1;
        }
        long long v = PyLong_AsLongLong(idx);
        Py_DECREF(idx);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        out[i] = (int64_t)v;
    }
    Py_DECREF(fast);
    return (int)n;
}

static int parse_roi(PyObject *offset, PyObject *shape, lb_roi *roi) {
    int64_t off[LB_MAX_DIMS], shp[LB_MAX_DIMS];
    int n = int64_seq(offset, off, LB_MAX_DIMS, "the ROI offset");
    if (n < 0) return -1;
    int m = int64_seq(shape, shp, LB_MAX_DIMS, "the ROI shape");
    if (m < 0) return -1;
    if (n != m) {
        PyErr_Format(PyExc_ValueError, "offset dimension %d != shape dimension %d", n, m);
        return -1;
    }
    lb_error err = {0};
    int rc = lb_roi_set(roi, n, off, shp, &err);
    if (rc) {
        raise_lb(rc, &err);
        return -1;
    }
    return 0;
}

static PyObject *tuple_i64(const int64_t *v, int n) {
    if (!v) Py_RETURN_NONE;
    PyObject *t = PyTuple_New(n);
    if (!t) return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *x = PyLong_FromLongLong((long long)v[i]);
        if (!x) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, x);
    }
    return t;
}

static int npy_type(lb_dtype d) {
    switch (d) {
    case LB_DTYPE_UINT8: return NPY_UINT8;
    case LB_DTYPE_UINT16: return NPY_UINT16;
    case LB_DTYPE_UINT32: return NPY_UINT32;
    case LB_DTYPE_UINT64: return NPY_UINT64;
    case LB_DTYPE_INT8: return NPY_INT8;
    case LB_DTYPE_INT16: return NPY_INT16;
    case LB_DTYPE_INT32: return NPY_INT32;
    case LB_DTYPE_INT64: return NPY_INT64;
    case LB_DTYPE_BOOL: return NPY_BOOL;
    case LB_DTYPE_FLOAT32: return NPY_FLOAT32;
    case LB_DTYPE_FLOAT64: return NPY_FLOAT64;
    }
    return -1;
}

static const char *const dtype_names[] = {"uint8", "uint16", "uint32", "uint64",
                                          "int8",  "int16",  "int32",  "int64"};

static int parse_dtype(const char *name, lb_dtype *out) {
    for (int i = 0; i < 8; i++)
        if (strcmp(name, dtype_names[i]) == 0) {
            *out = (lb_dtype)i;
            return 0;
        }
    PyErr_Format(PyExc_ValueError, "unsupported dtype '%s' (expected one of uint8..uint64, "
                                   "int8..int64)", name);
    return -1;
}

/* Shared lock helpers: block without the GIL. */
static void lock_shared(ArrayObject *self) {
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    Py_END_ALLOW_THREADS
}
static void lock_exclusive(ArrayObject *self) {
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    Py_END_ALLOW_THREADS
}
static void unlock(ArrayObject *self) { pthread_rwlock_unlock(&self->lock); }

/* ---- construction ---------------------------------------------------------- */

static PyObject *Array_open(ArrayObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "writable", "axes", NULL};
    const char *path;
    int writable = 0;
    PyObject *axes = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pO:_open", kwlist, &path, &writable, &axes))
        return NULL;
    const char *names[LB_MAX_DIMS];
    int n_axes = 0;
    PyObject *fast = NULL;
    if (axes != Py_None) {
        fast = PySequence_Fast(axes, "axes must be a sequence of strings");
        if (!fast) return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        if (n > LB_MAX_DIMS) {
            Py_DECREF(fast);
            return PyErr_Format(PyExc_ValueError, "%zd axes, at most %d are supported", n,
                                LB_MAX_DIMS);
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *s = PySequence_Fast_GET_ITEM(fast, i);
            if (!PyUnicode_Check(s)) {
                Py_DECREF(fast);
                return PyErr_Format(PyExc_TypeError, "axes[%zd] must be a string", i);
            }
            names[i] = PyUnicode_AsUTF8(s);
            if (!names[i]) {
                Py_DECREF(fast);
                return NULL;
            }
        }
        n_axes = (int)n;
    }
    lb_array *a = NULL;
    lb_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lb_array_open(path, writable ? LB_OPEN_WRITE : LB_OPEN_READONLY,
                       fast ? names : NULL, n_axes, &a, &err);
    Py_END_ALLOW_THREADS
    Py_XDECREF(fast);
    if (rc) return raise_lb(rc, &err);
    return install(self, a);
}

static PyObject *Array_from_config(ArrayObject *self, PyObject *args) {
    const char *json, *base_dir = NULL;
    if (!PyArg_ParseTuple(args, "s|z:_from_config", &json, &base_dir)) return NULL;
    lb_array *a = NULL;
    lb_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lb_array_from_config(json, base_dir, &a, &err);
    Py_END_ALLOW_THREADS
    if (rc) return raise_lb(rc, &err);
    return install(self, a);
}

static PyObject *Array_create(ArrayObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path",      "shape",      "chunks",    "dtype",
                             "format",    "codec",      "fill_value", "attrs",
                             "overwrite", "big_endian", "order",     "separator",
                             "shard",     NULL};
    const char *path, *dtype = "uint8", *format = "zarr2", *codec = NULL, *fill = NULL,
                      *attrs = NULL, *order = "C", *sep = NULL;
    PyObject *shape_o, *chunks_o, *shard_o = Py_None;
    int overwrite = 0, big_endian = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sOO|szzzzppszO:_create", kwlist, &path,
                                     &shape_o, &chunks_o, &dtype, &format, &codec, &fill,
                                     &attrs, &overwrite, &big_endian, &order, &sep, &shard_o))
        return NULL;
    int64_t shape[LB_MAX_DIMS], chunks[LB_MAX_DIMS];
    int n = int64_seq(shape_o, shape, LB_MAX_DIMS, "shape");
    if (n < 0) return NULL;
    int m = int64_seq(chunks_o, chunks, LB_MAX_DIMS, "chunks");
    if (m < 0) return NULL;
    if (n != m)
        return PyErr_Format(PyExc_ValueError, "shape has %d entries but chunks %d", n, m);
    lb_create_options opt;
    lb_create_options_init(&opt);
    if (parse_dtype(dtype, &opt.dtype)) return NULL;
    if (strcmp(format, "zarr2") == 0 || strcmp(format, "zarr") == 0)
        opt.format = LB_FORMAT_ZARR2;
    else if (strcmp(format, "n5") == 0)
        opt.format = LB_FORMAT_N5;
    else if (strcmp(format, "zarr3") == 0)
        opt.format = LB_FORMAT_ZARR3;
    else
        return PyErr_Format(PyExc_ValueError,
                            "unknown format '%s' (expected 'zarr2', 'n5' or 'zarr3')", format);
    if (strcmp(order, "C") != 0 && strcmp(order, "F") != 0)
        return PyErr_Format(PyExc_ValueError, "order must be 'C' or 'F', not '%s'", order);
    if (sep && strcmp(sep, ".") != 0 && strcmp(sep, "/") != 0)
        return PyErr_Format(PyExc_ValueError, "separator must be '.' or '/', not '%s'", sep);
    int64_t shard[LB_MAX_DIMS];
    if (shard_o != Py_None) {
        int k = int64_seq(shard_o, shard, LB_MAX_DIMS, "shard");
        if (k < 0) return NULL;
        if (k != n)
            return PyErr_Format(PyExc_ValueError, "shape has %d entries but shard %d", n, k);
        opt.shard = shard;
    }
    opt.fortran_order = order[0] == 'F';
    opt.separator = sep ? sep[0] : 0;
    opt.big_endian = big_endian;
    opt.codec = codec;
    opt.fill_value_json = fill;
    opt.attrs_json = attrs;
    opt.overwrite = overwrite;
    lb_array *a = NULL;
    lb_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lb_dataset_create(path, n, shape, chunks, &opt, &a, &err);
    Py_END_ALLOW_THREADS
    if (rc) return raise_lb(rc, &err);
    return install(self, a);
}

static PyObject *Array_close(ArrayObject *self, PyObject *unused) {
    if (!self->arr) {
        self->closed = 1;
        Py_RETURN_NONE;
    }
    lock_exclusive(self);
    lb_array *a = self->arr;
    self->arr = NULL;
    self->closed = 1;
    unlock(self);
    lb_array_free(a);
    Py_RETURN_NONE;
}

/* ---- reading and writing --------------------------------------------------- */

/* After a ROI that would not pass lb_array_read's checks: let the library
 * produce its message (no I/O happens before its checks). */
static PyObject *refuse_roi(const lb_array *a, const lb_roi *roi) {
    lb_error err = {0};
    int rc = lb_array_read(a, roi, NULL, 0, &err);
    if (rc) return raise_lb(rc, &err);
    char buf[512];
    lb_roi_format(roi, buf, sizeof buf);
    return PyErr_Format(PyExc_ValueError, "ROI %s cannot be read from this array", buf);
}

/* "(a, b, c)" of n dims into buf (numpy's tuple form). */
static void shape_text(char *buf, size_t size, int n, const npy_intp *dims) {
    size_t k = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < n && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%" NPY_INTP_FMT, i ? ", " : "", dims[i]);
    if (k < size) snprintf(buf + k, size - k, "%s)", n == 1 ? "," : "");
}

/* `dst` as the output of a read of `ndim` dims `odims` and numpy type
 * `type`: a writable, aligned, C-contiguous array of exactly that shape
 * and dtype (native byte order). Returns a new reference, or NULL with
 * ValueError / TypeError saying what is wrong with the array given. */
static PyObject *check_out(PyObject *dst, int ndim, const npy_intp *odims, int type) {
    if (!PyArray_Check(dst))
        return PyErr_Format(PyExc_TypeError, "out must be a numpy array, not %s",
                            Py_TYPE(dst)->tp_name);
    PyArrayObject *o = (PyArrayObject *)dst;
    PyArray_Descr *want = PyArray_DescrFromType(type);
    if (!want) return NULL;
    int fits = PyArray_EquivTypes(PyArray_DESCR(o), want) && PyArray_ISNOTSWAPPED(o) &&
               PyArray_NDIM(o) == ndim;
    for (int i = 0; fits && i < ndim; i++) fits = PyArray_DIM(o, i) == odims[i];
    if (!fits) { /* the message is built only when it is needed */
        PyObject *wname = PyObject_Str((PyObject *)want);
        Py_DECREF(want);
        if (!wname) return NULL;
        PyObject *gname = PyObject_Str((PyObject *)PyArray_DESCR(o));
        if (!gname) {
            Py_DECREF(wname);
            return NULL;
        }
        char shp[256], given[256];
        shape_text(shp, sizeof shp, ndim, odims);
        shape_text(given, sizeof given, PyArray_NDIM(o), PyArray_DIMS(o));
        PyErr_Format(PyExc_ValueError,
                     "out must have dtype %U and shape %s, the shape and dtype of this "
                     "read, not dtype %U and shape %s", wname, shp, gname, given);
        Py_DECREF(wname);
        Py_DECREF(gname);
        return NULL;
    }
    Py_DECREF(want);
    /* A copy (np.ascontiguousarray) would not help: the read must fill
     * the caller's own buffer. */
    int contiguous = PyArray_IS_C_CONTIGUOUS(o), aligned = PyArray_ISALIGNED(o),
        writable = PyArray_ISWRITEABLE(o);
    if (!contiguous || !aligned || !writable) {
        char strides[256], noncontig[300];
        shape_text(strides, sizeof strides, PyArray_NDIM(o), PyArray_STRIDES(o));
        snprintf(noncontig, sizeof noncontig, "not C-contiguous (strides %s)", strides);
        const char *f[3] = {"", "", ""};
        int nf = 0;
        if (!contiguous) f[nf++] = noncontig;
        if (!aligned) f[nf++] = "not aligned";
        if (!writable) f[nf++] = "read-only";
        return PyErr_Format(PyExc_ValueError,
                            "out must be C-contiguous, aligned and writable: the read fills it "
                            "in place; the array given is %s%s%s%s%s",
                            f[0], nf > 2 ? ", " : nf > 1 ? " and " : "", nf > 1 ? f[1] : "",
                            nf > 2 ? " and " : "", nf > 2 ? f[2] : "");
    }
    Py_INCREF(dst);
    return dst;
}

static PyObject *Array_read(ArrayObject *self, PyObject *args) {
    PyObject *offset, *shape, *dst = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O:_read", &offset, &shape, &dst)) return NULL;
    lb_array *a = get_arr(self);
    if (!a) return NULL;
    lb_roi roi;
    if (parse_roi(offset, shape, &roi)) return NULL;

    int dims = lb_array_dims(a), ndim = lb_array_ndim(a);
    const int64_t *vs = lb_array_voxel_size(a);
    lb_roi whole;
    lb_array_roi(a, &whole);
    int ok = roi.ndim == dims && lb_roi_contains(&whole, &roi) && lb_roi_aligned(&roi, vs);
    for (int i = 0; ok && i < roi.ndim; i++) ok = roi.shape[i] >= 0;
    if (!ok) return refuse_roi(a, &roi);

    npy_intp odims[LB_MAX_DIMS];
    int lead = ndim - dims;
    const int64_t *shp = lb_array_shape(a);
    for (int i = 0; i < lead; i++) odims[i] = (npy_intp)shp[i];
    for (int i = 0; i < dims; i++) odims[lead + i] = (npy_intp)(roi.shape[i] / vs[i]);
    int type = npy_type(lb_array_dtype(a));
    PyObject *out = dst == Py_None ? PyArray_SimpleNew(ndim, odims, type)
                                   : check_out(dst, ndim, odims, type);
    if (!out) return NULL;
    size_t nbytes = (size_t)PyArray_NBYTES((PyArrayObject *)out);
    void *data = PyArray_DATA((PyArrayObject *)out);

    lb_error err = {0};
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    if (self->arr)
        rc = lb_array_read(self->arr, &roi, data, nbytes, &err);
    else
        closed = 1;
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (closed || rc) {
        Py_DECREF(out);
        if (closed) return closed_error();
        return raise_lb(rc, &err);
    }
    return out;
}

/* Borrow a C-contiguous buffer of `obj` for a write. */
static int get_cbuf(PyObject *obj, Py_buffer *view) {
    return PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS);
}

static PyObject *Array_write(ArrayObject *self, PyObject *args) {
    PyObject *offset, *shape, *src;
    if (!PyArg_ParseTuple(args, "OOO:_write", &offset, &shape, &src)) return NULL;
    if (!get_arr(self)) return NULL;
    lb_roi roi;
    if (parse_roi(offset, shape, &roi)) return NULL;
    Py_buffer view;
    if (get_cbuf(src, &view)) return NULL;
    lb_error err = {0};
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    if (self->arr)
        rc = lb_array_write(self->arr, &roi, view.buf, (size_t)view.len, &err);
    else
        closed = 1;
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (closed) return closed_error();
    if (rc) return raise_lb(rc, &err);
    Py_RETURN_NONE;
}

static int parse_box(lb_array *a, PyObject *start_o, PyObject *count_o, int64_t *start,
                     int64_t *count) {
    int ndim = lb_array_ndim(a);
    int n = int64_seq(start_o, start, LB_MAX_DIMS, "start");
    if (n < 0) return -1;
    int m = int64_seq(count_o, count, LB_MAX_DIMS, "count");
    if (m < 0) return -1;
    if (n != ndim || m != ndim) {
        PyErr_Format(PyExc_ValueError, "expected %d start and count entries, got %d and %d",
                     ndim, n, m);
        return -1;
    }
    return 0;
}

static PyObject *Array_data_read(ArrayObject *self, PyObject *args) {
    PyObject *start_o, *count_o;
    if (!PyArg_ParseTuple(args, "OO:_data_read", &start_o, &count_o)) return NULL;
    lb_array *a = get_arr(self);
    if (!a) return NULL;
    int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS];
    if (parse_box(a, start_o, count_o, start, count)) return NULL;
    int ndim = lb_array_ndim(a);
    npy_intp odims[LB_MAX_DIMS];
    const int64_t *shp = lb_array_shape(a);
    for (int i = 0; i < ndim; i++) {
        /* Check the box here so that a huge count is a ValueError, not a
         * MemoryError from numpy. */
        if (start[i] < 0 || count[i] < 0 || start[i] > shp[i] || count[i] > shp[i] - start[i]) {
            lb_error err = {0};
            int rc = lb_array_data_read(a, start, count, NULL, 0, &err);
            if (rc) return raise_lb(rc, &err);
            return PyErr_Format(PyExc_ValueError, "index range outside the array in dimension %d",
                                i);
        }
        odims[i] = (npy_intp)count[i];
    }
    PyObject *out = PyArray_SimpleNew(ndim, odims, npy_type(lb_array_dtype(a)));
    if (!out) return NULL;
    size_t nbytes = (size_t)PyArray_NBYTES((PyArrayObject *)out);
    void *data = PyArray_DATA((PyArrayObject *)out);
    lb_error err = {0};
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    if (self->arr)
        rc = lb_array_data_read(self->arr, start, count, data, nbytes, &err);
    else
        closed = 1;
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (closed || rc) {
        Py_DECREF(out);
        if (closed) return closed_error();
        return raise_lb(rc, &err);
    }
    return out;
}

static PyObject *Array_data_write(ArrayObject *self, PyObject *args) {
    PyObject *start_o, *count_o, *src;
    if (!PyArg_ParseTuple(args, "OOO:_data_write", &start_o, &count_o, &src)) return NULL;
    lb_array *a = get_arr(self);
    if (!a) return NULL;
    int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS];
    if (parse_box(a, start_o, count_o, start, count)) return NULL;
    Py_buffer view;
    if (get_cbuf(src, &view)) return NULL;
    lb_error err = {0};
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    if (self->arr)
        rc = lb_array_data_write(self->arr, start, count, view.buf, (size_t)view.len, &err);
    else
        closed = 1;
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (closed) return closed_error();
    if (rc) return raise_lb(rc, &err);
    Py_RETURN_NONE;
}

/* A setting of the stored array (cache, read threads): applied under the
 * write lock, so it waits for reads in other threads to finish. */
typedef enum { SET_CACHE, SET_THREADS } array_setting;

static PyObject *set_under_lock(ArrayObject *self, array_setting what, size_t value) {
    lb_error err = {0};
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    if (!self->arr)
        closed = 1;
    else if (what == SET_CACHE)
        rc = lb_array_set_cache(self->arr, value, &err);
    else
        rc = lb_array_set_threads(self->arr, (int)(ptrdiff_t)value, &err);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (closed) return closed_error();
    if (rc) return raise_lb(rc, &err);
    Py_RETURN_NONE;
}

/* A count argument (bytes, threads): an int, not a bool, in [0, max].
 * The Python layer checks first, naming the public function; this is the
 * floor for direct calls, so that no value wraps or is truncated (as the
 * "K" and "i" formats would do). */
static int count_arg(PyObject *o, const char *what, unsigned long long max,
                     unsigned long long *out) {
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    int outside = 0;
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        outside = 1; /* negative, or above 2**64-1 */
    }
    if (outside || v > max) {
        PyErr_Format(PyExc_ValueError, "%s must be between 0 and %llu, not %R", what, max, o);
        return -1;
    }
    *out = v;
    return 0;
}

/* The largest label cache: a file of that many bytes (off_t) mapped whole
 * (size_t). */
static unsigned long long label_cache_max(void) {
    unsigned long long off_max = (1ull << (sizeof(off_t) * CHAR_BIT - 1)) - 1;
    return off_max < SIZE_MAX ? off_max : (unsigned long long)SIZE_MAX;
}

static PyObject *Array_set_cache(ArrayObject *self, PyObject *arg) {
    unsigned long long bytes;
    if (count_arg(arg, "set_cache: nbytes", SIZE_MAX, &bytes)) return NULL;
    if (!get_arr(self)) return NULL;
    return set_under_lock(self, SET_CACHE, (size_t)bytes);
}

static PyObject *Array_set_threads(ArrayObject *self, PyObject *arg) {
    unsigned long long threads;
    if (count_arg(arg, "set_threads: n", INT_MAX, &threads)) return NULL;
    if (!get_arr(self)) return NULL;
    return set_under_lock(self, SET_THREADS, (size_t)threads);
}

/* ---- the label cache ------------------------------------------------------- */

static PyObject *Array_set_label_cache(ArrayObject *self, PyObject *args) {
    const char *name = NULL;
    PyObject *bytes_o;
    unsigned long long bytes;
    if (!PyArg_ParseTuple(args, "zO:_set_label_cache", &name, &bytes_o)) return NULL;
    if (count_arg(bytes_o, "set_label_cache: nbytes", label_cache_max(), &bytes)) return NULL;
    if (!get_arr(self)) return NULL;
    lb_error err = {0};
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    if (!self->arr) closed = 1;
    else rc = lb_array_set_label_cache(self->arr, name, (size_t)bytes, &err);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (closed) return closed_error();
    if (rc) return raise_lb(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *Array_warm(ArrayObject *self, PyObject *args) {
    PyObject *offset, *shape, *threads_o;
    unsigned long long threads;
    if (!PyArg_ParseTuple(args, "OOO:_warm", &offset, &shape, &threads_o)) return NULL;
    if (count_arg(threads_o, "warm: threads", INT_MAX, &threads)) return NULL;
    if (!get_arr(self)) return NULL;
    lb_roi roi;
    int whole = offset == Py_None;
    if (!whole && parse_roi(offset, shape, &roi)) return NULL;
    lb_error err = {0};
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    if (!self->arr) closed = 1;
    else rc = lb_array_warm(self->arr, whole ? NULL : &roi, (int)threads, &err);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (closed) return closed_error();
    if (rc) return raise_lb(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *cache_info_dict(const lb_cache_info *i) {
    static const char *kinds[] = {"none", "chunk", "label"};
    double ratio = i->bytes ? (double)i->raw_bytes / (double)i->bytes : 0.0;
    uint64_t looks = i->hits + i->misses;
    return Py_BuildValue(
        "{s:s,s:s,s:s,s:K,s:K,s:K,s:K,s:K,s:K,s:d,s:K,s:K,s:d,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}",
        "kind",
        kinds[i->kind >= 0 && i->kind <= 2 ? i->kind : 0], "name", i->name, "path", i->path,
        "capacity", (unsigned long long)i->capacity, "bytes", (unsigned long long)i->bytes,
        "entries", (unsigned long long)i->entries, "max_entries",
        (unsigned long long)i->max_entries, "declined",
        (unsigned long long)i->declined, "raw_bytes",
        (unsigned long long)i->raw_bytes, "compression", ratio, "hits",
        (unsigned long long)i->hits, "misses", (unsigned long long)i->misses, "hit_rate",
        looks ? (double)i->hits / (double)looks : 0.0, "inserts",
        (unsigned long long)i->inserts, "evictions", (unsigned long long)i->evictions,
        "corrupt", (unsigned long long)i->corrupt, "stale", (unsigned long long)i->stale,
        "process_hits",
        (unsigned long long)i->process_hits, "process_misses",
        (unsigned long long)i->process_misses, "memory_bytes",
        (unsigned long long)i->memory_bytes, "fs_free_bytes",
        (unsigned long long)i->fs_free_bytes, "fs_bytes", (unsigned long long)i->fs_bytes);
}

static PyObject *Array_cache_info(ArrayObject *self, PyObject *unused) {
    (void)unused;
    if (!get_arr(self)) return NULL;
    lb_cache_info info;
    lb_error err = {0};
    int rc = 0, closed = 0;
    pthread_rwlock_rdlock(&self->lock);
    if (!self->arr) closed = 1;
    else rc = lb_array_cache_info(self->arr, &info, &err);
    pthread_rwlock_unlock(&self->lock);
    if (closed) return closed_error();
    if (rc) return raise_lb(rc, &err);
    return cache_info_dict(&info);
}

static PyObject *mod_cache_stats(PyObject *mod, PyObject *args, PyObject *kw) {
    (void)mod;
    static char *kwlist[] = {"name", NULL};
    const char *name = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z:cache_stats", kwlist, &name)) return NULL;
    lb_cache_info info;
    lb_error err = {0};
    int rc = lb_cache_stats(name, &info, &err);
    if (rc) return raise_lb(rc, &err);
    return cache_info_dict(&info);
}

static PyObject *mod_cache_remove(PyObject *mod, PyObject *args, PyObject *kw) {
    (void)mod;
    static char *kwlist[] = {"name", NULL};
    const char *name = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z:cache_remove", kwlist, &name)) return NULL;
    lb_error err = {0};
    int rc = lb_cache_remove(name, &err);
    if (rc) return raise_lb(rc, &err);
    Py_RETURN_NONE;
}

/* ---- materialisation ---------------------------------------------------------
 * lb_array_materialize runs in a helper thread while the calling thread
 * waits without the GIL, waking every 100 ms to poll for Ctrl-C
 * (PyErr_CheckSignals only works on the main thread, and the library's
 * progress callback may run on any worker) and to report progress. */

typedef struct {
    const lb_array *a;
    const char *dest;
    lb_write_options opt;
    lb_write_stats stats;
    lb_error err;
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int64_t p_done, p_total;
    int p_new;
    volatile int cancel;
    int crop; /* write a three-state crop array as a crop (lb_crop_materialize) */
} mat_job;

static void mat_progress(void *user, int64_t done, int64_t total) {
    mat_job *j = user;
    pthread_mutex_lock(&j->mu);
    j->p_done = done;
    j->p_total = total;
    j->p_new = 1;
    pthread_mutex_unlock(&j->mu);
}

static void *mat_thread(void *user) {
    mat_job *j = user;
    int rc = j->crop ? lb_crop_materialize(j->a, j->dest, &j->opt, &j->stats, &j->err)
                     : lb_array_materialize(j->a, j->dest, &j->opt, &j->stats, &j->err);
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->done = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static PyObject *stats_dict(const lb_write_stats *s) {
    PyObject *pos = tuple_i64(s->positive, (int)s->positive_len);
    if (!pos) return NULL;
    PyObject *list = PySequence_List(pos);
    Py_DECREF(pos);
    if (!list) return NULL;
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L,s:L,s:N,s:i}", "blocks_total",
                         (long long)s->blocks_total, "blocks_done", (long long)s->blocks_done,
                         "blocks_skipped", (long long)s->blocks_skipped, "chunks_written",
                         (long long)s->chunks_written, "chunks_empty",
                         (long long)s->chunks_empty, "bytes_written",
                         (long long)s->bytes_written, "positive", list, "threads", s->threads);
}

/* Wait for the job: returns 1 when done, 0 after a timeout. Without GIL. */
static int mat_wait(mat_job *j, int64_t *done, int64_t *total, int *fresh) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    if (!j->done) pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    int d = j->done;
    *done = j->p_done;
    *total = j->p_total;
    *fresh = j->p_new;
    j->p_new = 0;
    pthread_mutex_unlock(&j->mu);
    return d;
}

/* The writer's messages name the CLI's options; say the keywords of
 * to_zarr instead ("--resume" -> "resume=True", "-f" -> "overwrite=True"). */
static void python_words(lb_error *e) {
    static const struct {
        const char *cli, *py;
    } words[] = {{"--resume", "resume=True"}, {"use -f ", "use overwrite=True "}};
    char out[LB_ERROR_MESSAGE_SIZE];
    size_t o = 0;
    const char *m = e->message;
    while (*m && o + 1 < sizeof out) {
        size_t k = 0;
        while (k < sizeof words / sizeof *words &&
               strncmp(m, words[k].cli, strlen(words[k].cli)) != 0)
            k++;
        if (k < sizeof words / sizeof *words) {
            size_t n = strlen(words[k].py);
            if (o + n >= sizeof out) break;
            memcpy(out + o, words[k].py, n);
            o += n;
            m += strlen(words[k].cli);
        } else {
            out[o++] = *m++;
        }
    }
    out[o] = '\0';
    memcpy(e->message, out, o + 1);
}

static PyObject *Array_materialize(ArrayObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"dest",   "offset",    "shape",   "threads",
                             "codec",  "chunks",    "overwrite", "resume",
                             "ome_ngff", "provenance", "progress", "format",
                             "shard", "channel_chunks", "crop", NULL};
    const char *dest, *codec = NULL, *prov = NULL, *format = NULL;
    PyObject *offset = Py_None, *shape = Py_None, *chunks_o = Py_None, *progress = Py_None;
    PyObject *shard_o = Py_None;
    int threads = 0, overwrite = 0, resume = 0, ome = 0, channel_chunks = 0, crop = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|OOizOpppzOzOip:_materialize", kwlist, &dest,
                                     &offset, &shape, &threads, &codec, &chunks_o, &overwrite,
                                     &resume, &ome, &prov, &progress, &format, &shard_o,
                                     &channel_chunks, &crop))
        return NULL;
    lb_array *a = get_arr(self);
    if (!a) return NULL;
    if (progress != Py_None && !PyCallable_Check(progress))
        return PyErr_Format(PyExc_TypeError, "progress must be callable");
    if (threads < 0) return PyErr_Format(PyExc_ValueError, "threads must be >= 0");

    mat_job *j = PyMem_Calloc(1, sizeof *j);
    if (!j) return PyErr_NoMemory();
    lb_roi roi;
    int64_t chunks[LB_MAX_DIMS], shard[LB_MAX_DIMS];
    int64_t *positive = NULL;
    PyObject *result = NULL;
    lb_write_options_init(&j->opt);
    j->opt.threads = threads;
    j->opt.codec = codec;
    j->opt.overwrite = overwrite;
    j->opt.resume = resume;
    j->opt.ome_ngff = ome;
    j->opt.provenance_json = prov;
    j->opt.progress = mat_progress;
    j->opt.progress_user = j;
    j->opt.cancel = &j->cancel;
    if (offset != Py_None || shape != Py_None) {
        if (offset == Py_None || shape == Py_None) {
            PyErr_SetString(PyExc_ValueError, "give both the ROI offset and shape");
            goto fail;
        }
        if (parse_roi(offset, shape, &roi)) goto fail;
        j->opt.roi = &roi;
    }
    if (chunks_o != Py_None) {
        int n = int64_seq(chunks_o, chunks, LB_MAX_DIMS, "chunks");
        if (n < 0) goto fail;
        if (n != lb_array_dims(a)) {
            PyErr_Format(PyExc_ValueError, "chunks needs %d entries (one per spatial "
                                           "dimension), got %d", lb_array_dims(a), n);
            goto fail;
        }
        j->opt.chunks = chunks;
    }
    if (format && strcmp(format, "zarr2") == 0) {
        j->opt.format = LB_FORMAT_ZARR2;
    } else if (format && strcmp(format, "zarr3") == 0) {
        j->opt.format = LB_FORMAT_ZARR3;
    } else if (format) {
        PyErr_Format(PyExc_ValueError, "format must be \"zarr2\" or \"zarr3\", not \"%s\"",
                     format);
        goto fail;
    }
    if (shard_o != Py_None) {
        int n = int64_seq(shard_o, shard, LB_MAX_DIMS, "shard");
        if (n < 0) goto fail;
        if (n != lb_array_dims(a)) {
            PyErr_Format(PyExc_ValueError, "shard needs %d entries (one per spatial "
                                           "dimension), got %d", lb_array_dims(a), n);
            goto fail;
        }
        j->opt.shard = shard;
    }
    j->opt.channel_chunks = channel_chunks;
    j->crop = crop;
    int64_t nch = lb_array_num_channels(a);
    size_t plen = nch > 0 ? (size_t)nch : 1;
    positive = PyMem_Calloc(plen, sizeof *positive);
    if (!positive) {
        PyErr_NoMemory();
        goto fail;
    }
    j->stats.positive = positive;
    j->stats.positive_len = plen;
    j->a = a;
    j->dest = dest;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);

    lock_shared(self);
    if (!self->arr) {
        unlock(self);
        closed_error();
        goto fail_sync;
    }
    pthread_t tid;
    int started = pthread_create(&tid, NULL, mat_thread, j) == 0;
    int stop = 0;
    if (!started) {
        Py_BEGIN_ALLOW_THREADS
        mat_thread(j);
        Py_END_ALLOW_THREADS
    }
    for (;;) {
        int64_t pd, pt;
        int fresh, finished;
        Py_BEGIN_ALLOW_THREADS
        finished = mat_wait(j, &pd, &pt, &fresh);
        Py_END_ALLOW_THREADS
        if (!stop && fresh && progress != Py_None) {
            PyObject *r = PyObject_CallFunction(progress, "LL", (long long)pd, (long long)pt);
            if (!r) {
                stop = 1;
                __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
            }
            Py_XDECREF(r);
        }
        if (finished) break;
        if (!stop && PyErr_CheckSignals() < 0) {
            stop = 1;
            __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
        }
    }
    if (started) {
        Py_BEGIN_ALLOW_THREADS
        pthread_join(tid, NULL);
        Py_END_ALLOW_THREADS
    }
    unlock(self);
    if (stop) goto fail_sync; /* the pending exception (Ctrl-C, progress) */
    if (j->rc) {
        python_words(&j->err);
        raise_lb(j->rc, &j->err);
        goto fail_sync;
    }
    result = stats_dict(&j->stats);
fail_sync:
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
fail:
    PyMem_Free(positive);
    PyMem_Free(j);
    return result;
}

/* ---- writing in parts: lb_write_begin / _attach / _blocks / _finish ----------
 * labelbin.materialize (python/labelbin/_dask.py) begins an output on the
 * caller and has Dask tasks attach to it and write ranges of blocks. A
 * WriteJob keeps its Array alive and holds the Array's lock shared while
 * it writes, so that close() waits for it; blocks() runs in the calling
 * thread with the GIL released (Dask's worker threads call it). */

typedef struct {
    PyObject_HEAD
    lb_write_job *job;
    ArrayObject *array;     /* owned reference */
    pthread_mutex_t mu;     /* one call at a time on the job */
    volatile int cancel;
    size_t nch;
} WriteJobObject;

static PyTypeObject WriteJobType;

static void WriteJob_dealloc(WriteJobObject *self) {
    lb_write_job_free(self->job);
    self->job = NULL;
    Py_XDECREF(self->array);
    pthread_mutex_destroy(&self->mu);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* _write_job(array, attach, dest, offset, shape, codec, chunks, overwrite,
 * resume, ome_ngff, provenance, format, shard, channel_chunks) */
static PyObject *mod_write_job(PyObject *m, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"array",  "attach",    "dest",      "offset", "shape",
                             "codec",  "chunks",    "overwrite", "resume", "ome_ngff",
                             "provenance", "format", "shard",   "channel_chunks", NULL};
    PyObject *array_o, *offset = Py_None, *shape = Py_None, *chunks_o = Py_None;
    PyObject *shard_o = Py_None;
    const char *dest, *codec = NULL, *prov = NULL, *format = NULL;
    int attach = 0, overwrite = 0, resume = 0, ome = 0, channel_chunks = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!ps|OOzOpppzzOi:_write_job", kwlist,
                                     &ArrayType, &array_o, &attach, &dest, &offset, &shape,
                                     &codec, &chunks_o, &overwrite, &resume, &ome, &prov,
                                     &format, &shard_o, &channel_chunks))
        return NULL;
    ArrayObject *array = (ArrayObject *)array_o;
    lb_array *a = get_arr(array);
    if (!a) return NULL;
    lb_roi roi;
    int64_t chunks[LB_MAX_DIMS], shard[LB_MAX_DIMS];
    lb_write_options opt;
    lb_write_options_init(&opt);
    opt.codec = codec;
    opt.overwrite = overwrite;
    opt.resume = resume;
    opt.ome_ngff = ome;
    opt.provenance_json = prov;
    opt.channel_chunks = channel_chunks;
    if (offset != Py_None || shape != Py_None) {
        if (offset == Py_None || shape == Py_None)
            return PyErr_Format(PyExc_ValueError, "give both the ROI offset and shape");
        if (parse_roi(offset, shape, &roi)) return NULL;
        opt.roi = &roi;
    }
    if (chunks_o != Py_None) {
        int n = int64_seq(chunks_o, chunks, LB_MAX_DIMS, "chunks");
        if (n < 0) return NULL;
        if (n != lb_array_dims(a))
            return PyErr_Format(PyExc_ValueError, "chunks needs %d entries (one per spatial "
                                "dimension), got %d", lb_array_dims(a), n);
        opt.chunks = chunks;
    }
    if (shard_o != Py_None) {
        int n = int64_seq(shard_o, shard, LB_MAX_DIMS, "shard");
        if (n < 0) return NULL;
        if (n != lb_array_dims(a))
            return PyErr_Format(PyExc_ValueError, "shard needs %d entries (one per spatial "
                                "dimension), got %d", lb_array_dims(a), n);
        opt.shard = shard;
    }
    if (format && strcmp(format, "zarr3") == 0)
        opt.format = LB_FORMAT_ZARR3;
    else if (format && strcmp(format, "zarr2") != 0)
        return PyErr_Format(PyExc_ValueError, "format must be \"zarr2\" or \"zarr3\", not \"%s\"",
                            format);

    WriteJobObject *self = PyObject_New(WriteJobObject, &WriteJobType);
    if (!self) return NULL;
    self->job = NULL;
    self->cancel = 0;
    Py_INCREF(array);
    self->array = array;
    pthread_mutex_init(&self->mu, NULL);
    int64_t nch = lb_array_num_channels(a);
    self->nch = nch > 0 ? (size_t)nch : 1;
    opt.cancel = &self->cancel;

    lb_error err = {0};
    int rc;
    lock_shared(array);
    if (!array->arr) {
        unlock(array);
        Py_DECREF(self);
        return closed_error();
    }
    Py_BEGIN_ALLOW_THREADS
    rc = attach ? lb_write_attach(a, dest, &opt, &self->job, &err)
                : lb_write_begin(a, dest, &opt, &self->job, &err);
    Py_END_ALLOW_THREADS
    unlock(array);
    if (rc) {
        Py_DECREF(self);
        python_words(&err);
        return raise_lb(rc, &err);
    }
    return (PyObject *)self;
}

static int job_ready(WriteJobObject *self) {
    if (self->job) return 1;
    PyErr_SetString(PyExc_ValueError, "the write job is closed");
    return 0;
}

static PyObject *WriteJob_blocks(WriteJobObject *self, PyObject *args) {
    long long first, count;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "LL|i:blocks", &first, &count, &threads)) return NULL;
    if (!job_ready(self)) return NULL;
    int64_t *positive = PyMem_Calloc(self->nch, sizeof *positive);
    if (!positive) return PyErr_NoMemory();
    lb_write_stats st;
    memset(&st, 0, sizeof st);
    st.positive = positive;
    st.positive_len = self->nch;
    lb_error err = {0};
    int rc;
    lock_shared(self->array);
    if (!self->array->arr) {
        unlock(self->array);
        PyMem_Free(positive);
        return closed_error();
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->mu);
    rc = lb_write_blocks(self->job, (int64_t)first, (int64_t)count, threads, &st, &err);
    pthread_mutex_unlock(&self->mu);
    Py_END_ALLOW_THREADS
    unlock(self->array);
    PyObject *result = NULL;
    if (rc) {
        python_words(&err);
        raise_lb(rc, &err);
    } else {
        result = stats_dict(&st);
    }
    PyMem_Free(positive);
    return result;
}

static PyObject *WriteJob_finish(WriteJobObject *self, PyObject *unused) {
    (void)unused;
    if (!job_ready(self)) return NULL;
    lb_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->mu);
    rc = lb_write_finish(self->job, &err);
    pthread_mutex_unlock(&self->mu);
    Py_END_ALLOW_THREADS
    if (rc) {
        python_words(&err);
        return raise_lb(rc, &err);
    }
    Py_RETURN_NONE;
}

static PyObject *WriteJob_close(WriteJobObject *self, PyObject *unused) {
    (void)unused;
    lb_write_job *job = self->job;
    self->job = NULL;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->mu); /* after any call in another thread */
    pthread_mutex_unlock(&self->mu);
    lb_write_job_free(job);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *WriteJob_cancel(WriteJobObject *self, PyObject *unused) {
    (void)unused;
    __atomic_store_n(&self->cancel, 1, __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

static PyObject *WriteJob_get_block_count(WriteJobObject *self, void *c) {
    if (!job_ready(self)) return NULL;
    return PyLong_FromLongLong((long long)lb_write_block_count(self->job));
}

static PyMethodDef WriteJob_methods[] = {
    {"blocks", (PyCFunction)WriteJob_blocks, METH_VARARGS,
     "blocks(first, count, threads=1) -> stats dict: compute and write blocks\n"
     "[first, first+count) (GIL released)"},
    {"finish", (PyCFunction)WriteJob_finish, METH_NOARGS,
     "finish(): mark the output complete, once every block is written"},
    {"cancel", (PyCFunction)WriteJob_cancel, METH_NOARGS,
     "cancel(): make a blocks() call in another thread stop (LB_ECANCELED)"},
    {"close", (PyCFunction)WriteJob_close, METH_NOARGS, "close(): free the job now"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef WriteJob_getset[] = {
    {"block_count", (getter)WriteJob_get_block_count, NULL, "blocks of the output", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject WriteJobType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "labelbin._labelbin.WriteJob",
    .tp_basicsize = sizeof(WriteJobObject),
    .tp_dealloc = (destructor)WriteJob_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An output written in parts (lb_write_job); made by _write_job().",
    .tp_methods = WriteJob_methods,
    .tp_getset = WriteJob_getset,
};

/* ---- properties ------------------------------------------------------------ */

#define GETARR()                        \
    lb_array *a = get_arr(self);        \
    if (!a) return NULL

/* A list of the n strings get(a, 0..n-1). */
static PyObject *str_list(const lb_array *a, const char *(*get)(const lb_array *, int), int n) {
    PyObject *l = PyList_New(n);
    if (!l) return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *s = PyUnicode_FromString(get(a, i));
        if (!s) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, s);
    }
    return l;
}

static PyObject *Array_get_kind(ArrayObject *self, void *c) {
    GETARR();
    return PyUnicode_FromString(lb_array_kind(a));
}
static PyObject *Array_get_dims(ArrayObject *self, void *c) {
    GETARR();
    return PyLong_FromLong(lb_array_dims(a));
}
static PyObject *Array_get_ndim(ArrayObject *self, void *c) {
    GETARR();
    return PyLong_FromLong(lb_array_ndim(a));
}
static PyObject *Array_get_axes(ArrayObject *self, void *c) {
    GETARR();
    return str_list(a, lb_array_axis, lb_array_ndim(a));
}
static PyObject *Array_get_voxel_size(ArrayObject *self, void *c) {
    GETARR();
    return tuple_i64(lb_array_voxel_size(a), lb_array_dims(a));
}
static PyObject *Array_get_roi(ArrayObject *self, void *c) {
    GETARR();
    lb_roi r;
    lb_array_roi(a, &r);
    return Py_BuildValue("(NN)", tuple_i64(r.offset, r.ndim), tuple_i64(r.shape, r.ndim));
}
static PyObject *Array_get_shape(ArrayObject *self, void *c) {
    GETARR();
    return tuple_i64(lb_array_shape(a), lb_array_ndim(a));
}
static PyObject *Array_get_dtype(ArrayObject *self, void *c) {
    GETARR();
    return (PyObject *)PyArray_DescrFromType(npy_type(lb_array_dtype(a)));
}
static PyObject *Array_get_num_channels(ArrayObject *self, void *c) {
    GETARR();
    int64_t n = lb_array_num_channels(a);
    if (n < 0) Py_RETURN_NONE;
    return PyLong_FromLongLong((long long)n);
}
static PyObject *Array_get_channels(ArrayObject *self, void *c) {
    GETARR();
    int64_t n = lb_array_num_channels(a);
    if (n < 0) return PyList_New(0);
    PyObject *l = PyList_New((Py_ssize_t)n);
    if (!l) return NULL;
    for (int64_t i = 0; i < n; i++) {
        const char *name = lb_array_channel_name(a, i);
        PyObject *s = name ? PyUnicode_FromString(name) : PyUnicode_FromFormat("%lld",
                                                                               (long long)i);
        if (!s) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, s);
    }
    return l;
}
static PyObject *Array_get_writable(ArrayObject *self, void *c) {
    GETARR();
    return PyBool_FromLong(lb_array_writable(a));
}
static PyObject *Array_get_attrs_json(ArrayObject *self, void *c) {
    GETARR();
    return PyUnicode_FromString(lb_array_attrs_json(a));
}
static PyObject *str_or_none(const char *s) {
    if (!s) Py_RETURN_NONE;
    return PyUnicode_FromString(s);
}
static PyObject *Array_get_format(ArrayObject *self, void *c) {
    GETARR();
    return str_or_none(lb_array_format(a));
}
static PyObject *Array_get_chunks(ArrayObject *self, void *c) {
    GETARR();
    return tuple_i64(lb_array_chunks(a), lb_array_ndim(a));
}
static PyObject *Array_get_shards(ArrayObject *self, void *c) {
    GETARR();
    const int64_t *s = lb_array_shard_shape(a);
    if (!s) Py_RETURN_NONE;
    return tuple_i64(s, lb_array_ndim(a));
}
static PyObject *Array_get_codecs(ArrayObject *self, void *c) {
    GETARR();
    return str_or_none(lb_array_codec_description(a));
}
static PyObject *Array_io_stats(ArrayObject *self, PyObject *unused) {
    (void)unused;
    GETARR();
    lb_io_stats st;
    lb_array_io_stats(a, &st);
    return Py_BuildValue("{s:K,s:K}", "requests", (unsigned long long)st.requests, "bytes",
                         (unsigned long long)st.bytes);
}
static PyObject *Array_get_codec_json(ArrayObject *self, void *c) {
    GETARR();
    return str_or_none(lb_array_codec_json(a));
}
static PyObject *Array_get_path(ArrayObject *self, void *c) {
    GETARR();
    return str_or_none(lb_array_path(a));
}
static PyObject *Array_get_warnings(ArrayObject *self, void *c) {
    GETARR();
    return str_list(a, lb_array_warning, lb_array_warning_count(a));
}
static PyObject *Array_get_annotations(ArrayObject *self, void *c) {
    GETARR();
    switch (lb_array_annotations(a)) {
    case LB_ANNOTATIONS_NONE: return PyUnicode_FromString("none");
    case LB_ANNOTATIONS_BOOLEAN: return PyUnicode_FromString("boolean");
    case LB_ANNOTATIONS_STRING: return PyUnicode_FromString("string");
    case LB_ANNOTATIONS_INVALID: return PyUnicode_FromString("invalid");
    }
    return PyUnicode_FromString("unknown");
}
static PyObject *Array_get_closed(ArrayObject *self, void *c) {
    return PyBool_FromLong(self->arr == NULL);
}
static PyObject *Array_get_source_path(ArrayObject *self, void *c) {
    GETARR();
    const lb_array *s = a;
    while (s && !lb_array_path(s)) s = lb_array_source(s);
    return str_or_none(s ? lb_array_path(s) : NULL);
}
static PyObject *id_to_py(lb_id id) {
    if (id.negative) return PyLong_FromLongLong((long long)(int64_t)id.bits);
    return PyLong_FromUnsignedLongLong((unsigned long long)id.bits);
}
/* A list of n ids. */
static PyObject *id_list(const lb_id *ids, size_t n) {
    PyObject *l = PyList_New((Py_ssize_t)n);
    if (!l) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *v = id_to_py(ids[i]);
        if (!v) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, v);
    }
    return l;
}
/* Per channel, the ids that switched it off (lb_mask_off_ids). */
static PyObject *Array_get_mask_off_ids(ArrayObject *self, void *c) {
    GETARR();
    int64_t n = lb_array_num_channels(a);
    PyObject *l = PyList_New(n > 0 ? (Py_ssize_t)n : 0);
    if (!l) return NULL;
    for (int64_t i = 0; i < n; i++) {
        const lb_id *ids = NULL;
        size_t k = lb_mask_off_ids(a, i, &ids);
        PyObject *v = id_list(ids, k);
        if (!v) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, v);
    }
    return l;
}
static PyObject *Array_get_mask_unlisted_ids(ArrayObject *self, void *c) {
    GETARR();
    lb_id ids[LB_MASK_UNLISTED_MAX];
    size_t n = lb_mask_unlisted_ids(a, ids, LB_MASK_UNLISTED_MAX);
    return id_list(ids, n < LB_MASK_UNLISTED_MAX ? n : LB_MASK_UNLISTED_MAX);
}
static PyObject *Array_read_size(ArrayObject *self, PyObject *args) {
    PyObject *offset, *shape;
    if (!PyArg_ParseTuple(args, "OO:_read_size", &offset, &shape)) return NULL;
    GETARR();
    lb_roi roi;
    if (parse_roi(offset, shape, &roi)) return NULL;
    return PyLong_FromSize_t(lb_array_read_size(a, &roi));
}

/* ---- previews (lb_preview_*) ----------------------------------------------- */

/* The options of _preview / _save_preview, parsed with the GIL held. The
 * groupings and `labels` are kept until preview_args_free. */
typedef struct preview_args {
    lb_preview_options opt;
    lb_groupings *groups;
    lb_roi roi;
    int64_t at;
    ArrayObject *labels; /* borrowed from the call's arguments */
} preview_args;

static void preview_args_free(preview_args *p) { lb_groupings_free(p->groups); }

static int parse_preview_args(PyObject *kw, preview_args *p) {
    static char *names[] = {"axis", "at", "offset", "shape", "scale", "max_size", "grid",
                            "montage", "groups", "background", "mask", "labels", NULL};
    const char *axis = NULL, *groups = NULL;
    PyObject *at = Py_None, *offset = Py_None, *shape = Py_None, *bg = NULL,
             *labels = Py_None;
    long long scale = 0, max_size = 0, montage = 0;
    int grid = 0, mask = 0;
    PyObject *empty = PyTuple_New(0);
    if (!empty) return -1;
    int ok = PyArg_ParseTupleAndKeywords(empty, kw, "|zOOOLLpLzOpO:preview", names, &axis, &at,
                                         &offset, &shape, &scale, &max_size, &grid, &montage,
                                         &groups, &bg, &mask, &labels);
    Py_DECREF(empty);
    if (!ok) return -1;
    memset(p, 0, sizeof *p);
    lb_preview_options_init(&p->opt);
    lb_error err = {0};
    p->opt.axis = axis; /* lives as long as the kwargs dict */
    if (at != Py_None) {
        p->at = PyLong_AsLongLong(at);
        if (p->at == -1 && PyErr_Occurred()) return -1;
        p->opt.at = &p->at;
    }
    if (offset != Py_None || shape != Py_None) {
        if (offset == Py_None || shape == Py_None) {
            PyErr_SetString(PyExc_ValueError, "a preview ROI needs both offset and shape");
            return -1;
        }
        if (parse_roi(offset, shape, &p->roi)) return -1;
        p->opt.roi = &p->roi;
    }
    p->opt.scale = scale;
    p->opt.max_size = max_size;
    p->opt.grid = grid;
    p->opt.montage = montage;
    p->opt.mask = mask;
    if (bg && bg != Py_None) {
        PyObject *s = PyObject_Str(bg);
        if (!s) return -1;
        int rc = lb_id_parse(PyUnicode_AsUTF8(s), &p->opt.background, &err);
        Py_DECREF(s);
        if (rc) return raise_lb(rc, &err), -1;
    }
    if (groups) {
        int rc = lb_groupings_new(&p->groups, &err);
        if (!rc) rc = lb_groupings_add_json(p->groups, groups, &err);
        if (rc) {
            preview_args_free(p);
            return raise_lb(rc, &err), -1;
        }
        p->opt.groups = p->groups;
    }
    if (labels != Py_None) {
        if (!PyObject_TypeCheck(labels, &ArrayType)) {
            preview_args_free(p);
            PyErr_SetString(PyExc_TypeError, "labels must be a labelbin array");
            return -1;
        }
        p->labels = (ArrayObject *)labels;
        if (!get_arr(p->labels)) {
            preview_args_free(p);
            return -1;
        }
    }
    return 0;
}

/* Take the read locks of self (and of the labels, when another object);
 * the GIL is released. 0 when both arrays are still open. */
static int preview_lock(ArrayObject *self, ArrayObject *labels) {
    pthread_rwlock_rdlock(&self->lock);
    if (labels && labels != self) pthread_rwlock_rdlock(&labels->lock);
    return self->arr && (!labels || labels->arr) ? 0 : -1;
}

static void preview_unlock(ArrayObject *self, ArrayObject *labels) {
    if (labels && labels != self) pthread_rwlock_unlock(&labels->lock);
    pthread_rwlock_unlock(&self->lock);
}

static PyObject *Array_preview(ArrayObject *self, PyObject *args, PyObject *kw) {
    (void)args;
    lb_array *a = get_arr(self);
    if (!a) return NULL;
    preview_args p;
    if (parse_preview_args(kw, &p)) return NULL;
    lb_error err = {0};
    lb_preview_info info;
    /* Holding the GIL, the arrays cannot be closed under us. */
    if (p.labels) p.opt.labels = p.labels->arr;
    int rc = lb_preview_size(a, &p.opt, &info, &err);
    if (rc) {
        preview_args_free(&p);
        return raise_lb(rc, &err);
    }
    npy_intp dims[3] = {(npy_intp)info.height, (npy_intp)info.width, 3};
    PyObject *out = PyArray_SimpleNew(3, dims, NPY_UINT8);
    if (!out) {
        preview_args_free(&p);
        return NULL;
    }
    int closed = 0;
    Py_BEGIN_ALLOW_THREADS
    if (preview_lock(self, p.labels) == 0) {
        if (p.labels) p.opt.labels = p.labels->arr;
        rc = lb_preview_render(self->arr, &p.opt, PyArray_DATA((PyArrayObject *)out),
                               (size_t)PyArray_NBYTES((PyArrayObject *)out), &err);
    } else {
        closed = 1;
    }
    preview_unlock(self, p.labels);
    Py_END_ALLOW_THREADS
    preview_args_free(&p);
    if (closed || rc) {
        Py_DECREF(out);
        return closed ? closed_error() : raise_lb(rc, &err);
    }
    return out;
}

static PyObject *preview_info_dict(const lb_preview_info *i) {
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L,s:i,s:L,s:L,s:L,s:L}", "width",
                         (long long)i->width, "height", (long long)i->height, "panel_width",
                         (long long)i->panel_width, "panel_height", (long long)i->panel_height,
                         "panels", (long long)i->panels, "axis", i->axis, "sections",
                         (long long)i->sections, "first_at", (long long)i->first_at,
                         "last_at", (long long)i->last_at, "channels",
                         (long long)i->channels);
}

static PyObject *Array_preview_size(ArrayObject *self, PyObject *args, PyObject *kw) {
    (void)args;
    lb_array *a = get_arr(self);
    if (!a) return NULL;
    preview_args p;
    if (parse_preview_args(kw, &p)) return NULL;
    if (p.labels) p.opt.labels = p.labels->arr;
    lb_error err = {0};
    lb_preview_info info;
    int rc = lb_preview_size(a, &p.opt, &info, &err);
    preview_args_free(&p);
    if (rc) return raise_lb(rc, &err);
    return preview_info_dict(&info);
}

static PyObject *Array_save_preview(ArrayObject *self, PyObject *args, PyObject *kw) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s:save_preview", &path)) return NULL;
    if (!get_arr(self)) return NULL;
    preview_args p;
    if (parse_preview_args(kw, &p)) return NULL;
    lb_error err = {0};
    lb_preview_info info;
    int rc = 0, closed = 0;
    Py_BEGIN_ALLOW_THREADS
    if (preview_lock(self, p.labels) == 0) {
        if (p.labels) p.opt.labels = p.labels->arr;
        rc = lb_preview_write_png(self->arr, &p.opt, path, &info, &err);
    } else {
        closed = 1;
    }
    preview_unlock(self, p.labels);
    Py_END_ALLOW_THREADS
    preview_args_free(&p);
    if (closed) return closed_error();
    if (rc) return raise_lb(rc, &err);
    return preview_info_dict(&info);
}

static PyObject *mod_preview_colors(PyObject *m, PyObject *args) {
    PyObject *ids;
    long long groups = 0;
    if (!PyArg_ParseTuple(args, "OL:preview_colors", &ids, &groups)) return NULL;
    PyObject *fast = PySequence_Fast(ids, "expected a sequence of label ids");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *lab = PyList_New(n), *grp = PyList_New(groups > 0 ? (Py_ssize_t)groups : 0);
    if (!lab || !grp) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyObject_Str(PySequence_Fast_GET_ITEM(fast, i));
        if (!s) goto fail;
        lb_id id;
        lb_error err = {0};
        int rc = lb_id_parse(PyUnicode_AsUTF8(s), &id, &err);
        Py_DECREF(s);
        if (rc) {
            raise_lb(rc, &err);
            goto fail;
        }
        uint8_t c[3];
        lb_preview_label_color(id, c);
        PyList_SET_ITEM(lab, i, Py_BuildValue("(iii)", c[0], c[1], c[2]));
    }
    for (long long g = 0; g < groups; g++) {
        uint8_t c[3];
        lb_preview_group_color((size_t)g, c);
        PyList_SET_ITEM(grp, (Py_ssize_t)g, Py_BuildValue("(iii)", c[0], c[1], c[2]));
    }
    Py_DECREF(fast);
    return Py_BuildValue("(NN)", lab, grp);
fail:
    Py_DECREF(fast);
    Py_XDECREF(lab);
    Py_XDECREF(grp);
    return NULL;
}

static PyGetSetDef Array_getset[] = {
    {"_kind", (getter)Array_get_kind, NULL, "lb_array_kind", NULL},
    {"_dims", (getter)Array_get_dims, NULL, "spatial dimensions", NULL},
    {"_ndim", (getter)Array_get_ndim, NULL, "all dimensions", NULL},
    {"_axes", (getter)Array_get_axes, NULL, "axis names", NULL},
    {"_voxel_size", (getter)Array_get_voxel_size, NULL, "voxel size tuple", NULL},
    {"_roi", (getter)Array_get_roi, NULL, "(offset, shape) tuples", NULL},
    {"_shape", (getter)Array_get_shape, NULL, "shape in elements", NULL},
    {"_dtype", (getter)Array_get_dtype, NULL, "numpy dtype", NULL},
    {"_num_channels", (getter)Array_get_num_channels, NULL, "channels or None", NULL},
    {"_channels", (getter)Array_get_channels, NULL, "channel names", NULL},
    {"_writable", (getter)Array_get_writable, NULL, "writable", NULL},
    {"_attrs_json", (getter)Array_get_attrs_json, NULL, "attributes as JSON", NULL},
    {"_format", (getter)Array_get_format, NULL, "zarr2, n5 or None", NULL},
    {"_chunks", (getter)Array_get_chunks, NULL, "chunk shape or None", NULL},
    {"_codec_json", (getter)Array_get_codec_json, NULL, "codecs JSON", NULL},
    {"_shards", (getter)Array_get_shards, NULL, "shard shape or None", NULL},
    {"_codecs", (getter)Array_get_codecs, NULL, "codec chain in words", NULL},
    {"_path", (getter)Array_get_path, NULL, "dataset path or None", NULL},
    {"_source_path", (getter)Array_get_source_path, NULL, "stored dataset path", NULL},
    {"_warnings", (getter)Array_get_warnings, NULL, "metadata warnings", NULL},
    {"_annotations", (getter)Array_get_annotations, NULL, "annotation metadata kind", NULL},
    {"_mask_off_ids", (getter)Array_get_mask_off_ids, NULL,
     "per channel, the ids that switched a mask channel off", NULL},
    {"_mask_unlisted_ids", (getter)Array_get_mask_unlisted_ids, NULL,
     "ids > 0 met by reads that `labels` does not list as present", NULL},
    {"closed", (getter)Array_get_closed, NULL, "True once closed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Array_methods[] = {
    {"_open", (PyCFunction)(void (*)(void))Array_open, METH_VARARGS | METH_KEYWORDS,
     "_open(path, writable=False, axes=None): open a stored dataset"},
    {"_from_config", (PyCFunction)Array_from_config, METH_VARARGS,
     "_from_config(json, base_dir=None): build from a DaCapo config (JSON text)"},
    {"_create", (PyCFunction)(void (*)(void))Array_create, METH_VARARGS | METH_KEYWORDS,
     "_create(path, shape, chunks, ...): create a dataset and open it for writing"},
    {"close", (PyCFunction)Array_close, METH_NOARGS,
     "close(): free the array now (waits for reads in other threads)"},
    {"_read", (PyCFunction)Array_read, METH_VARARGS,
     "_read(offset, shape, out=None) -> ndarray (GIL released); out: an array of the\n"
     "read's shape and dtype (C-contiguous, writable) to read into and return"},
    {"io_stats", (PyCFunction)Array_io_stats, METH_NOARGS,
     "io_stats() -> {'requests', 'bytes'} read from the store since opening"},
    {"_read_size", (PyCFunction)Array_read_size, METH_VARARGS,
     "_read_size(offset, shape) -> bytes"},
    {"_write", (PyCFunction)Array_write, METH_VARARGS,
     "_write(offset, shape, buffer): write a C-contiguous buffer"},
    {"_data_read", (PyCFunction)Array_data_read, METH_VARARGS,
     "_data_read(start, count) -> ndarray (index space)"},
    {"_data_write", (PyCFunction)Array_data_write, METH_VARARGS,
     "_data_write(start, count, buffer)"},
    {"_set_label_cache", (PyCFunction)Array_set_label_cache, METH_VARARGS,
     "_set_label_cache(name or None, bytes): lb_array_set_label_cache"},
    {"_warm", (PyCFunction)Array_warm, METH_VARARGS,
     "_warm(offset or None, shape or None, threads): lb_array_warm"},
    {"cache_info", (PyCFunction)Array_cache_info, METH_NOARGS,
     "cache_info() -> dict: what the array's cache holds (kind, name, path,\n"
     "capacity, bytes, entries, declined (entries that only note a chunk\n"
     "too varied to compress, read as without a cache), raw_bytes,\n"
     "compression = raw_bytes / bytes,\n"
     "hits, misses, hit_rate, inserts, evictions, corrupt, stale (entries\n"
     "dropped because their chunk changed on disk); process_hits and\n"
     "process_misses count this array's lookups, the others every process's;\n"
     "for a label cache, memory_bytes: what its sparse file takes, and\n"
     "fs_free_bytes / fs_bytes: the room left in, and size of, /dev/shm)"},
    {"set_cache", (PyCFunction)Array_set_cache, METH_O,
     "set_cache(bytes): cache decoded chunks of the stored array; 0 turns the\n"
     "chunk cache off and leaves a label cache on (_set_label_cache(name, 0))"},
    {"set_threads", (PyCFunction)Array_set_threads, METH_O,
     "set_threads(n): decode the chunks of each read with up to n threads\n"
     "(1 = the calling thread only, the default; 0 = one per CPU)"},
    {"_materialize", (PyCFunction)(void (*)(void))Array_materialize,
     METH_VARARGS | METH_KEYWORDS, "_materialize(dest, ...) -> stats dict"},
    {"_preview", (PyCFunction)(void (*)(void))Array_preview, METH_VARARGS | METH_KEYWORDS,
     "_preview(**options) -> (height, width, 3) uint8 ndarray (GIL released)"},
    {"_preview_size", (PyCFunction)(void (*)(void))Array_preview_size,
     METH_VARARGS | METH_KEYWORDS, "_preview_size(**options) -> info dict (no reads)"},
    {"_save_preview", (PyCFunction)(void (*)(void))Array_save_preview,
     METH_VARARGS | METH_KEYWORDS, "_save_preview(path, **options) -> info dict"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ArrayType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "labelbin._labelbin.Array",
    .tp_basicsize = sizeof(ArrayObject),
    .tp_dealloc = (destructor)Array_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of labelbin's arrays: one lb_array (labelbin.h).",
    .tp_methods = Array_methods,
    .tp_getset = Array_getset,
    .tp_new = Array_new,
};

/* ---- module -------------------------------------------------------------- */

static PyObject *mod_version(PyObject *m, PyObject *unused) {
    return PyUnicode_FromString(lb_version());
}
static PyObject *mod_default_codec(PyObject *m, PyObject *unused) {
    return PyUnicode_FromString(lb_default_codec_json());
}
static PyObject *mod_strerror(PyObject *m, PyObject *arg) {
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(lb_strerror((int)code));
}

/* The library's log, on stderr: a C handler, since the library calls it
 * from worker threads that hold no GIL (Python is never called there).
 * Levels as LB_VERBOSE: -1 nothing, 0 warnings, 1 retries, 2 requests.
 * Lines read as the CLI's: "labelbin: warning: ..." (and "error: "), the
 * retries and requests without a word of level. */
static int log_level = 0;

static void log_line(void *user, int level, const char *message) {
    char line[4096];
    const char *what = level == LB_LOG_ERROR ? "error: " : level == LB_LOG_WARN ? "warning: " : "";
    int n = snprintf(line, sizeof line - 1, "labelbin: %s%s", what, message);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    for (size_t done = 0; done < (size_t)n;) {
        ssize_t w = write(STDERR_FILENO, line + done, (size_t)n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        done += (size_t)w;
    }
}

static void apply_log_level(int n) {
    log_level = n < -1 ? -1 : n > 2 ? 2 : n;
    lb_set_log_handler(log_line, NULL, log_level < 0 ? LB_LOG_OFF : LB_LOG_WARN + log_level);
}

static PyObject *mod_set_log_level(PyObject *m, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    int old = log_level;
    apply_log_level(n < -1 ? -1 : n > 2 ? 2 : (int)n); /* clamped before the cast */
    return PyLong_FromLong(old);
}

static PyObject *mod_get_log_level(PyObject *m, PyObject *unused) {
    return PyLong_FromLong(log_level);
}

/* LB_VERBOSE at import: 1 (or yes/true) retries, 2 or more every request. */
static int env_log_level(void) {
    const char *v = getenv("LB_VERBOSE");
    if (!v || !*v) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end == '\0') return n <= 0 ? 0 : n == 1 ? 1 : 2;
    return strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ? 0 : 1;
}

#define CLOSED_CODE 1 /* not an LB_E* code: an array was closed */

/* ---- CellMap crops: info, class tables, check, state counts --------------- */

/* A class table from CSV text (None: NULL, the built-in one). */
static int classes_arg(const char *text, Py_ssize_t len, const char *where, lb_classes **out) {
    *out = NULL;
    if (!text) return 0;
    lb_error err = {0};
    int rc = lb_classes_parse(text, (size_t)len, where ? where : "classes", out, &err);
    if (rc) {
        raise_lb(rc, &err);
        return -1;
    }
    return 0;
}

static PyObject *id_obj(lb_id id) {
    return id.negative ? PyLong_FromLongLong((long long)id.bits)
                       : PyLong_FromUnsignedLongLong(id.bits);
}

/* {"absent": n, ...} of the keys given (-1 = absent key); None for none. */
static PyObject *counts_obj(int64_t absent, int64_t unknown, int64_t present) {
    if (absent < 0 && unknown < 0 && present < 0) Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    const char *names[3] = {"absent", "unknown", "present"};
    int64_t v[3] = {absent, unknown, present};
    for (int k = 0; k < 3; k++) {
        if (v[k] < 0) continue;
        PyObject *n = PyLong_FromLongLong((long long)v[k]);
        if (!n || PyDict_SetItemString(d, names[k], n) < 0) {
            Py_XDECREF(n);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(n);
    }
    return d;
}

static PyObject *class_obj(const lb_crop *c, size_t i) {
    lb_crop_class_info k;
    if (lb_crop_class(c, i, &k, NULL)) return PyErr_Format(PyExc_IndexError, "no class %zu", i);
    PyObject *members = PyList_New((Py_ssize_t)k.n_members);
    PyObject *enc = PyDict_New();
    PyObject *levels = PyList_New(k.n_levels);
    PyObject *d = NULL;
    if (!members || !enc || !levels) goto fail;
    for (size_t m = 0; m < k.n_members; m++)
        PyList_SET_ITEM(members, (Py_ssize_t)m, PyLong_FromUnsignedLongLong(k.members[m]));
    const struct {
        int has;
        lb_id v;
        const char *name;
    } e[3] = {{k.has_absent, k.absent, "absent"},
              {k.has_present, k.present, "present"},
              {k.has_unknown, k.unknown, "unknown"}};
    for (int s = 0; s < 3; s++) {
        if (!e[s].has) continue;
        PyObject *v = id_obj(e[s].v);
        if (!v || PyDict_SetItemString(enc, e[s].name, v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(v);
    }
    for (int l = 0; l < k.n_levels; l++) {
        lb_crop_level_info lv;
        lb_crop_level(c, i, l, &lv, NULL);
        PyObject *cc = counts_obj(lv.absent, lv.unknown, lv.present);
        if (!cc) goto fail;
        PyObject *ld = Py_BuildValue("{s:s,s:N,s:N,s:N,s:N,s:s,s:N}", "path", lv.path,
                                     "voxel_size", tuple_i64(lv.voxel_size, lv.dims), "offset",
                                     tuple_i64(lv.roi.offset, lv.dims), "shape",
                                     tuple_i64(lv.shape, lv.dims), "chunks",
                                     tuple_i64(lv.chunks, lv.dims), "dtype",
                                     lb_dtype_name(lv.dtype), "complement_counts", cc);
        if (!ld) goto fail;
        PyList_SET_ITEM(levels, l, ld);
    }
    PyObject *id = k.has_id ? PyLong_FromUnsignedLongLong(k.id) : (Py_INCREF(Py_None), Py_None);
    d = Py_BuildValue("{s:s,s:N,s:N,s:s,s:N,s:N}", "name", k.name, "id", id, "members", members,
                      "type", k.instance ? "instance_segmentation" : "semantic_segmentation",
                      "encoding", enc, "levels", levels);
    return d;
fail:
    Py_XDECREF(members);
    Py_XDECREF(enc);
    Py_XDECREF(levels);
    return NULL;
}

static PyObject *mod_crop_info(PyObject *m, PyObject *args) {
    const char *path, *text = NULL, *where = NULL;
    Py_ssize_t len = 0;
    if (!PyArg_ParseTuple(args, "s|z#z:crop_info", &path, &text, &len, &where)) return NULL;
    lb_classes *classes = NULL;
    if (classes_arg(text, len, where, &classes)) return NULL;
    lb_crop *c = NULL;
    lb_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lb_crop_open(path, classes, &c, &err);
    Py_END_ALLOW_THREADS
    lb_classes_free(classes);
    if (rc) return raise_lb(rc, &err);
    PyObject *list = PyList_New((Py_ssize_t)lb_crop_class_count(c));
    PyObject *warn = PyList_New(lb_crop_warning_count(c));
    PyObject *out = NULL;
    if (!list || !warn) goto done;
    for (size_t i = 0; i < lb_crop_class_count(c); i++) {
        PyObject *k = class_obj(c, i);
        if (!k) goto done;
        PyList_SET_ITEM(list, (Py_ssize_t)i, k);
    }
    for (int i = 0; i < lb_crop_warning_count(c); i++) {
        PyObject *s = PyUnicode_FromString(lb_crop_warning(c, i));
        if (!s) goto done;
        PyList_SET_ITEM(warn, i, s);
    }
    out = Py_BuildValue("{s:s,s:s,s:s,s:s,s:z,s:O,s:O}", "path", lb_crop_path(c), "name",
                        lb_crop_name(c), "version", lb_crop_version(c), "class_table",
                        lb_classes_source(lb_crop_classes(c)), "all", lb_crop_all_path(c),
                        "classes", list, "warnings", warn);
done:
    Py_XDECREF(list);
    Py_XDECREF(warn);
    lb_crop_free(c);
    return out;
}

static PyObject *mod_classes(PyObject *m, PyObject *args) {
    const char *text = NULL, *where = NULL;
    Py_ssize_t len = 0;
    if (!PyArg_ParseTuple(args, "|z#z:classes", &text, &len, &where)) return NULL;
    lb_classes *c = NULL;
    lb_error err = {0};
    int rc = text ? lb_classes_parse(text, (size_t)len, where ? where : "classes", &c, &err)
                  : lb_classes_builtin(&c, &err);
    if (rc) return raise_lb(rc, &err);
    PyObject *list = PyList_New((Py_ssize_t)lb_classes_count(c));
    for (size_t i = 0; list && i < lb_classes_count(c); i++) {
        const uint64_t *mem;
        size_t n = lb_classes_members(c, i, &mem);
        PyObject *ml = PyList_New((Py_ssize_t)n);
        if (!ml) {
            Py_CLEAR(list);
            break;
        }
        for (size_t k = 0; k < n; k++)
            PyList_SET_ITEM(ml, (Py_ssize_t)k, PyLong_FromUnsignedLongLong(mem[k]));
        PyObject *row = Py_BuildValue("(sKN)", lb_classes_name(c, i),
                                      (unsigned long long)lb_classes_id(c, i), ml);
        if (!row) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, row);
    }
    lb_classes_free(c);
    return list;
}

static PyObject *mod_check(PyObject *m, PyObject *args) {
    const char *path, *text = NULL, *where = NULL;
    Py_ssize_t len = 0;
    int threads = 0;
    if (!PyArg_ParseTuple(args, "s|z#zi:check", &path, &text, &len, &where, &threads))
        return NULL;
    if (threads < 0) return PyErr_Format(PyExc_ValueError, "threads must be >= 0");
    lb_classes *classes = NULL;
    if (classes_arg(text, len, where, &classes)) return NULL;
    lb_check_report *r = NULL;
    lb_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lb_crop_check(path, classes, threads, &r, &err);
    Py_END_ALLOW_THREADS
    lb_classes_free(classes);
    if (rc) return raise_lb(rc, &err);
    PyObject *list = PyList_New((Py_ssize_t)lb_check_count(r));
    for (size_t i = 0; list && i < lb_check_count(r); i++) {
        const lb_check_finding *f = lb_check_get(r, i);
        PyObject *d = Py_BuildValue("{s:s,s:s,s:s,s:s}", "level",
                                    f->level == LB_CHECK_ERROR ? "error" : "warning", "code",
                                    f->code, "path", f->path, "message", f->message);
        if (!d) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    lb_check_report_free(r);
    return list;
}

/* count_states(target, mask or None, offset or None, shape or None, threads)
 * -> [(present, absent, unknown), ...] per channel. */
static PyObject *mod_count_states(PyObject *m, PyObject *args) {
    PyObject *to, *mo, *offset = Py_None, *shape = Py_None;
    int threads = 0;
    if (!PyArg_ParseTuple(args, "O!O|OOi:count_states", &ArrayType, &to, &mo, &offset, &shape,
                          &threads))
        return NULL;
    if (mo != Py_None && !PyObject_TypeCheck(mo, &ArrayType))
        return PyErr_Format(PyExc_TypeError, "the mask must be a labelbin array or None");
    if (threads < 0) return PyErr_Format(PyExc_ValueError, "threads must be >= 0");
    ArrayObject *t = (ArrayObject *)to, *k = mo == Py_None ? NULL : (ArrayObject *)mo;
    lb_roi roi;
    int have_roi = offset != Py_None || shape != Py_None;
    if (have_roi && (offset == Py_None || shape == Py_None))
        return PyErr_Format(PyExc_ValueError, "give both the ROI offset and shape");
    if (have_roi && parse_roi(offset, shape, &roi)) return NULL;
    if (!get_arr(t) || (k && !get_arr(k))) return NULL;
    int64_t nch = lb_array_num_channels(t->arr);
    size_t n = nch > 0 ? (size_t)nch : 1;
    lb_state_counts *out = PyMem_Calloc(n, sizeof *out);
    if (!out) return PyErr_NoMemory();
    lb_error err = {0};
    int rc;
    /* Hold both read locks without the GIL (lock order: target, mask). */
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&t->lock);
    if (k && k != t) pthread_rwlock_rdlock(&k->lock);
    if (!t->arr || (k && !k->arr))
        rc = CLOSED_CODE;
    else
        rc = lb_count_states(t->arr, k ? k->arr : NULL, have_roi ? &roi : NULL, threads, out, n,
                             NULL, &err);
    if (k && k != t) pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_unlock(&t->lock);
    Py_END_ALLOW_THREADS
    PyObject *list = NULL;
    if (rc == CLOSED_CODE) {
        closed_error();
    } else if (rc) {
        raise_lb(rc, &err);
    } else {
        list = PyList_New((Py_ssize_t)n);
        for (size_t i = 0; list && i < n; i++) {
            PyObject *row = Py_BuildValue("(KKK)", (unsigned long long)out[i].present,
                                          (unsigned long long)out[i].absent,
                                          (unsigned long long)out[i].unknown);
            if (!row) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)i, row);
        }
    }
    PyMem_Free(out);
    return list;
}

static PyObject *mod_crop_probe(PyObject *m, PyObject *arg) {
    const char *path = PyUnicode_AsUTF8(arg);
    if (!path) return NULL;
    return PyBool_FromLong(lb_crop_probe(path));
}

/* check_out for Python's own reads into `out` (the float32 reads of crop
 * targets): `out` must be an array like `like` in shape and dtype. */
static PyObject *mod_check_out(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *out, *like;
    if (!PyArg_ParseTuple(args, "OO!:_check_out", &out, &PyArray_Type, &like)) return NULL;
    PyArrayObject *l = (PyArrayObject *)like;
    return check_out(out, PyArray_NDIM(l), PyArray_DIMS(l), PyArray_TYPE(l));
}

static PyObject *mod_is_crop_array(PyObject *m, PyObject *arg) {
    if (!PyObject_TypeCheck(arg, &ArrayType))
        return PyErr_Format(PyExc_TypeError, "expected a labelbin array");
    ArrayObject *a = (ArrayObject *)arg;
    return PyBool_FromLong(a->arr && lb_array_is_crop(a->arr));
}

static PyMethodDef module_methods[] = {
    {"set_log_level", mod_set_log_level, METH_O,
     "set_log_level(n) -> previous: what labelbin prints on stderr. -1 nothing, 0 warnings "
     "(the default), 1 also each retry of a remote read, 2 also every HTTP request. "
     "LB_VERBOSE=1 or 2 at import sets it."},
    {"get_log_level", mod_get_log_level, METH_NOARGS, "The level set by set_log_level."},
    {"version", mod_version, METH_NOARGS, "The linked library's version string."},
    {"default_codec_json", mod_default_codec, METH_NOARGS,
     "The default output codec (Zarr v2 compressor JSON)."},
    {"strerror", mod_strerror, METH_O, "Static text for an LB_E* code."},
    {"crop_info", mod_crop_info, METH_VARARGS,
     "crop_info(path, classes_csv=None, where=None): the crop's metadata as a dict."},
    {"classes", mod_classes, METH_VARARGS,
     "classes(csv=None, where=None): [(name, id, [members])] of a class table."},
    {"check", mod_check, METH_VARARGS,
     "check(path, classes_csv=None, where=None, threads=0): lint findings as dicts."},
    {"count_states", mod_count_states, METH_VARARGS,
     "count_states(target, mask, offset, shape, threads): [(present, absent, unknown)]."},
    {"crop_probe", mod_crop_probe, METH_O, "True when the path is a CellMap crop group."},
    {"is_crop_array", mod_is_crop_array, METH_O, "True for an array over a crop."},
    {"_check_out", mod_check_out, METH_VARARGS,
     "_check_out(out, like) -> out: a read's out, checked as reads check it, against\n"
     "the shape and dtype of array `like` (ValueError / TypeError otherwise)"},
    {"cache_stats", (PyCFunction)(void (*)(void))mod_cache_stats, METH_VARARGS | METH_KEYWORDS,
     "cache_stats(name=None) -> dict: the shared label cache `name` (None: the\n"
     "per-user default, \"labelbin-cache-UID\") without opening an array: the keys\n"
     "of Array.cache_info() with kind \"label\", counted over every process that\n"
     "used the file; process_hits and process_misses are 0 (they count an array's\n"
     "own lookups). FileNotFoundError when there is no such cache,\n"
     "labelbin.FormatError when it is a labelbin cache of another version or\n"
     "damaged, FileExistsError when the file there is not a labelbin cache."},
    {"cache_remove", (PyCFunction)(void (*)(void))mod_cache_remove, METH_VARARGS | METH_KEYWORDS,
     "cache_remove(name=None): remove the shared label cache file /dev/shm/`name`\n"
     "(None: the per-user default) and the temporaries of processes killed while\n"
     "making it; processes that have it open keep their mapping.\n"
     "FileNotFoundError when there is none; FileExistsError, removing nothing,\n"
     "when the file there is not a labelbin cache."},
    {"preview_colors", mod_preview_colors, METH_VARARGS,
     "preview_colors(ids, n_groups) -> ([label rgb...], [group rgb...])"},
    {"_write_job", (PyCFunction)(void (*)(void))mod_write_job, METH_VARARGS | METH_KEYWORDS,
     "_write_job(array, attach, dest, ...) -> WriteJob (lb_write_begin / lb_write_attach)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "labelbin._labelbin",
    "labelbin's C core (labelbin.h) for Python; use the `labelbin` package.", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__labelbin(void) {
    import_array();
    if (PyType_Ready(&ArrayType) < 0) return NULL;
    if (PyType_Ready(&WriteJobType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    FormatError = PyErr_NewExceptionWithDoc(
        "labelbin.FormatError",
        "Corrupt, invalid or unsupported data or metadata (LB_EFORMAT, "
        "LB_EUNSUPPORTED, LB_ELIMIT).",
        NULL, NULL);
    if (!FormatError) goto fail;
    Py_INCREF(FormatError);
    if (PyModule_AddObject(m, "FormatError", FormatError) < 0) {
        Py_DECREF(FormatError);
        goto fail;
    }
    Py_INCREF(&ArrayType);
    if (PyModule_AddObject(m, "Array", (PyObject *)&ArrayType) < 0) {
        Py_DECREF(&ArrayType);
        goto fail;
    }
    Py_INCREF(&WriteJobType);
    if (PyModule_AddObject(m, "WriteJob", (PyObject *)&WriteJobType) < 0) {
        Py_DECREF(&WriteJobType);
        goto fail;
    }
    static const struct {
        const char *name;
        long value;
    } consts[] = {
        {"LB_EINVAL", LB_EINVAL},     {"LB_ENOMEM", LB_ENOMEM},
        {"LB_EIO", LB_EIO},           {"LB_EFORMAT", LB_EFORMAT},
        {"LB_EUNSUPPORTED", LB_EUNSUPPORTED}, {"LB_ENOTFOUND", LB_ENOTFOUND},
        {"LB_EEXIST", LB_EEXIST},     {"LB_EROI", LB_EROI},
        {"LB_ELIMIT", LB_ELIMIT},     {"LB_ECANCELED", LB_ECANCELED},
        {"LB_EVIRTUAL", LB_EVIRTUAL},
    };
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
        if (PyModule_AddIntConstant(m, consts[i].name, consts[i].value) < 0) goto fail;
    if (PyModule_AddStringConstant(m, "HEADER_VERSION", LB_VERSION_STRING) < 0) goto fail;
    /* The bounds of count arguments, for the Python layer's checks. */
    const struct {
        const char *name;
        unsigned long long value;
    } bounds[] = {{"_LABEL_CACHE_MAX", label_cache_max()},
                  {"_SIZE_MAX", SIZE_MAX},
                  {"_INT_MAX", INT_MAX}};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(bounds[i].value);
        if (!v || PyModule_AddObject(m, bounds[i].name, v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
    }
    apply_log_level(env_log_level());
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
