/* test_idx.c — IDX files (plain and gzip) against every case of the IDX
 * section of docs/file-formats.md, the data set built from them, and the
 * real Fashion-MNIST files when installed. */
#include "check.h"
#include "core/core.h"
#include <time.h>
#include <zlib.h>

#define FMNIST "/usr/share/datasets/fashion-mnist/"

/* An IDX image in buf: magic (00 00 type ndim), big-endian dims, data. */
static size_t idx_bytes(uint8_t *buf, uint8_t type, int ndim, const uint32_t *dims,
                        const void *data, size_t dlen) {
    buf[0] = buf[1] = 0;
    buf[2] = type;
    buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++) buf[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
    size_t h = 4 + 4 * (size_t)ndim;
    if (dlen) memcpy(buf + h, data, dlen);
    return h + dlen;
}

/* The same bytes gzip-compressed through zlib's gzwrite. */
static const char *write_gz(const char *name, const void *data, size_t n) {
    const char *p = chk_tmp(name);
    gzFile g = gzopen(p, "wb9");
    if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
        fprintf(stderr, "gzwrite %s failed\n", p);
        exit(2);
    }
    return p;
}

static wick_idx *T;
static wick_status rd(const char *path) {
    wick_idx_free(T);
    T = NULL;
    return wick_idx_read(path, &T);
}

static wick_dataset *D;
static wick_status ld(const char *im, const char *lb, int classes) {
    wick_dataset_free(D);
    D = NULL;
    return wick_dataset_load_idx(im, lb, classes, &D);
}

/* ---- good files ---------------------------------------------------------- */

/* gzip is told by its magic, not by the name: a plain file named .gz and a
 * gzip file named without it both read. */
static void test_u8_plain_and_gz(void) {
    uint8_t b[64], px[12];
    for (int i = 0; i < 12; i++) px[i] = (uint8_t)(i * 20);
    uint32_t dims[3] = {2, 3, 2};
    size_t n = idx_bytes(b, 0x08, 3, dims, px, 12);
    const char *paths[2] = {chk_write_file("plain.gz", b, n), write_gz("gzipped.idx", b, n)};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(rd(paths[k]));
        if (!T) continue;
        CHECK(T->type == 0x08 && T->ndim == 3 && T->count == 12);
        CHECK(T->dims[0] == 2 && T->dims[1] == 3 && T->dims[2] == 2);
        CHECK(memcmp(T->data, px, 12) == 0);
    }
}

/* Multi-byte elements are big-endian in the file, host order in memory. */
static void test_types_big_endian(void) {
    uint8_t b[64];
    uint32_t d2[1] = {2}, d1[1] = {1};
    /* i16: -2 = ff fe, 258 = 01 02 */
    CHECK_OK(rd(chk_write_file("i16", b, idx_bytes(b, 0x0B, 1, d2, "\xff\xfe\x01\x02", 4))));
    if (T) CHECK(((int16_t *)T->data)[0] == -2 && ((int16_t *)T->data)[1] == 258);
    /* i32: -70000 = ff fe ee 90, 0x01020304 */
    CHECK_OK(rd(chk_write_file("i32", b, idx_bytes(b, 0x0C, 1, d2, "\xff\xfe\xee\x90\x01\x02\x03\x04", 8))));
    if (T) CHECK(((int32_t *)T->data)[0] == -70000 && ((int32_t *)T->data)[1] == 0x01020304);
    /* f32: 1.5 = 3f c0 00 00, -2.25 = c0 10 00 00 (IEEE 754) */
    CHECK_OK(rd(chk_write_file("f32", b, idx_bytes(b, 0x0D, 1, d2, "\x3f\xc0\x00\x00\xc0\x10\x00\x00", 8))));
    if (T) CHECK(((float *)T->data)[0] == 1.5f && ((float *)T->data)[1] == -2.25f);
    /* f64: pi = 40 09 21 fb 54 44 2d 18 */
    CHECK_OK(rd(chk_write_file("f64", b, idx_bytes(b, 0x0E, 1, d1, "\x40\x09\x21\xfb\x54\x44\x2d\x18", 8))));
    if (T) CHECK(((double *)T->data)[0] == 3.141592653589793);
    /* i8 */
    CHECK_OK(rd(chk_write_file("i8", b, idx_bytes(b, 0x09, 1, d1, "\xfb", 1))));
    if (T) CHECK(((int8_t *)T->data)[0] == -5);
}

