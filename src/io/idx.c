/* idx.c — IDX files (the MNIST format), plain or gzip-compressed, and the
 * labelled data set built from an images file and a labels file.
 *
 * IDX: bytes 0,1 are zero, byte 2 the element type, byte 3 the number of
 * dimensions d; then d big-endian u32 sizes; then the elements, big-endian,
 * C order.  Every case of the IDX section of docs/file-formats.md is
 * refused with a message naming the file.
 *
 * gzip is recognised by its magic bytes (1f 8b), not by the file name, and
 * read through zlib's gzread.  zlib hides two faults: a truncated stream is
 * a short read, not an error (gzerror/gzclose say Z_BUF_ERROR), and bytes
 * after the stream are ignored.  So the decompressed bytes are counted
 * against the header exactly, and we never inflate more than the header
 * implies plus one byte: a gzip bomb stops there.
 *
 * The file is opened once, without blocking, and checked to be a regular
 * file (src/io/path.c); stdio or zlib then read that same descriptor. */
#include "core/core.h"
#include <unistd.h>
#include "io/io.h"
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Deflate cannot compress better than 1032:1 (a 258-byte match costs at
 * least 2 bits): a header that promises more than this from the compressed
 * size is refused before allocating. */
#define GZ_MAX_RATIO 1032u

typedef struct {
    FILE *fp;               /* a plain file, or NULL */
    gzFile gz;              /* else a gzip stream */
    wick_status err;        /* set when src_read returns -1 */
} idx_src;

/* Reads up to n bytes; returns the count (short only at the end of the data)
 * or -1 after recording an error. */
static long long src_read(const char *path, idx_src *s, void *buf, size_t n) {
    size_t got = 0;
    if (s->fp) {
        got = fread(buf, 1, n, s->fp);
        if (got < n && ferror(s->fp)) {
            s->err = wick_fail(WICK_EIO, "%s: read error: %s", path, strerror(errno));
            return -1;
        }
        return (long long)got;
    }
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(s->gz, (char *)buf + got, (unsigned)want);
        int zerr;
        const char *msg = gzerror(s->gz, &zerr);
        if (r < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR)) {
            s->err = wick_fail(zerr == Z_MEM_ERROR ? WICK_ENOMEM : WICK_EFORMAT,
                      "%s: corrupt gzip stream after %zu decompressed bytes: %s", path, got,
                      msg ? msg : "?");
            return -1;
        }
        if (zerr == Z_BUF_ERROR) {
            s->err = wick_fail(WICK_EFORMAT, "%s: truncated gzip stream (ends after %zu decompressed bytes)",
                      path, got + (r > 0 ? (size_t)r : 0));
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long long)got;
}

static size_t type_size(uint8_t t) {
    switch (t) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    }
    return 0;
}

void wick_idx_free(wick_idx *t) {
    if (!t) return;
    wick_free(t->data);
    wick_free(t);
}

/* Big-endian elements to host order, in place. */
static void to_host(void *data, size_t count, size_t size) {
    uint8_t *p = data;
    if (size == 1) return;
    for (size_t i = 0; i < count; i++, p += size) {
        uint64_t v = 0;
        for (size_t k = 0; k < size; k++) v = v << 8 | p[k];
        if (size == 2) { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); }
        else if (size == 4) { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); }
        else memcpy(p, &v, 8);
    }
}

