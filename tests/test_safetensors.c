/* test_safetensors.c — the safetensors reader against every case of the
 * safetensors section of docs/file-formats.md, the writer's round trip,
 * atomicity and refusals, and allocation-failure injection. */
#include "check.h"
#include "core/core.h"
#include "io/io.h"
#include "lib/locale_de.h"
#include <dirent.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>

/* A file: 8-byte little-endian length of hdr, hdr, then data. */
static const char *st_file(const char *name, const char *hdr, const void *data, size_t dlen) {
    size_t hl = strlen(hdr);
    uint8_t *b = malloc(8 + hl + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    if (dlen && data) memcpy(b + 8 + hl, data, dlen);
    const char *p = chk_write_file(name, b, 8 + hl + dlen);
    free(b);
    return p;
}

/* A file whose length field says n whatever follows. */
static const char *st_raw(const char *name, uint64_t n, const char *rest, size_t rlen) {
    uint8_t b[64];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, rest, rlen);
    return chk_write_file(name, b, 8 + rlen);
}

static wick_st_file *F;
static wick_status rd(const char *path) {
    wick_st_free(F);
    F = NULL;
    return wick_st_read(path, &F);
}

static const uint8_t zeros[64];

/* ---- good files ------------------------------------------------------- */

static void test_roundtrip(void) {
    float a[6] = {1.5f, -2.25f, 3e-38f, 1e38f, 0.0f, -0.0f};
    double b[4] = {3.141592653589793, -1e300, 5e-324, 2.0};
    int64_t c[3] = {INT64_MIN, -1, INT64_MAX};
    float sc = 42.0f;
    float nanv[2] = {NAN, INFINITY};
    wick_st_tensor t[6] = {
        {"layer.0.weight", WICK_DT_F32, 2, {2, 3}, a},
        {"b", WICK_DT_F64, 1, {4}, b},
        {"steps", WICK_DT_I64, 1, {3}, c},
        {"scalar", WICK_DT_F32, 0, {0}, &sc},
        {"empty", WICK_DT_F32, 2, {2, 0}, NULL},
        {"nonfinite", WICK_DT_F32, 1, {2}, nanv},
    };
    const char *meta[] = {"arch", "mlp 784-100-10", "format", "pt"};
    const char *p = chk_tmp("rt.safetensors");
    CHECK_OK(wick_st_write(p, t, 6, meta, 2));
    CHECK_OK(rd(p));
    if (!F) return;
    CHECK(wick_st_count(F) == 6);
    /* offsets laid out in the caller's order, so offset order == caller order */
    for (int i = 0; i < 6; i++) {
        const wick_st_tensor *r = wick_st_get(F, i);
        CHECK(r && strcmp(r->name, t[i].name) == 0);
        if (!r) continue;
        CHECK(r->dtype == t[i].dtype && r->ndim == t[i].ndim);
        size_t bytes = wick_dtype_size(r->dtype);
        for (int d = 0; d < r->ndim; d++) {
            CHECK(r->shape[d] == t[i].shape[d]);
            bytes *= (size_t)r->shape[d];
        }
        if (bytes) CHECK(memcmp(r->data, t[i].data, bytes) == 0);
        CHECK(((uintptr_t)r->data % wick_dtype_size(r->dtype)) == 0);
        CHECK(wick_st_find(F, t[i].name) == r);
    }
    CHECK(wick_st_get(F, 6) == NULL && wick_st_get(F, -1) == NULL);
    CHECK(wick_st_find(F, "nope") == NULL);
    CHECK(strcmp(wick_st_meta(F, "arch"), "mlp 784-100-10") == 0);
    CHECK(strcmp(wick_st_meta(F, "format"), "pt") == 0);
    CHECK(wick_st_meta(F, "x") == NULL);
    /* Layout: data section 8-byte aligned, header padded with spaces,
     * __metadata__ first. */
    size_t n = 0;
    uint8_t *raw = chk_read_file(p, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    CHECK((8 + hl) % 8 == 0);
    CHECK(memcmp(raw + 8, "{\"__metadata__\":{\"arch\":", 24) == 0);
    CHECK(raw[8 + hl - 1] == '}' || raw[8 + hl - 1] == ' ');
    CHECK(n == 8 + hl + 24 + 32 + 24 + 4 + 0 + 8);
    free(raw);
    /* no temporary file left beside it */
    DIR *dir = opendir(chk_tmp(""));
    struct dirent *e;
    while (dir && (e = readdir(dir))) CHECK(!strstr(e->d_name, "tmp."));
    if (dir) closedir(dir);
}

/* Byte-exact against the format as the reference implementation writes a
 * single tensor: {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54
 * bytes, padded with 2 spaces so that the data starts at 8 + 56 = 64. */
static void test_reference_bytes(void) {
    float a[2] = {1.0f, 2.0f};
    wick_st_tensor t = {"a", WICK_DT_F32, 1, {2}, a};
    const char *p = chk_tmp("ref.safetensors");
    CHECK_OK(wick_st_write(p, &t, 1, NULL, 0));
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ";
    size_t n = 0;
    uint8_t *raw = chk_read_file(p, &n);
    CHECK(strlen(hdr) == 56 && n == 8 + 56 + 8);
    CHECK(raw[0] == 56 && memcmp(raw + 1, zeros, 7) == 0);
    CHECK(memcmp(raw + 8, hdr, 56) == 0);
    CHECK(memcmp(raw + 64, a, 8) == 0);
    free(raw);
}

static void test_accept_whitespace_zero_size_scalar_nan(void) {
    float d[3] = {NAN, INFINITY, 7.0f};
    CHECK_OK(rd(st_file("ws.st",
        " \n\t{\"z\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[0,0]},"
        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
        "\"n\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   \n", d, 12)));
    if (!F) return;
    CHECK(wick_st_count(F) == 3);
    /* offset order: z [0,0] then n [0,8] then s [8,12] */
    CHECK(strcmp(wick_st_get(F, 0)->name, "z") == 0);
    CHECK(strcmp(wick_st_get(F, 1)->name, "n") == 0);
    CHECK(strcmp(wick_st_get(F, 2)->name, "s") == 0);
    const wick_st_tensor *s = wick_st_find(F, "s");
    CHECK(s->ndim == 0 && *(const float *)s->data == 7.0f);
    const float *nv = wick_st_find(F, "n")->data;
    CHECK(isnan(nv[0]) && isinf(nv[1]));
}

static void test_accept_empty_and_metadata_only(void) {
    CHECK_OK(rd(st_file("empty.st", "{}", NULL, 0)));
    CHECK(F && wick_st_count(F) == 0);
    CHECK_OK(rd(st_file("metaonly.st", "{\"__metadata__\":{\"k\":\"v\"}}      ", NULL, 0)));
    CHECK(F && wick_st_count(F) == 0 && strcmp(wick_st_meta(F, "k"), "v") == 0);
}

/* get() follows offsets, not the JSON order. */
static void test_offset_order(void) {
    CHECK_OK(rd(st_file("order.st",
        "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "xy", 2)));
    if (!F) return;
    CHECK(strcmp(wick_st_get(F, 0)->name, "a") == 0 && *(const char *)wick_st_get(F, 0)->data == 'x');
    CHECK(strcmp(wick_st_get(F, 1)->name, "b") == 0 && *(const char *)wick_st_get(F, 1)->data == 'y');
}

/* ---- refusals: sizes ---------------------------------------------------- */

static void test_shorter_than_8(void) {
    for (size_t n = 0; n < 8; n++)
        CHECK_FAILS(rd(chk_write_file("short.st", zeros, n)), WICK_EFORMAT, "shorter than the 8-byte");
    CHECK_FAILS(rd(chk_tmp("does-not-exist.st")), WICK_EIO, "cannot open");
    CHECK_FAILS(rd(chk_tmp("")), WICK_EIO, "not a regular file");
}

static void test_header_too_long(void) {
    CHECK_FAILS(rd(st_raw("big.st", 100000001, "{}", 2)), WICK_EFORMAT, "exceeds the limit of 100000000");
    CHECK_FAILS(rd(st_raw("big2.st", UINT64_MAX, "{}", 2)), WICK_EFORMAT, "exceeds the limit");
}

static void test_header_past_eof(void) {
    CHECK_FAILS(rd(st_raw("past.st", 100, "{}", 2)), WICK_EFORMAT, "header length 100 runs past the end");
    CHECK_FAILS(rd(st_raw("past1.st", 3, "{}", 2)), WICK_EFORMAT, "runs past the end of the file (10 bytes)");
    /* N + 8 overflowing 64 bits: refused by the limit before any addition */
    CHECK_FAILS(rd(st_raw("ovf.st", UINT64_MAX - 7, "{}", 2)), WICK_EFORMAT, "exceeds the limit");
}

/* ---- refusals: the JSON ------------------------------------------------- */

static void test_header_not_utf8(void) {
    CHECK_FAILS(rd(st_file("utf8.st", "{\"\xff\":{}}", NULL, 0)), WICK_EFORMAT, "not valid JSON");
    CHECK_FAILS(rd(st_file("utf8b.st", "{\"__metadata__\":{\"a\":\"\xc3\x28\"}}", NULL, 0)),
                WICK_EFORMAT, "not valid JSON");
    CHECK_FAILS(rd(st_file("utf8c.st", "\xef\xbb\xbf{}", NULL, 0)), WICK_EFORMAT, "not valid JSON");
}

static void test_header_not_json(void) {
    CHECK_FAILS(rd(st_file("json.st", "{\"a\":", NULL, 0)), WICK_EFORMAT, "not valid JSON");
    CHECK_FAILS(rd(st_file("json2.st", "{} {}", NULL, 0)), WICK_EFORMAT, "not valid JSON");
    CHECK_FAILS(rd(st_file("json3.st", "", NULL, 0)), WICK_EFORMAT, "not valid JSON");
    CHECK_FAILS(rd(st_file("json4.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],}}", NULL, 0)),
                WICK_EFORMAT, "not valid JSON");
}

static void test_top_level_not_object(void) {
    CHECK_FAILS(rd(st_file("top.st", "[1,2]", NULL, 0)), WICK_EFORMAT, "top level is not a JSON object");
    CHECK_FAILS(rd(st_file("top2.st", "\"x\"", NULL, 0)), WICK_EFORMAT, "top level is not a JSON object");
}

static void test_nul_padding(void) {
    const char h[] = "{}\0\0\0\0\0\0";
    CHECK_FAILS(rd(st_raw("nul.st", 8, h, 8)), WICK_EFORMAT, "NUL byte in the JSON header at file offset 10");
    CHECK_FAILS(rd(st_raw("nul2.st", 12, "{\"a\\u0000\":1}", 12)), WICK_EFORMAT, "not valid JSON");
}

static void test_duplicate_name(void) {
    CHECK_FAILS(rd(st_file("dup.st",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", "xy", 2)),
        WICK_EFORMAT, "duplicate");
}

static void test_metadata_not_string(void) {
    CHECK_FAILS(rd(st_file("meta.st", "{\"__metadata__\":{\"a\":1}}", NULL, 0)), WICK_EFORMAT,
                "__metadata__ value of 'a' is not a string");
    CHECK_FAILS(rd(st_file("meta2.st", "{\"__metadata__\":{\"a\":null}}", NULL, 0)), WICK_EFORMAT,
                "not a string");
    CHECK_FAILS(rd(st_file("meta3.st", "{\"__metadata__\":\"x\"}", NULL, 0)), WICK_EFORMAT,
                "__metadata__ is not a JSON object");
}

static void test_missing_field(void) {
    CHECK_FAILS(rd(st_file("mf1.st", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "tensor 't': missing field 'dtype'");
    CHECK_FAILS(rd(st_file("mf2.st", "{\"t\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "tensor 't': missing field 'shape'");
    CHECK_FAILS(rd(st_file("mf3.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}", "x", 1)),
                WICK_EFORMAT, "tensor 't': missing field 'data_offsets'");
    CHECK_FAILS(rd(st_file("mf4.st", "{\"t\":5}", NULL, 0)), WICK_EFORMAT, "entry is not a JSON object");
    CHECK_FAILS(rd(st_file("mf5.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", "x", 1)),
                WICK_EFORMAT, "data_offsets is not an array of 2");
    CHECK_FAILS(rd(st_file("mf6.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "shape is not an array");
}

static void test_unknown_dtype(void) {
    CHECK_FAILS(rd(st_file("dt.st", "{\"t\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd", 4)),
                WICK_EFORMAT, "tensor 't': unknown dtype 'F33'");
    CHECK_FAILS(rd(st_file("dt2.st", "{\"t\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd", 4)),
                WICK_EUNSUPPORTED, "dtype U32 is not supported");
    CHECK_FAILS(rd(st_file("dt3.st", "{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd", 4)),
                WICK_EFORMAT, "dtype is not a string");
}

static void test_bad_numbers(void) {
    CHECK_FAILS(rd(st_file("n1.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "shape entry -1 is negative");
    CHECK_FAILS(rd(st_file("n2.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "shape entry 1.5 is not an integer");
    CHECK_FAILS(rd(st_file("n3.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.0]}}", "x", 1)),
                WICK_EFORMAT, "data offset 1 is not an integer");
    CHECK_FAILS(rd(st_file("n4.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", "x", 1)),
                WICK_EFORMAT, "data offset -1 is negative");
    CHECK_FAILS(rd(st_file("n5.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "is not a number");
    /* beyond 64 bits: jansson refuses the number itself */
    CHECK_FAILS(rd(st_file("n6.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "too big integer");
    CHECK_FAILS(rd(st_file("n7.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", "x", 1)),
                WICK_EFORMAT, "too big integer");
    CHECK_FAILS(rd(st_file("n8.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EUNSUPPORTED, "9 dimensions");
}

static void test_end_before_begin(void) {
    CHECK_FAILS(rd(st_file("eb.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,1]}}", "xy", 2)),
                WICK_EFORMAT, "tensor 't': data offsets [2, 1] end before they begin");
}

static void test_not_starting_at_zero(void) {
    CHECK_FAILS(rd(st_file("s0.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", "xy", 2)),
                WICK_EFORMAT, "tensor 't': the first tensor's data starts at offset 1, not 0");
}

static void test_hole(void) {
    CHECK_FAILS(rd(st_file("hole.st",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", "xyz", 3)),
        WICK_EFORMAT, "tensor 'b': data starts at offset 2 but tensor 'a' ends at 1 (a hole)");
}

static void test_overlap(void) {
    /* the classic: ten tensors all at [0, 16] */
    char h[2048];
    size_t k = snprintf(h, sizeof h, "{");
    for (int i = 0; i < 10; i++)
        k += snprintf(h + k, sizeof h - k, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}",
                      i ? "," : "", i);
    snprintf(h + k, sizeof h - k, "}");
    CHECK_FAILS(rd(st_file("ovl.st", h, zeros, 16)), WICK_EFORMAT, "ends at 16 (overlap)");
    CHECK_FAILS(rd(st_file("ovl2.st",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", "xyz", 3)),
        WICK_EFORMAT, "tensor 'b': data starts at offset 1 but tensor 'a' ends at 2 (overlap)");
}

static void test_size_mismatch(void) {
    uint8_t d[100] = {0};
    CHECK_FAILS(rd(st_file("model.safetensors",
        "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[10,784],\"data_offsets\":[0,100]}}", d, 100)),
        WICK_EFORMAT,
        "model.safetensors: tensor '0.weight': data offsets [0, 100] hold 100 bytes, shape [10, 784] F32 needs 31360");
}

static void test_count_overflow(void) {
    /* the checklist's shape: each entry fits 64 bits but jansson's json_int_t
     * is signed, so 18446744073709551614 is refused as a number */
    CHECK_FAILS(rd(st_file("ov1.st", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,8]}}", zeros, 8)),
                WICK_EFORMAT, "too big integer");
    /* element count overflowing 64 bits from representable entries */
    CHECK_FAILS(rd(st_file("ov2.st", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,8]}}", zeros, 8)),
                WICK_EFORMAT, "tensor 't': shape [4294967296, 4294967296, 2] F32 has a size beyond 64 bits");
    /* element count fits, byte count (x4) does not: 2^62 * 4 = 2^64 */
    CHECK_FAILS(rd(st_file("ov3.st", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", zeros, 8)),
                WICK_EFORMAT, "has a size beyond 64 bits");
    /* a product that wraps around must not be taken modulo 2^64 */
    CHECK_FAILS(rd(st_file("ov4.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[9223372036854775807,2,2],\"data_offsets\":[0,0]}}", NULL, 0)),
                WICK_EFORMAT, "beyond 64 bits");
}

static void test_bytes_after_last_tensor(void) {
    CHECK_FAILS(rd(st_file("after.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "xyz", 3)),
                WICK_EFORMAT, "2 bytes after the last tensor");
    CHECK_FAILS(rd(st_file("after2.st", "{}", "x", 1)), WICK_EFORMAT, "1 bytes after the last tensor");
}

static void test_data_section_short(void) {
    CHECK_FAILS(rd(st_file("dshort.st", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", zeros, 7)),
                WICK_EFORMAT, "data section is 7 bytes, shorter than the 8 the offsets need");
}


/* ---- bounds on what a header can make wick allocate ------------------------ */

/* A header of n zero-size tensors at [0, 0], then tail (e.g. "}"). */
static char *many_tensors(int n, const char *tail) {
    char *h = malloc((size_t)n * 64 + strlen(tail) + 8);
    size_t k = (size_t)sprintf(h, "{");
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(h + k, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}",
                             i ? "," : "", i);
    strcpy(h + k, tail);
    return h;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* At most WICK_ST_MAX_TENSORS tensors and WICK_ST_MAX_META metadata entries
 * (65,536 each, far above any model): a header listing more is refused
 * before anything per tensor is allocated, and one far beyond the bound
 * before the JSON is even parsed (1.5 million tensors in 69 MB of header
 * had taken 16 s and 1.3 GB). */
static void test_too_many_tensors(void) {
    CHECK(WICK_ST_MAX_TENSORS == 65536 && WICK_ST_MAX_META == 65536);
    char *h = many_tensors(WICK_ST_MAX_TENSORS, "}");
    CHECK_OK(rd(st_file("max.st", h, NULL, 0)));
    CHECK(F && wick_st_count(F) == WICK_ST_MAX_TENSORS);
    free(h);
    h = many_tensors(WICK_ST_MAX_TENSORS + 1, "}");
    CHECK_FAILS(rd(st_file("max1.st", h, NULL, 0)), WICK_EFORMAT,
                "max1.st: 65537 tensors, more than the 65536 wick accepts");
    free(h);
    /* refused before parsing: the JSON after the entries is not even valid */
    h = many_tensors(300000, ",GARBAGE");
    double t0 = seconds();
    CHECK_FAILS(rd(st_file("many.st", h, NULL, 0)), WICK_EFORMAT,
                "many.st: the header has 300000 top-level entries, more than the 65536 tensors wick accepts");
    CHECK(seconds() - t0 < 5);
    free(h);
}

static void test_too_many_metadata(void) {
    int n = WICK_ST_MAX_META + 1;
    char *h = malloc((size_t)n * 16 + 64);
    size_t k = (size_t)sprintf(h, "{\"__metadata__\":{");
    for (int i = 0; i < n; i++) k += (size_t)sprintf(h + k, "%s\"k%d\":\"\"", i ? "," : "", i);
    strcpy(h + k, "}}");
    CHECK_FAILS(rd(st_file("meta-many.st", h, NULL, 0)), WICK_EFORMAT,
                "meta-many.st: __metadata__ has 65537 entries, more than the 65536 wick accepts");
    free(h);
}

/* One tensor with a shape of 3 million entries: refused before parsing by
 * the count of JSON values a valid header can hold. */
static void test_too_many_values(void) {
    size_t n = 3000000;
    char *h = malloc(2 * n + 128);
    size_t k = (size_t)sprintf(h, "{\"t\":{\"dtype\":\"U8\",\"data_offsets\":[0,0],\"shape\":[0");
    for (size_t i = 1; i < n; i++) { h[k++] = ','; h[k++] = '0'; }
    strcpy(h + k, ", GARBAGE");
    CHECK_FAILS(rd(st_file("values.st", h, NULL, 0)), WICK_EFORMAT,
                "values.st: the header holds about 3000011 JSON values, more than 65536 tensors");
    free(h);
}

/* The writer never writes a file the reader refuses. */
static void test_write_too_many_tensors(void) {
    int n = WICK_ST_MAX_TENSORS + 1;
    wick_st_tensor *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) t[i] = (wick_st_tensor){"same", WICK_DT_U8, 1, {0}, NULL};
    CHECK_FAILS(wick_st_write(chk_tmp("wmany.st"), t, n, NULL, 0), WICK_EINVAL,
                "65537 tensors, more than the 65536 a file may hold");
    const char *meta[2 * 65537];
    for (int i = 0; i < 2 * 65537; i++) meta[i] = "k";
    CHECK_FAILS(wick_st_write(chk_tmp("wmany.st"), t, 1, meta, 65537), WICK_EINVAL,
                "65537 metadata entries, more than the 65536 a file may hold");
    free(t);
}

/* ---- file-supplied text in messages ---------------------------------------- */

/* No C0 control, DEL, C1 control (UTF-8 C2 80..9F) or bidi override
 * (E2 80 AA..AE, E2 81 A6..A9) in the message. */
static int clean_message(void) {
    const unsigned char *s = (const unsigned char *)wick_last_error();
    for (; *s; s++) {
        if (*s < 0x20 || *s == 0x7f) return 0;
        if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) return 0;
        if (s[0] == 0xe2 && s[1] == 0x80 && s[2] >= 0xaa && s[2] <= 0xae) return 0;
        if (s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9) return 0;
    }
    return 1;
}

/* Tensor names, metadata keys and dtypes come from the file: escaped in
 * messages, so a crafted name cannot drive the user's terminal. */
static void test_names_escaped(void) {
    CHECK_FAILS(rd(st_file("esc1.st", "{\"\\u001b[2J\\u001b]0;owned\\u0007\":{\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "tensor '\\x1b[2J\\x1b]0;owned\\x07': missing field 'dtype'");
    CHECK(clean_message());
    CHECK_FAILS(rd(st_file("esc2.st", "{\"__metadata__\":{\"\\u001b[31mred\":1}}", NULL, 0)),
                WICK_EFORMAT, "__metadata__ value of '\\x1b[31mred' is not a string");
    CHECK(clean_message());
    CHECK_FAILS(rd(st_file("esc3.st", "{\"t\":{\"dtype\":\"\\u001b[5m\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "unknown dtype '\\x1b[5m'");
    CHECK(clean_message());
    /* C1 CSI (U+009B), a bidi override (U+202E), DEL */
    CHECK_FAILS(rd(st_file("esc4.st", "{\"a\\u009b31m\\u202eb\\u007f\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "tensor 'a\\u009b31m\\u202eb\\x7f': shape entry 1.5 is not an integer");
    CHECK(clean_message());
    /* a backslash is doubled: a name cannot pass for an escape */
    CHECK_FAILS(rd(st_file("esc5.st", "{\"x\\\\x1b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "tensor 'x\\\\x1b': data offsets [0, 1] hold 1 bytes");
    /* the tiling messages name two tensors */
    CHECK_FAILS(rd(st_file("esc6.st",
        "{\"\\u001bA\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
        "\"\\u001bB\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", "xyz", 3)),
        WICK_EFORMAT, "tensor '\\x1bB': data starts at offset 1 but tensor '\\x1bA' ends at 2 (overlap)");
    CHECK(clean_message());
    /* jansson quotes the offending token in its syntax errors */
    CHECK_FAILS(rd(st_file("esc7.st", "{\"a\":\x1b[2J}", NULL, 0)), WICK_EFORMAT, "not valid JSON");
    CHECK(clean_message());
    CHECK_FAILS(rd(st_file("esc8.st", "{\"a\":tru\x1b[2J}", NULL, 0)), WICK_EFORMAT, "not valid JSON");
    CHECK(clean_message());
    /* a long name is cut, with a mark */
    char h[2200];
    size_t k = (size_t)sprintf(h, "{\"");
    memset(h + k, 'n', 2000);
    k += 2000;
    strcpy(h + k, "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,2]}}");
    CHECK_FAILS(rd(st_file("esc9.st", h, "xy", 2)), WICK_EFORMAT, "nnn...': data offsets [0, 2] hold 2 bytes");
}

/* Numbers in messages use '.' whatever the caller's locale (a German user's
 * program calls setlocale(LC_ALL, "")). */
static void test_locale_messages(void) {
    if (!chk_locale_de()) SKIP("de_DE.UTF-8 not available (locales / localedef)");
    CHECK_FAILS(rd(st_file("loc.st", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", "x", 1)),
                WICK_EFORMAT, "shape entry 1.5 is not an integer");
    double d[2] = {0.5, 1.25};
    wick_st_tensor t = {"d", WICK_DT_F64, 1, {2}, d};
    const char *meta[] = {"lr", "0.5"};
    CHECK_OK(wick_st_write(chk_tmp("loc2.st"), &t, 1, meta, 1));
    CHECK_OK(rd(chk_tmp("loc2.st")));
    CHECK(F && strcmp(wick_st_meta(F, "lr"), "0.5") == 0);
    chk_locale_c();
}

/* ---- the writer ---------------------------------------------------------- */

static void test_write_refusals(void) {
    float a[2] = {1, 2};
    const char *p = chk_tmp("wr.safetensors");
    wick_st_tensor nul = {"w", WICK_DT_F32, 1, {2}, NULL};
    CHECK_FAILS(wick_st_write(p, &nul, 1, NULL, 0), WICK_EINVAL, "tensor 'w': data is NULL for 8 bytes");
    wick_st_tensor dup[2] = {{"w", WICK_DT_F32, 1, {2}, a}, {"w", WICK_DT_F32, 1, {2}, a}};
    CHECK_FAILS(wick_st_write(p, dup, 2, NULL, 0), WICK_EINVAL, "duplicate tensor name 'w'");
    wick_st_tensor bad = {"w", (wick_dtype)99, 1, {2}, a};
    CHECK_FAILS(wick_st_write(p, &bad, 1, NULL, 0), WICK_EINVAL, "tensor 'w': bad dtype 99");
    wick_st_tensor neg = {"w", WICK_DT_F32, 1, {-2}, a};
    CHECK_FAILS(wick_st_write(p, &neg, 1, NULL, 0), WICK_EINVAL, "negative dimension -2");
    wick_st_tensor md = {"__metadata__", WICK_DT_F32, 1, {2}, a};
    CHECK_FAILS(wick_st_write(p, &md, 1, NULL, 0), WICK_EINVAL, "may not be named __metadata__");
    wick_st_tensor u8 = {"\xff", WICK_DT_F32, 1, {2}, a};
    CHECK_FAILS(wick_st_write(p, &u8, 1, NULL, 0), WICK_EINVAL, "not valid UTF-8");
    wick_st_tensor big = {"w", WICK_DT_F32, 3, {1LL << 40, 1LL << 40, 1}, a};
    CHECK_FAILS(wick_st_write(p, &big, 1, NULL, 0), WICK_EINVAL, "size beyond 63 bits");
    wick_st_tensor ok = {"w", WICK_DT_F32, 1, {2}, a};
    const char *meta[] = {"k", "1", "k", "2"};
    CHECK_FAILS(wick_st_write(p, &ok, 1, meta, 2), WICK_EINVAL, "duplicate metadata key 'k'");
    /* a zero-size tensor may have NULL data */
    wick_st_tensor z = {"z", WICK_DT_F64, 2, {0, 5}, NULL};
    CHECK_OK(wick_st_write(p, &z, 1, NULL, 0));
    CHECK(access(p, F_OK) == 0);
}

static void test_write_bad_paths(void) {
    float a[2] = {1, 2};
    wick_st_tensor t = {"w", WICK_DT_F32, 1, {2}, a};
    /* the parent is a regular file */
    const char *file = chk_write_file("plainfile", "x", 1);
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", file);
    CHECK_FAILS(wick_st_write(p, &t, 1, NULL, 0), WICK_EIO, "cannot create the temporary file");
    CHECK_FAILS(wick_st_write(p, &t, 1, NULL, 0), WICK_EIO, "Not a directory");
    /* a missing directory */
    snprintf(p, sizeof p, "%s/model.safetensors", chk_tmp("no/such/dir"));
    CHECK_FAILS(wick_st_write(p, &t, 1, NULL, 0), WICK_EIO, "No such file or directory");
    /* a directory in place of the file */
    const char *d = chk_tmp("adir.safetensors");
    mkdir(d, 0755);
    CHECK_FAILS(wick_st_write(d, &t, 1, NULL, 0), WICK_EIO, "is a directory");
    struct stat st;
    CHECK(stat(d, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_FAILS(wick_st_write("", &t, 1, NULL, 0), WICK_EINVAL, "no path");
}

static int count_tmp_files(void) {
    int k = 0;
    DIR *dir = opendir(chk_tmp(""));
    struct dirent *e;
    while (dir && (e = readdir(dir))) k += strstr(e->d_name, "tmp.") != NULL;
    if (dir) closedir(dir);
    return k;
}

/* A save that fails mid-file (injected write failure, then allocation
 * failure) leaves the old file byte-identical and no temporary behind. */
static void test_write_atomic(void) {
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    const char *p = chk_tmp("atomic.safetensors");
    wick_st_tensor ta[2] = {{"x", WICK_DT_F32, 1, {4}, a}, {"y", WICK_DT_F32, 1, {4}, b}};
    CHECK_OK(wick_st_write(p, ta, 2, NULL, 0));
    size_t n0 = 0, n1 = 0;
    uint8_t *old = chk_read_file(p, &n0);
    wick_st_tensor tb[2] = {{"x", WICK_DT_F32, 1, {4}, b}, {"y", WICK_DT_F32, 1, {4}, a}};
    for (int w = 1; w <= 4; w++) {
        wick_io_fail_write_at(w);   /* 1: length, 2: header, 3: padding or data, ... */
        CHECK_FAILS(wick_st_write(p, tb, 2, NULL, 0), WICK_EIO, "No space left on device");
        wick_io_fail_write_at(0);
        uint8_t *now = chk_read_file(p, &n1);
        CHECK(n1 == n0 && memcmp(now, old, n0) == 0);
        free(now);
        CHECK(count_tmp_files() == 0);
    }
    /* and a successful write replaces it */
    CHECK_OK(wick_st_write(p, tb, 2, NULL, 0));
    CHECK_OK(rd(p));
    CHECK(F && memcmp(wick_st_find(F, "x")->data, b, 16) == 0);
    free(old);
}

/* SIGKILL at any moment of a save leaves the complete old or the complete
 * new file at the path (checklist, checkpoints 1): a child saves two
 * versions in turn until killed at a random time. */
static void test_write_killed(void) {
    size_t n = 1 << 20;
    float *one = malloc(n * sizeof *one), *two = malloc(n * sizeof *two);
    for (size_t i = 0; i < n; i++) { one[i] = 1; two[i] = 2; }
    const char *p = chk_tmp("killed.safetensors");
    wick_st_tensor t1 = {"w", WICK_DT_F32, 1, {(int64_t)n}, one}, t2 = {"w", WICK_DT_F32, 1, {(int64_t)n}, two};
    CHECK_OK(wick_st_write(p, &t1, 1, NULL, 0));
    for (int k = 0; k < 12; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int j = 0;; j++) wick_st_write(p, j % 2 ? &t1 : &t2, 1, NULL, 0);
        }
        usleep(2000 + (useconds_t)(wick_rand_uniform(7, 0, (uint64_t)k) * 30000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        CHECK_OK(rd(p));
        if (!F) continue;
        const float *w = wick_st_find(F, "w")->data;
        int v = (int)w[0];
        CHECK(v == 1 || v == 2);
        CHECK(memcmp(w, v == 1 ? one : two, n * sizeof *w) == 0);
    }
    /* the killed saves leave temporaries behind: readers never look at
     * them, and a later save removes them once they are old enough
     * (test_io_paths.c) */
    DIR *dir = opendir(chk_tmp(""));
    struct dirent *e;
    char tmpname[600];
    while (dir && (e = readdir(dir)))
        if (strstr(e->d_name, ".killed.safetensors.wick-tmp.")) {
            snprintf(tmpname, sizeof tmpname, "%s", chk_tmp(e->d_name));
            unlink(tmpname);
        }
    if (dir) closedir(dir);
    free(one);
    free(two);
}

/* ---- allocation failure ---------------------------------------------- */

static void test_alloc_failure_read(void) {
    double d[3] = {1, 2, 3};
    const char *meta[] = {"a", "b", "c", "d"};
    wick_st_tensor t[2] = {{"p", WICK_DT_F64, 1, {3}, d}, {"q", WICK_DT_F64, 1, {2}, d}};
    const char *p = chk_tmp("alloc.safetensors");
    CHECK_OK(wick_st_write(p, t, 2, meta, 2));
    int failures = 0;
    for (long n = 1; n < 1000; n++) {
        wick_st_file *f = NULL;
        wick_alloc_fail_at(n);
        wick_status s = wick_st_read(p, &f);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) {
            CHECK(wick_st_count(f) == 2 && strcmp(wick_st_meta(f, "c"), "d") == 0);
            wick_st_free(f);
            break;
        }
        failures++;
        CHECK_FAILS(s, WICK_ENOMEM, "");
        CHECK(f == NULL);
    }
    CHECK(failures >= 5);
}

static void test_alloc_failure_write(void) {
    double d[3] = {1, 2, 3};
    const char *meta[] = {"a", "b"};
    wick_st_tensor t[2] = {{"p", WICK_DT_F64, 1, {3}, d}, {"q", WICK_DT_F64, 1, {2}, d}};
    const char *p = chk_tmp("allocw.safetensors");
    CHECK_OK(wick_st_write(p, t, 1, NULL, 0));
    size_t n0 = 0, n1 = 0;
    uint8_t *old = chk_read_file(p, &n0);
    int failures = 0;
    for (long n = 1; n < 1000; n++) {
        wick_alloc_fail_at(n);
        wick_status s = wick_st_write(p, t, 2, meta, 1);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) break;
        failures++;
        CHECK_FAILS(s, WICK_ENOMEM, "");
        uint8_t *now = chk_read_file(p, &n1);
        CHECK(n1 == n0 && memcmp(now, old, n0) == 0);
        free(now);
    }
    CHECK(failures >= 2);   /* the paths; jansson's allocations are not injected */
    CHECK(count_tmp_files() == 0);
    CHECK_OK(rd(p));
    CHECK(F && wick_st_count(F) == 2);
    free(old);
}

static void test_read_mem(void) {
    const char *h = "{\"t\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    size_t hl = strlen(h);
    uint8_t b[128] = {(uint8_t)hl};
    memcpy(b + 8, h, hl);
    memcpy(b + 8 + hl, "ok", 2);
    wick_st_file *f;
    CHECK_OK(wick_st_read_mem("mem", b, 8 + hl + 2, &f));
    CHECK(f && memcmp(wick_st_get(f, 0)->data, "ok", 2) == 0);
    wick_st_free(f);
    CHECK_FAILS(wick_st_read_mem("mem", b, 8 + hl + 1, &f), WICK_EFORMAT, "mem: data section is 1 bytes");
}

int main(void) {
    RUN(test_roundtrip);
    RUN(test_reference_bytes);
    RUN(test_accept_whitespace_zero_size_scalar_nan);
    RUN(test_accept_empty_and_metadata_only);
    RUN(test_offset_order);
    RUN(test_shorter_than_8);
    RUN(test_header_too_long);
    RUN(test_header_past_eof);
    RUN(test_header_not_utf8);
    RUN(test_header_not_json);
    RUN(test_top_level_not_object);
    RUN(test_nul_padding);
    RUN(test_duplicate_name);
    RUN(test_metadata_not_string);
    RUN(test_missing_field);
    RUN(test_unknown_dtype);
    RUN(test_bad_numbers);
    RUN(test_end_before_begin);
    RUN(test_not_starting_at_zero);
    RUN(test_hole);
    RUN(test_overlap);
    RUN(test_size_mismatch);
    RUN(test_count_overflow);
    RUN(test_bytes_after_last_tensor);
    RUN(test_data_section_short);
    RUN(test_too_many_tensors);
    RUN(test_too_many_metadata);
    RUN(test_too_many_values);
    RUN(test_write_too_many_tensors);
    RUN(test_names_escaped);
    RUN(test_locale_messages);
    RUN(test_write_refusals);
    RUN(test_write_bad_paths);
    RUN(test_write_atomic);
    RUN(test_write_killed);
    RUN(test_alloc_failure_read);
    RUN(test_alloc_failure_write);
    RUN(test_read_mem);
    wick_st_free(F);
    return chk_finish();
}