/* ---- refusals --------------------------------------------------------- */

static void test_fewer_than_4_bytes(void) {
    for (size_t n = 0; n < 4; n++)
        CHECK_FAILS(rd(chk_write_file("tiny", "\0\0\x08", n)), WICK_EFORMAT, "shorter than the 4-byte IDX magic");
    CHECK_FAILS(rd(write_gz("tiny.gz", "\0\0\x08", 3)), WICK_EFORMAT, "3 decompressed bytes, shorter than the 4-byte");
    CHECK_FAILS(rd(chk_tmp("missing.idx")), WICK_EIO, "cannot open");
    CHECK_FAILS(rd(chk_tmp("")), WICK_EIO, "not a regular file");
}

static void test_magic_not_zero(void) {
    CHECK_FAILS(rd(chk_write_file("m1", "\x01\0\x08\x01\0\0\0\0", 8)), WICK_EFORMAT,
                "not an IDX file: magic 01 00 08 01");
    CHECK_FAILS(rd(chk_write_file("m2", "\0\x01\x08\x01\0\0\0\0", 8)), WICK_EFORMAT, "the first two bytes must be 0");
    CHECK_FAILS(rd(chk_write_file("m3", "P5\n28 28\n255\n", 13)), WICK_EFORMAT, "not an IDX file");
}

static void test_bad_type(void) {
    const uint8_t bad[] = {0x00, 0x07, 0x0A, 0x0F, 0xFF};
    for (size_t i = 0; i < sizeof bad; i++) {
        uint8_t b[8] = {0, 0, bad[i], 1, 0, 0, 0, 0};
        char want[64];
        snprintf(want, sizeof want, "bad IDX type byte 0x%02x at offset 2", bad[i]);
        CHECK_FAILS(rd(chk_write_file("type", b, 8)), WICK_EFORMAT, want);
    }
}

static void test_ndim(void) {
    CHECK_FAILS(rd(chk_write_file("d0", "\0\0\x08\0", 4)), WICK_EFORMAT, "0 dimensions at offset 3");
    uint8_t b[64] = {0, 0, 8, 9};
    CHECK_FAILS(rd(chk_write_file("d9", b, 4 + 36 + 1)), WICK_EFORMAT, "9 dimensions at offset 3 (1 to 8 supported)");
    b[3] = 255;
    CHECK_FAILS(rd(chk_write_file("d255", b, 64)), WICK_EFORMAT, "255 dimensions");
}

static void test_short_header(void) {
    uint8_t b[64];
    uint32_t dims[3] = {1, 1, 1};
    size_t n = idx_bytes(b, 0x08, 3, dims, "x", 1);
    CHECK_FAILS(rd(chk_write_file("sh", b, 12)), WICK_EFORMAT, "header is 12 bytes, shorter than the 16 a 3-dimensional");
    CHECK_FAILS(rd(write_gz("sh.gz", b, 13)), WICK_EFORMAT, "header is 13 decompressed bytes, shorter than the 16");
    CHECK_OK(rd(chk_write_file("sh-ok", b, n)));
}