wick_status wick_idx_read(const char *path, wick_idx **out) {
    if (!path || !out) return wick_fail(WICK_EINVAL, "wick_idx_read: NULL argument");
    *out = NULL;
    idx_src src = {NULL, NULL, WICK_OK};
    wick_idx *t = NULL;
    wick_status s = WICK_OK;
    int fd;
    struct stat st;
    if ((s = wick_io_open_input(path, &fd, &st))) return s;
    uint64_t fsize = (uint64_t)st.st_size;
    uint8_t m[4];
    ssize_t nm;
    do nm = pread(fd, m, 2, 0); while (nm < 0 && errno == EINTR);
    if (nm < 0) {
        s = wick_fail(WICK_EIO, "%s: read error: %s", path, strerror(errno));
        close(fd);
        return s;
    }
    int gz = nm == 2 && m[0] == 0x1f && m[1] == 0x8b;
    /* pread left the offset at 0 for whichever reads on */
    if (gz) {
        src.gz = gzdopen(fd, "rb");
        if (!src.gz) {
            close(fd);   /* gzdopen does not close it on failure */
            return wick_fail(WICK_ENOMEM, "%s: out of memory opening the gzip stream", path);
        }
        gzbuffer(src.gz, 1 << 17);
    } else {
        src.fp = fdopen(fd, "rb");
        if (!src.fp) {
            s = wick_fail(errno == ENOMEM ? WICK_ENOMEM : WICK_EIO, "%s: cannot open: %s", path,
                          strerror(errno));
            close(fd);
            return s;
        }
    }
    const char *what = gz ? " decompressed" : "";

    long long r = src_read(path, &src, m, 4);
    if (r < 0) goto fail_keep;
    if (r < 4) {
        s = wick_fail(WICK_EFORMAT, "%s: %lld%s bytes, shorter than the 4-byte IDX magic", path, r, what);
        goto fail;
    }
    if (m[0] || m[1]) {
        s = wick_fail(WICK_EFORMAT, "%s: not an IDX file: magic %02x %02x %02x %02x (the first two bytes must be 0)",
                      path, m[0], m[1], m[2], m[3]);
        goto fail;
    }
    size_t esize = type_size(m[2]);
    if (!esize) {
        s = wick_fail(WICK_EFORMAT, "%s: bad IDX type byte 0x%02x at offset 2 (expected 08, 09, 0B, 0C, 0D or 0E)",
                      path, m[2]);
        goto fail;
    }
    int ndim = m[3];
    if (ndim == 0 || ndim > WICK_IDX_MAX_DIMS) {
        s = wick_fail(WICK_EFORMAT, "%s: %d dimensions at offset 3 (1 to %d supported)", path, ndim,
                      WICK_IDX_MAX_DIMS);
        goto fail;
    }
    uint8_t dh[4 * WICK_IDX_MAX_DIMS];
    r = src_read(path, &src, dh, 4 * (size_t)ndim);
    if (r < 0) goto fail_keep;
    if (r < 4 * ndim) {
        s = wick_fail(WICK_EFORMAT, "%s: header is %lld%s bytes, shorter than the %d a %d-dimensional IDX header needs",
                      path, 4 + r, what, 4 + 4 * ndim, ndim);
        goto fail;
    }
    t = wick_calloc(1, sizeof *t);
    if (!t) { s = wick_fail(WICK_ENOMEM, "%s: out of memory", path); goto fail; }
    t->type = m[2];
    t->ndim = ndim;
    size_t count = 1, bytes;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = (uint32_t)dh[4 * i] << 24 | (uint32_t)dh[4 * i + 1] << 16 |
                     (uint32_t)dh[4 * i + 2] << 8 | dh[4 * i + 3];
        overflow |= !wick_mul_size(count, t->dims[i], &count);
    }
    if (overflow || !wick_mul_size(count, esize, &bytes) || bytes > SIZE_MAX - 64) {
        s = wick_fail(WICK_EFORMAT, "%s: dimensions overflow the address space (%u x %u ...)", path,
                      t->dims[0], ndim > 1 ? t->dims[1] : 1);
        goto fail;
    }
    t->count = count;
    /* Before allocating: is the promised size possible for this file? */
    size_t hdr = 4 + 4 * (size_t)ndim;
    if (!gz && fsize != hdr + (uint64_t)bytes) {
        s = wick_fail(WICK_EFORMAT, "%s: data is %llu bytes, the header says %zu (%s)", path,
                      (unsigned long long)(fsize > hdr ? fsize - hdr : 0), bytes,
                      fsize < hdr + (uint64_t)bytes ? "shorter" : "longer");
        goto fail;
    }
    if (gz && fsize <= UINT64_MAX / GZ_MAX_RATIO && (uint64_t)bytes + hdr > fsize * GZ_MAX_RATIO) {
        s = wick_fail(WICK_EFORMAT, "%s: header promises %zu data bytes, more than %llu compressed bytes can hold",
                      path, bytes, (unsigned long long)fsize);
        goto fail;
    }
    t->data = wick_malloc(bytes);
    if (!t->data) {
        s = wick_fail(WICK_ENOMEM, "%s: out of memory for %zu bytes of data", path, bytes);
        goto fail;
    }
    r = src_read(path, &src, t->data, bytes);
    if (r < 0) goto fail_keep;
    if ((size_t)r < bytes) {
        s = wick_fail(WICK_EFORMAT, "%s: data is %lld%s bytes, the header says %zu (shorter)", path, r,
                      what, bytes);
        goto fail;
    }
    /* One byte more must be the end: data longer than the header says is
     * refused, and this read also makes zlib check the gzip trailer (CRC and
     * length) without inflating anything beyond it. */
    uint8_t extra;
    r = src_read(path, &src, &extra, 1);
    if (r < 0) goto fail_keep;
    if (r > 0) {
        s = wick_fail(WICK_EFORMAT, "%s: data is longer than the %zu bytes the header says", path, bytes);
        goto fail;
    }
    if (gz) {
        int rc = gzclose(src.gz);
        src.gz = NULL;
        if (rc != Z_OK) {
            s = wick_fail(rc == Z_BUF_ERROR ? WICK_EFORMAT : WICK_EIO, "%s: %s at the end of the gzip stream",
                          path, rc == Z_BUF_ERROR ? "truncated" : "error");
            goto fail;
        }
    } else {
        fclose(src.fp);
        src.fp = NULL;
    }
    to_host(t->data, count, esize);
    *out = t;
    return WICK_OK;