static void test_size_overflow(void) {
    uint8_t b[64];
    uint32_t d8[8];
    for (int i = 0; i < 8; i++) d8[i] = 0xFFFFFFFFu;
    CHECK_FAILS(rd(chk_write_file("ovf8", b, idx_bytes(b, 0x08, 8, d8, NULL, 0))), WICK_EFORMAT,
                "dimensions overflow");
    /* count fits, bytes do not: 2^31 * 2^31 * 4 elements of 8 bytes */
    uint32_t d3[3] = {1u << 31, 1u << 31, 4};
    CHECK_FAILS(rd(chk_write_file("ovf3", b, idx_bytes(b, 0x0E, 3, d3, NULL, 0))), WICK_EFORMAT,
                "dimensions overflow");
    CHECK_FAILS(rd(write_gz("ovf3.gz", b, idx_bytes(b, 0x0E, 3, d3, NULL, 0))), WICK_EFORMAT,
                "dimensions overflow");
    /* no overflow but far more than the file holds: refused before allocating
     * (ASan would abort on a 2^64-ish malloc) */
    uint32_t d2[2] = {0xFFFFFFFFu, 0xFFFFFFFFu};
    CHECK_FAILS(rd(chk_write_file("huge", b, idx_bytes(b, 0x08, 2, d2, "x", 1))), WICK_EFORMAT,
                "data is 1 bytes, the header says 18446744065119617025 (shorter)");
    CHECK_FAILS(rd(write_gz("huge.gz", b, idx_bytes(b, 0x08, 2, d2, "x", 1))), WICK_EFORMAT,
                "compressed bytes can hold");
}

static void test_data_shorter_or_longer(void) {
    uint8_t b[64], px[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint32_t d5[1] = {5};
    size_t n = idx_bytes(b, 0x0B, 1, d5, px, 10);   /* 5 i16 = 10 bytes */
    CHECK_FAILS(rd(chk_write_file("short", b, n - 1)), WICK_EFORMAT, "data is 9 bytes, the header says 10 (shorter)");
    CHECK_FAILS(rd(write_gz("short.gz", b, n - 1)), WICK_EFORMAT, "data is 9 decompressed bytes, the header says 10 (shorter)");
    b[n] = 0;
    CHECK_FAILS(rd(chk_write_file("long", b, n + 1)), WICK_EFORMAT, "data is 11 bytes, the header says 10 (longer)");
    CHECK_FAILS(rd(write_gz("long.gz", b, n + 1)), WICK_EFORMAT, "longer than the 10 bytes the header says");
}

static void test_gz_truncated(void) {
    uint8_t b[4096];
    uint32_t d[1] = {4000};
    uint8_t px[4000];
    for (int i = 0; i < 4000; i++) px[i] = (uint8_t)(i * 7 + i / 13);
    size_t n = idx_bytes(b, 0x08, 1, d, px, 4000);
    const char *p = write_gz("full.gz", b, n);
    size_t gn = 0;
    uint8_t *g = chk_read_file(p, &gn);
    CHECK_OK(rd(p));
    /* cut inside the trailer (CRC32 + length), then inside the deflate data */
    CHECK_FAILS(rd(chk_write_file("cut1.gz", g, gn - 3)), WICK_EFORMAT, "truncated");
    CHECK_FAILS(rd(chk_write_file("cut2.gz", g, gn - 8)), WICK_EFORMAT, "truncated");
    CHECK_FAILS(rd(chk_write_file("cut3.gz", g, gn / 2)), WICK_EFORMAT, "truncated");
    CHECK_FAILS(rd(chk_write_file("cut4.gz", g, 12)), WICK_EFORMAT, "");
    /* a corrupted CRC: zlib's "incorrect data check" */
    g[gn - 6] ^= 0x55;
    CHECK_FAILS(rd(chk_write_file("crc.gz", g, gn)), WICK_EFORMAT, "corrupt gzip stream");
    g[gn - 6] ^= 0x55;
    /* corrupt deflate data */
    for (size_t i = 20; i < gn - 8; i += 3) g[i] ^= 0xA5;
    CHECK_FAILS(rd(chk_write_file("bad.gz", g, gn)), WICK_EFORMAT, "");
    free(g);
}

/* A gzip bomb: a header promising 16 bytes over 64 MiB of zeros.  Refused as
 * longer than the header says, having inflated only 17 bytes: fast. */
static void test_gz_bomb(void) {
    uint8_t h[8];
    uint32_t d[1] = {16};
    idx_bytes(h, 0x08, 1, d, NULL, 0);
    const char *p = chk_tmp("bomb.gz");
    gzFile g = gzopen(p, "wb9");
    static const uint8_t zero[1 << 16];
    CHECK(g && gzwrite(g, h, 8) == 8);
    for (int i = 0; i < 1024; i++) gzwrite(g, zero, sizeof zero);   /* 64 MiB */
    CHECK(gzclose(g) == Z_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_FAILS(rd(p), WICK_EFORMAT, "longer than the 16 bytes the header says");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    /* inflating all 64 MiB takes ~165 ms here (measured with a gzread loop);
     * stopping after 17 bytes takes well under a millisecond */
    CHECK(dt < 0.05);
}

/* A dimension of 0: the file is valid (0 elements), the data set is not. */
static void test_zero_dimension(void) {
    uint8_t b[64];
    uint32_t d0[3] = {0, 28, 28};
    const char *im = chk_write_file("im0", b, idx_bytes(b, 0x08, 3, d0, NULL, 0));
    CHECK_OK(rd(im));
    CHECK(T && T->count == 0);
    uint32_t l0[1] = {0};
    const char *lb = chk_write_file("lb0", b, idx_bytes(b, 0x08, 1, l0, NULL, 0));
    CHECK_FAILS(ld(im, lb, 10), WICK_EFORMAT, "no samples");
    uint32_t d1[3] = {3, 0, 5};
    im = chk_write_file("im1", b, idx_bytes(b, 0x08, 3, d1, NULL, 0));
    uint32_t l3[1] = {3};
    lb = chk_write_file("lb3", b, idx_bytes(b, 0x08, 1, l3, "\0\1\2", 3));
    CHECK_FAILS(ld(im, lb, 10), WICK_EFORMAT, "samples have 0 values");
    CHECK_FAILS(ld(im, lb, 0), WICK_EFORMAT, "samples have 0 values");
}

/* ---- data set ----------------------------------------------------------- */

static void test_dataset(void) {
    uint8_t b[64], px[8] = {0, 255, 51, 102, 1, 2, 3, 4};
    uint32_t di[3] = {2, 2, 2}, dl[1] = {2};
    const char *im = chk_write_file("ds-im", b, idx_bytes(b, 0x08, 3, di, px, 8));
    const char *lb = write_gz("ds-lb", b, idx_bytes(b, 0x08, 1, dl, "\x03\x01", 2));
    CHECK_OK(ld(im, lb, 0));
    if (!D) return;
    CHECK(D->n == 2 && D->dim == 4 && D->classes == 4);   /* 1 + the largest label */
    CHECK(D->y[0] == 3 && D->y[1] == 1);
    CHECK(D->x[0] == 0.0f && D->x[1] == 1.0f && D->x[2] == 0.2f && D->x[3] == 0.4f);
    CHECK(D->x[7] == 4.0f / 255.0f);
    CHECK_OK(ld(im, lb, 10));
    CHECK(D && D->classes == 10);
    CHECK_FAILS(ld(im, lb, 3), WICK_EFORMAT, "label 3 of sample 0 is not below the class count 3");
    /* images and labels of different counts */
    uint32_t d3[1] = {3};
    const char *lb3 = chk_write_file("ds-lb3", b, idx_bytes(b, 0x08, 1, d3, "\0\0\0", 3));
    CHECK_FAILS(ld(im, lb3, 10), WICK_EFORMAT, "2 images but");
    CHECK_FAILS(ld(im, lb3, 10), WICK_EFORMAT, "has 3 labels");
    /* wrong types */
    const char *imf = chk_write_file("ds-imf", b, idx_bytes(b, 0x0D, 1, dl, "\0\0\0\0\0\0\0\0", 8));
    CHECK_FAILS(ld(imf, lb, 10), WICK_EFORMAT, "images are of IDX type 0x0d, expected u8");
    CHECK_FAILS(ld(im, im, 10), WICK_EFORMAT, "labels must be a 1-dimensional u8 IDX file");
    /* a failing file is named */
    CHECK_FAILS(ld(im, chk_tmp("nolabels"), 10), WICK_EIO, "nolabels: cannot open");
    CHECK(D == NULL);
}

/* ---- allocation failure --------------------------------------------------- */

static void test_alloc_failure(void) {
    uint8_t b[256], px[120];
    for (int i = 0; i < 120; i++) px[i] = (uint8_t)i;
    uint32_t di[2] = {4, 30}, dl[1] = {4};
    const char *im = write_gz("af-im.gz", b, idx_bytes(b, 0x08, 2, di, px, 120));
    const char *lb = chk_write_file("af-lb", b, idx_bytes(b, 0x08, 1, dl, "\0\1\2\1", 4));
    for (int which = 0; which < 2; which++) {
        int failures = 0;
        for (long n = 1; n < 100; n++) {
            wick_idx *t = NULL;
            wick_dataset *d = NULL;
            wick_alloc_fail_at(n);
            wick_status s = which == 0 ? wick_idx_read(im, &t) : wick_dataset_load_idx(im, lb, 3, &d);
            wick_alloc_fail_at(0);
            if (s == WICK_OK) {
                CHECK(which == 0 ? t->count == 120 : (d->n == 4 && d->y[3] == 1));
                wick_idx_free(t);
                wick_dataset_free(d);
                break;
            }
            failures++;
            CHECK_FAILS(s, WICK_ENOMEM, "out of memory");
            CHECK(!t && !d);
        }
        CHECK(failures >= (which == 0 ? 2 : 6));
    }
}

/* ---- the real Fashion-MNIST ------------------------------------------------ */

/* Expected values computed independently with Python's gzip module over the
 * same files: t10k pixel sum 573469082 (mean 0.28684928), first labels
 * 9 2 1 1 6, 1000 images per class (the data set's documented balance);
 * train mean 0.28604060 (the widely used normalisation constant 0.2860),
 * 6000 per class. */
static void check_fmnist(const char *split, size_t n, double mean, const int *first) {
    char im[256], lb[256];
    snprintf(im, sizeof im, FMNIST "%s-images-idx3-ubyte.gz", split);
    snprintf(lb, sizeof lb, FMNIST "%s-labels-idx1-ubyte.gz", split);
    if (access(im, R_OK) || access(lb, R_OK)) SKIP("Fashion-MNIST not installed (dataset-fashion-mnist)");
    CHECK_OK(ld(im, lb, 10));
    if (!D) return;
    CHECK(D->n == n && D->dim == 784 && D->classes == 10);
    for (int i = 0; i < 5; i++) CHECK(D->y[i] == first[i]);
    size_t per[10] = {0};
    for (size_t i = 0; i < D->n; i++) per[D->y[i]]++;
    for (int c = 0; c < 10; c++) CHECK(per[c] == n / 10);
    double s = 0;
    for (size_t i = 0; i < D->n * D->dim; i++) s += D->x[i];
    CHECK_NEAR(s / (double)(D->n * D->dim), mean, 1e-7);
}

static void test_fashion_mnist_t10k(void) {
    const int first[5] = {9, 2, 1, 1, 6};
    check_fmnist("t10k", 10000, 0.28684928071228494, first);
    if (D) CHECK_NEAR(D->x[0 * 784 + 0], 0.0, 0);
}

static void test_fashion_mnist_train(void) {
    const int first[5] = {9, 0, 0, 3, 0};
    check_fmnist("train", 60000, 0.2860405969887955, first);
}

int main(void) {
    RUN(test_u8_plain_and_gz);
    RUN(test_types_big_endian);
    RUN(test_fewer_than_4_bytes);
    RUN(test_magic_not_zero);
    RUN(test_bad_type);
    RUN(test_ndim);
    RUN(test_short_header);
    RUN(test_size_overflow);
    RUN(test_data_shorter_or_longer);
    RUN(test_gz_truncated);
    RUN(test_gz_bomb);
    RUN(test_zero_dimension);
    RUN(test_dataset);
    RUN(test_alloc_failure);
    RUN(test_fashion_mnist_t10k);
    RUN(test_fashion_mnist_train);
    wick_idx_free(T);
    wick_dataset_free(D);
    return chk_finish();
}