fail_keep:
    s = src.err;   /* src_read recorded the message */
fail:
    if (src.gz) gzclose(src.gz);
    if (src.fp) fclose(src.fp);
    wick_idx_free(t);
    return s;
}

/* ---------------------------------------------------------------------------
 * Data set
 * ------------------------------------------------------------------------- */

void wick_dataset_free(wick_dataset *d) {
    if (!d) return;
    wick_free(d->x);
    wick_free(d->y);
    wick_free(d);
}

wick_status wick_dataset_load_idx(const char *images, const char *labels, int classes,
                                  wick_dataset **out) {
    if (!images || !labels || !out) return wick_fail(WICK_EINVAL, "wick_dataset_load_idx: NULL argument");
    *out = NULL;
    wick_idx *im = NULL, *lb = NULL;
    wick_dataset *d = NULL;
    wick_status s;
    if ((s = wick_idx_read(images, &im))) return s;
    if ((s = wick_idx_read(labels, &lb))) goto done;
    if (im->type != 0x08) {
        s = wick_fail(WICK_EFORMAT, "%s: images are of IDX type 0x%02x, expected u8 (0x08)", images, im->type);
        goto done;
    }
    if (lb->type != 0x08 || lb->ndim != 1) {
        s = wick_fail(WICK_EFORMAT, "%s: labels must be a 1-dimensional u8 IDX file (type 0x%02x, %d dimensions)",
                      labels, lb->type, lb->ndim);
        goto done;
    }
    size_t n = im->dims[0], dim = 1;
    /* the per-sample size is the product of the trailing dims: no division
     * by a count that may be 0 */
    for (int i = 1; i < im->ndim; i++) dim *= im->dims[i];
    if (lb->dims[0] != n) {
        s = wick_fail(WICK_EFORMAT, "%s: %zu images but %s has %u labels", images, n, labels, lb->dims[0]);
        goto done;
    }
    if (n == 0) { s = wick_fail(WICK_EFORMAT, "%s: no samples", images); goto done; }
    if (dim == 0) { s = wick_fail(WICK_EFORMAT, "%s: samples have 0 values", images); goto done; }
    const uint8_t *ly = lb->data;
    int maxl = 0;
    for (size_t i = 0; i < n; i++) {
        if (classes > 0 && ly[i] >= classes) {
            s = wick_fail(WICK_EFORMAT, "%s: label %u of sample %zu is not below the class count %d",
                          labels, ly[i], i, classes);
            goto done;
        }
        if (ly[i] > maxl) maxl = ly[i];
    }
    d = wick_calloc(1, sizeof *d);
    if (!d) { s = wick_fail(WICK_ENOMEM, "%s: out of memory", images); goto done; }
    d->n = n;
    d->dim = dim;
    d->classes = classes > 0 ? classes : maxl + 1;
    size_t nx;
    if (!wick_mul_size(n, dim, &nx) || !wick_mul_size(nx, sizeof(float), &nx) ||
        !(d->x = wick_malloc(nx)) || !(d->y = wick_malloc(n * sizeof *d->y))) {
        s = wick_fail(WICK_ENOMEM, "%s: out of memory for %zu x %zu samples", images, n, dim);
        goto done;
    }
    const uint8_t *px = im->data;
    for (size_t i = 0; i < n * dim; i++) d->x[i] = px[i] / 255.0f;   /* as torchvision's ToTensor */
    for (size_t i = 0; i < n; i++) d->y[i] = ly[i];
    *out = d;
    d = NULL;
done:
    wick_dataset_free(d);
    wick_idx_free(im);
    wick_idx_free(lb);
    return s;
}

wick_status wick_dataset_load_idx_dir(const char *dir, const char *stem, int classes, wick_dataset **out) {
    /* MNIST-style names, compressed or not: <stem>-images-idx3-ubyte[.gz] */
    char img[4096], lab[4096];
    static const char *const sfx[2] = {".gz", ""};
    for (int k = 0; k < 2; k++) {
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte%s", dir, stem, sfx[k]);
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte%s", dir, stem, sfx[k]);
        if (access(img, R_OK) == 0) return wick_dataset_load_idx(img, lab, classes, out);
    }
    return wick_fail(WICK_EIO, "%s/%s-images-idx3-ubyte[.gz]: not found or not readable", dir, stem);
}
