/* safetensors.c — the safetensors format (huggingface/safetensors): reader
 * and atomic writer.
 *
 * A file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON,
 * then the data section.  The JSON maps each tensor name to {"dtype",
 * "shape", "data_offsets": [begin, end]} (offsets relative to the data
 * section) and may hold "__metadata__": {string: string}.
 *
 * The reader trusts nothing: every case of the safetensors section of
 * docs/file-formats.md is refused with a one-line message naming the file
 * and the tensor, and nothing is allocated before the sizes it depends on
 * have been checked against the file's size.  JSON goes through jansson with
 * JSON_REJECT_DUPLICATES (jansson also validates UTF-8 and refuses NUL in
 * strings).  Tensor data is copied into a 64-byte aligned buffer, so a float
 * tensor can be read in place even when N is not a multiple of 8.
 *
 * What a header can make wick allocate is bounded: at most
 * WICK_ST_MAX_TENSORS tensors and WICK_ST_MAX_META metadata entries, checked
 * twice: roughly by a scan of the raw header that allocates nothing (so a
 * header listing millions of tensors is refused before jansson builds
 * them), exactly on the parsed object before any per-tensor allocation.
 * Names, metadata keys and dtypes from the file reach messages only through
 * wick_io_esc (src/io/text.c); messages print numbers in the C locale.
 * Opening and replacing files by name is src/io/path.c's. */
#include "core/core.h"
#include "io/io.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation's limit on the header length. */
#define ST_MAX_HEADER 100000000ull

/* Room for a file-supplied name in a message (escaped, cut with "..."). */
#define ST_NAME_CAP 160

/* A valid header holds at most 18 JSON values a tensor (8 dimensions) and 2
 * a metadata entry; this allows unknown fields of a few values besides. */
#define ST_MAX_VALUES (32ull * WICK_ST_MAX_TENSORS + 2ull * WICK_ST_MAX_META + 64)

/* ---------------------------------------------------------------------------
 * dtypes
 * ------------------------------------------------------------------------- */

/* dtypes of the format that wick has no use for: refused as unsupported
 * rather than malformed. */
static const char *const foreign_dtypes[] = {"U16", "U32", "U64", "F8_E5M2", "F8_E4M3",
                                             "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};

/* jansson's allocations are watched but not subject to wick_alloc_fail_at:
 * jansson 2.14 does not survive a failed allocation in its lexer (lex_save
 * drops strbuffer_append_byte's error and the string scan then writes past
 * its buffer: akheron/jansson#362, found here by fuzz/fuzz_safetensors.c with
 * allocation-failure injection, crash file in fuzz/corpus/safetensors/).
 * Nor does it always report a failed allocation as such (json_loadb may call
 * it a syntax error, json_dumps may drop a key), so we note every real
 * failure ourselves and treat any result obtained across one as out of
 * memory. */
static _Thread_local int json_alloc_failed;
static void *json_alloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) json_alloc_failed = 1;
    return p;
}
static void json_release(void *p) { free(p); }
static pthread_once_t json_once = PTHREAD_ONCE_INIT;
static void json_setup(void) { json_set_alloc_funcs(json_alloc, json_release); }

/* ---------------------------------------------------------------------------
 * Parsed file
 * ------------------------------------------------------------------------- */

struct wick_st_file {
    int n;                  /* tensors, in order of data offset */
    wick_st_tensor *t;
    char **names;           /* owned copies, names[i] == t[i].name */
    int nmeta;
    char **meta;            /* key, value, key, value, ... (owned) */
    void *data;             /* the data section, 64-byte aligned */
    uint64_t data_len;
};

void wick_st_free(wick_st_file *f) {
    if (!f) return;
    if (f->names)
        for (int i = 0; i < f->n; i++) wick_free(f->names[i]);
    if (f->meta)
        for (int i = 0; i < 2 * f->nmeta; i++) wick_free(f->meta[i]);
    wick_free(f->names);
    wick_free(f->meta);
    wick_free(f->t);
    wick_free(f->data);
    wick_free(f);
}

int wick_st_count(const wick_st_file *f) { return f ? f->n : 0; }

const wick_st_tensor *wick_st_get(const wick_st_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const wick_st_tensor *wick_st_find(const wick_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *wick_st_meta(const wick_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = wick_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* "[10, 784]" into buf (truncated with "..." when long). */
static const char *fmt_shape(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t k = 0;
    k += snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---------------------------------------------------------------------------
 * Header validation
 * ------------------------------------------------------------------------- */

typedef struct {
    uint64_t begin, end;
    int index;              /* position in the JSON object, for a stable sort */
} st_span;

static int span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* A non-negative JSON integer (json_int_t is 64-bit: larger numbers were
 * already refused by the parser as "too big integer"). */
static wick_status get_uint(const char *path, const char *tensor, const char *what, json_t *v,
                            uint64_t *out) {
    if (json_is_real(v))   /* %g: the caller holds the C locale */
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': %s %g is not an integer", path, tensor,
                         what, json_real_value(v));
    if (!json_is_integer(v))
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': %s is not a number", path, tensor, what);
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': %s %lld is negative", path, tensor, what,
                         (long long)x);
    *out = (uint64_t)x;
    return WICK_OK;
}

static wick_status parse_dtype(const char *path, const char *tensor, json_t *v, wick_dtype *out) {
    if (!json_is_string(v))
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': dtype is not a string", path, tensor);
    const char *s = json_string_value(v);
    for (int k = 0; k < WICK_DT_COUNT; k++)
        if (strcmp(s, wick_dtype_name((wick_dtype)k)) == 0) { *out = (wick_dtype)k; return WICK_OK; }
    for (size_t k = 0; k < WICK_ARRAY_LEN(foreign_dtypes); k++)
        if (strcmp(s, foreign_dtypes[k]) == 0)
            return wick_fail(WICK_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not supported by wick",
                             path, tensor, s);
    char es[48];
    return wick_fail(WICK_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", path, tensor,
                     wick_io_esc(es, sizeof es, s));
}

/* One tensor entry: fills t (name set by the caller) and its span; checks
 * that the offsets hold exactly elements x dtype size bytes.  name is the
 * escaped name, for messages. */
static wick_status parse_tensor(const char *path, const char *name, json_t *v, wick_st_tensor *t,
                                st_span *sp) {
    wick_status s;
    if (!json_is_object(v))
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    const char *missing = !dt ? "dtype" : !sh ? "shape" : !off ? "data_offsets" : NULL;
    if (missing)
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': missing field '%s'", path, name, missing);
    if ((s = parse_dtype(path, name, dt, &t->dtype))) return s;
    if (!json_is_array(sh))
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': shape is not an array", path, name);
    size_t nd = json_array_size(sh);
    if (nd > WICK_ST_MAX_DIMS)
        return wick_fail(WICK_EUNSUPPORTED, "%s: tensor '%s': shape has %zu dimensions, at most %d supported",
                         path, name, nd, WICK_ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t count = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if ((s = get_uint(path, name, "shape entry", json_array_get(sh, i), &d))) return s;
        t->shape[i] = (int64_t)d;
        overflow |= __builtin_mul_overflow(count, d, &count);
    }
    char shp[160];
    fmt_shape(shp, sizeof shp, t->shape, t->ndim);
    uint64_t need;
    if (overflow || __builtin_mul_overflow(count, (uint64_t)wick_dtype_size(t->dtype), &need))
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': shape %s %s has a size beyond 64 bits",
                         path, name, shp, wick_dtype_name(t->dtype));
    if (!json_is_array(off) || json_array_size(off) != 2)
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': data_offsets is not an array of 2 numbers",
                         path, name);
    if ((s = get_uint(path, name, "data offset", json_array_get(off, 0), &sp->begin))) return s;
    if ((s = get_uint(path, name, "data offset", json_array_get(off, 1), &sp->end))) return s;
    if (sp->end < sp->begin)
        return wick_fail(WICK_EFORMAT, "%s: tensor '%s': data offsets [%llu, %llu] end before they begin",
                         path, name, (unsigned long long)sp->begin, (unsigned long long)sp->end);
    uint64_t have = sp->end - sp->begin;
    if (have != need)
        return wick_fail(WICK_EFORMAT,
                         "%s: tensor '%s': data offsets [%llu, %llu] hold %llu bytes, shape %s %s needs %llu",
                         path, name, (unsigned long long)sp->begin, (unsigned long long)sp->end,
                         (unsigned long long)have, shp, wick_dtype_name(t->dtype),
                         (unsigned long long)need);
    return WICK_OK;
}

static wick_status parse_meta(const char *path, json_t *m, wick_st_file *f) {
    if (!json_is_object(m))
        return wick_fail(WICK_EFORMAT, "%s: __metadata__ is not a JSON object", path);
    size_t nm = json_object_size(m);
    if (nm > WICK_ST_MAX_META)
        return wick_fail(WICK_EFORMAT, "%s: __metadata__ has %zu entries, more than the %d wick accepts",
                         path, nm, WICK_ST_MAX_META);
    f->meta = wick_calloc(2 * nm + 1, sizeof *f->meta);
    if (!f->meta) return wick_fail(WICK_ENOMEM, "%s: out of memory for __metadata__", path);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (!json_is_string(v)) {
            char ek[ST_NAME_CAP];
            return wick_fail(WICK_EFORMAT, "%s: __metadata__ value of '%s' is not a string", path,
                             wick_io_esc(ek, sizeof ek, key));
        }
        char *k = dup_str(key), *val = dup_str(json_string_value(v));
        if (!k || !val) {
            wick_free(k); wick_free(val);
            return wick_fail(WICK_ENOMEM, "%s: out of memory for __metadata__", path);
        }
        f->meta[2 * f->nmeta] = k;
        f->meta[2 * f->nmeta + 1] = val;
        f->nmeta++;
    }
    return WICK_OK;
}

/* Counts, without allocating, what jansson would build from the raw header:
 * the members of the top-level object (the tensors and __metadata__) and,
 * roughly, the JSON values (each but the first follows a ',', ':', '[' or
 * '{' outside a string).  A header far beyond the bounds is refused before
 * it is parsed; parse_header checks the exact counts after. */
static wick_status prescan(const char *path, const char *h, size_t n) {
    size_t top = 0, values = 0;
    long depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        switch (c) {
        case '"': in_str = 1; break;
        case '{': case '[': depth++; values++; break;
        case '}': case ']': depth--; break;
        case ':': values++; top += depth == 1; break;
        case ',': values++; break;
        }
    }
    if (top > (size_t)WICK_ST_MAX_TENSORS + 1)
        return wick_fail(WICK_EFORMAT, "%s: the header has %zu top-level entries, more than the %d tensors wick accepts",
                         path, top, WICK_ST_MAX_TENSORS);
    if (values > ST_MAX_VALUES)
        return wick_fail(WICK_EFORMAT, "%s: the header holds about %zu JSON values, more than %d tensors "
                         "and %d metadata entries can need", path, values, WICK_ST_MAX_TENSORS,
                         WICK_ST_MAX_META);
    return WICK_OK;
}

/* Validates header hdr[0..hlen) against a data section of data_len bytes and
 * builds f's tensor table (data pointers still relative: set by the caller). */
static wick_status parse_header(const char *path, const char *hdr, size_t hlen, uint64_t data_len,
                                wick_st_file *f, st_span **spans_out) {
    const char *nul = memchr(hdr, 0, hlen);
    if (nul)
        return wick_fail(WICK_EFORMAT, "%s: NUL byte in the JSON header at file offset %zu (pad with spaces)",
                         path, (size_t)(nul - hdr) + 8);
    wick_status s = prescan(path, hdr, hlen);
    if (s) return s;
    json_error_t err;
    /* JSON_DECODE_ANY: a top level that is not an object gets our message */
    json_alloc_failed = 0;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (json_alloc_failed) {
        json_decref(root);
        return wick_fail(WICK_ENOMEM, "%s: out of memory parsing the header", path);
    }
    if (!root) {
        /* jansson quotes the offending token: the file's bytes */
        char et[ST_NAME_CAP];
        return wick_fail(WICK_EFORMAT, "%s: header is not valid JSON: %s (header byte %d)", path,
                         wick_io_esc(et, sizeof et, err.text), err.position);
    }
    st_span *spans = NULL;
    if (!json_is_object(root)) {
        s = wick_fail(WICK_EFORMAT, "%s: header's top level is not a JSON object", path);
        goto done;
    }
    json_t *meta = json_object_get(root, "__metadata__");
    size_t total = json_object_size(root), nt = total - (meta != NULL);
    if (nt > WICK_ST_MAX_TENSORS) {
        s = wick_fail(WICK_EFORMAT, "%s: %zu tensors, more than the %d wick accepts", path, nt,
                      WICK_ST_MAX_TENSORS);
        goto done;
    }
    if (meta && (s = parse_meta(path, meta, f))) goto done;
    f->t = wick_calloc(nt + 1, sizeof *f->t);
    f->names = wick_calloc(nt + 1, sizeof *f->names);
    spans = wick_calloc(nt + 1, sizeof *spans);
    wick_st_tensor *tmp = wick_calloc(nt + 1, sizeof *tmp);
    if (!f->t || !f->names || !spans || !tmp) {
        wick_free(tmp);
        s = wick_fail(WICK_ENOMEM, "%s: out of memory for %zu tensors", path, nt);
        goto done;
    }
    /* First pass, in JSON order: each entry on its own. */
    const char *key;
    json_t *v;
    int k = 0;
    json_object_foreach(root, key, v) {
        if (v == meta) continue;
        tmp[k].name = key;
        spans[k].index = k;
        char en[ST_NAME_CAP];
        wick_io_esc(en, sizeof en, key);
        if ((s = parse_tensor(path, en, v, &tmp[k], &spans[k]))) { wick_free(tmp); goto done; }
        k++;
    }
    /* Second pass, in offset order: the tensors must tile [0, data_len)
     * exactly — no hole, no overlap (ten tensors all at [0, 16] is the
     * classic attack), nothing after the last one. */
    qsort(spans, nt, sizeof *spans, span_cmp);
    uint64_t at = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < nt; i++) {
        const char *nm = tmp[spans[i].index].name;
        if (spans[i].begin != at) {
            char en[ST_NAME_CAP], ep[ST_NAME_CAP];
            wick_io_esc(en, sizeof en, nm);
            if (!prev)
                s = wick_fail(WICK_EFORMAT, "%s: tensor '%s': the first tensor's data starts at offset %llu, not 0",
                              path, en, (unsigned long long)spans[i].begin);
            else
                s = wick_fail(WICK_EFORMAT, "%s: tensor '%s': data starts at offset %llu but tensor '%s' ends at %llu (%s)",
                              path, en, (unsigned long long)spans[i].begin, wick_io_esc(ep, sizeof ep, prev),
                              (unsigned long long)at, spans[i].begin > at ? "a hole" : "overlap");
            wick_free(tmp);
            goto done;
        }
        at = spans[i].end;
        prev = nm;
    }
    if (at > data_len)
        s = wick_fail(WICK_EFORMAT, "%s: data section is %llu bytes, shorter than the %llu the offsets need",
                      path, (unsigned long long)data_len, (unsigned long long)at);
    else if (at < data_len)
        s = wick_fail(WICK_EFORMAT, "%s: %llu bytes after the last tensor (the data section is %llu bytes, tensors end at %llu)",
                      path, (unsigned long long)(data_len - at), (unsigned long long)data_len,
                      (unsigned long long)at);
    if (s) { wick_free(tmp); goto done; }
    for (size_t i = 0; i < nt; i++) {
        f->t[i] = tmp[spans[i].index];
        f->names[i] = dup_str(f->t[i].name);
        if (!f->names[i]) {
            s = wick_fail(WICK_ENOMEM, "%s: out of memory for tensor names", path);
            break;
        }
        f->t[i].name = f->names[i];
    }
    f->n = (int)nt;  /* wick_st_free frees the names that exist (calloc'd NULLs) */
    wick_free(tmp);
done:
    json_decref(root);
    if (s) { wick_free(spans); spans = NULL; }
    *spans_out = spans;
    return s;
}

/* ---------------------------------------------------------------------------
 * Reading: from a file or from memory, through one "read at offset" source
 * ------------------------------------------------------------------------- */

typedef struct {
    int fd;                 /* a file, or -1 */
    const uint8_t *mem;     /* else this buffer */
} st_source;

static wick_status src_read(const char *path, const st_source *src, uint64_t off, void *buf,
                            size_t n) {
    if (!src->mem) {
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(src->fd, (char *)buf + got, n - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return wick_fail(WICK_EIO, "%s: read error at offset %llu: %s", path,
                                        (unsigned long long)(off + got), strerror(errno));
            if (r == 0) return wick_fail(WICK_EIO, "%s: file shrank while being read (offset %llu)",
                                         path, (unsigned long long)(off + got));
            got += (size_t)r;
        }
    } else if (n) {
        memcpy(buf, src->mem + off, n);
    }
    return WICK_OK;
}

static wick_status st_load(const char *path, const st_source *src, uint64_t size, wick_st_file **out) {
    pthread_once(&json_once, json_setup);
    if (size < 8)
        return wick_fail(WICK_EFORMAT, "%s: file is %llu bytes, shorter than the 8-byte header length",
                         path, (unsigned long long)size);
    uint8_t lb[8];
    wick_status s = src_read(path, src, 0, lb, 8);
    if (s) return s;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lb[i];
    /* torch.save writes a zip archive (PK\3\4) since PyTorch 1.6, a bare
       pickle (protocol 2+: 0x80 then the protocol) before: say what it is */
    int zip = lb[0] == 'P' && lb[1] == 'K' && lb[2] == 3 && lb[3] == 4;
    if (n > ST_MAX_HEADER && (zip || (lb[0] == 0x80 && lb[1] >= 2 && lb[1] <= 5)))
        return wick_fail(WICK_EFORMAT, "%s: a PyTorch torch.save file (%s), not safetensors: save the state_dict "
                         "with safetensors.torch.save_file(model.state_dict(), PATH) (docs/file-formats.md)", path,
                         zip ? "zip archive" : "pickle");
    if (n > ST_MAX_HEADER)
        return wick_fail(WICK_EFORMAT, "%s: header length %llu exceeds the limit of %llu bytes", path,
                         (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return wick_fail(WICK_EFORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)",
                         path, (unsigned long long)n, (unsigned long long)size);
    uint64_t data_len = size - 8 - n;
    if (data_len > SIZE_MAX)
        return wick_fail(WICK_ENOMEM, "%s: data section of %llu bytes does not fit in memory", path,
                         (unsigned long long)data_len);
    char *hdr = wick_malloc((size_t)n + 1);
    wick_st_file *f = wick_calloc(1, sizeof *f);
    st_span *spans = NULL;
    if (!hdr || !f) {
        s = wick_fail(WICK_ENOMEM, "%s: out of memory for a %llu-byte header", path, (unsigned long long)n);
        goto fail;
    }
    if ((s = src_read(path, src, 8, hdr, (size_t)n))) goto fail;
    hdr[n] = 0;
    if ((s = parse_header(path, hdr, (size_t)n, data_len, f, &spans))) goto fail;
    /* Only now, with the offsets proven to tile the data section, allocate it. */
    f->data = wick_aligned_alloc((size_t)data_len);
    if (!f->data) {
        s = wick_fail(WICK_ENOMEM, "%s: out of memory for %llu bytes of tensor data", path,
                      (unsigned long long)data_len);
        goto fail;
    }
    f->data_len = data_len;
    if ((s = src_read(path, src, 8 + n, f->data, (size_t)data_len))) goto fail;
    for (int i = 0; i < f->n; i++) {
        /* spans are in the same (offset) order as f->t */
        f->t[i].data = (const uint8_t *)f->data + spans[i].begin;
    }
    wick_free(spans);
    wick_free(hdr);
    *out = f;
    return WICK_OK;
fail:
    wick_free(spans);
    wick_free(hdr);
    wick_st_free(f);
    return s;
}

wick_status wick_st_read(const char *path, wick_st_file **out) {
    if (!out || !path) return wick_fail(WICK_EINVAL, "wick_st_read: NULL argument");
    *out = NULL;
    int fd;
    struct stat st;
    wick_status s = wick_io_open_input(path, &fd, &st);
    if (s) return s;
    st_source src = {fd, NULL};
    locale_t loc = wick_io_locale_enter();
    s = st_load(path, &src, (uint64_t)st.st_size, out);
    wick_io_locale_leave(loc);
    close(fd);
    return s;
}

wick_status wick_st_read_mem(const char *name, const void *buf, size_t len, wick_st_file **out) {
    if (!out || !name || (!buf && len)) return wick_fail(WICK_EINVAL, "wick_st_read_mem: NULL argument");
    *out = NULL;
    st_source src = {-1, buf ? buf : (const uint8_t *)""};
    locale_t loc = wick_io_locale_enter();
    wick_status s = st_load(name, &src, len, out);
    wick_io_locale_leave(loc);
    return s;
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

static long write_fail_at, write_calls;

void wick_io_fail_write_at(long n) {
    write_fail_at = n;
    write_calls = 0;
}

static int write_all(int fd, const void *buf, size_t n) {
    if (write_fail_at > 0 && ++write_calls == write_fail_at) {
        errno = ENOSPC;
        return -1;
    }
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++;
        int extra;
        unsigned min;
        if (c < 0x80) continue;
        else if ((c & 0xE0) == 0xC0) { extra = 1; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { extra = 2; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { extra = 3; min = 0x10000; c &= 0x07; }
        else return 0;
        for (int i = 0; i < extra; i++) {
            if ((*p & 0xC0) != 0x80) return 0;
            c = c << 6 | (*p++ & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A duplicate among v[0..n) (reordered): sorted, so that a model of tens of
 * thousands of tensors is checked in n log n, not n^2 (65,536 tensors had
 * taken 10 s). */
static wick_status find_dup(const char *path, const char **v, int n, const char *what) {
    if (n < 2) return WICK_OK;
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    for (int i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) == 0) {
            char e[ST_NAME_CAP];
            return wick_fail(WICK_EINVAL, "%s: duplicate %s '%s'", path, what, wick_io_esc(e, sizeof e, v[i]));
        }
    return WICK_OK;
}

/* Checks the caller's tensors; *total gets the data section's size. */
static wick_status check_tensors(const char *path, const wick_st_tensor *t, int n,
                                 const char *const *meta, int nmeta, uint64_t *total) {
    if (n < 0 || nmeta < 0 || (n > 0 && !t) || (nmeta > 0 && !meta))
        return wick_fail(WICK_EINVAL, "%s: bad tensor or metadata list (n %d, nmeta %d)", path, n, nmeta);
    /* never write a file the reader refuses */
    if (n > WICK_ST_MAX_TENSORS)
        return wick_fail(WICK_EINVAL, "%s: %d tensors, more than the %d a file may hold", path, n,
                         WICK_ST_MAX_TENSORS);
    if (nmeta > WICK_ST_MAX_META)
        return wick_fail(WICK_EINVAL, "%s: %d metadata entries, more than the %d a file may hold", path,
                         nmeta, WICK_ST_MAX_META);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = t[i].name;
        if (!nm) return wick_fail(WICK_EINVAL, "%s: tensor %d has no name", path, i);
        if (!utf8_valid(nm))
            return wick_fail(WICK_EINVAL, "%s: tensor %d: name is not valid UTF-8", path, i);
        if (strcmp(nm, "__metadata__") == 0)
            return wick_fail(WICK_EINVAL, "%s: a tensor may not be named __metadata__", path);
        if ((unsigned)t[i].dtype >= WICK_DT_COUNT)
            return wick_fail(WICK_EINVAL, "%s: tensor '%s': bad dtype %d", path, nm, (int)t[i].dtype);
        if (t[i].ndim < 0 || t[i].ndim > WICK_ST_MAX_DIMS)
            return wick_fail(WICK_EINVAL, "%s: tensor '%s': %d dimensions (0 to %d allowed)", path, nm,
                             t[i].ndim, WICK_ST_MAX_DIMS);
        uint64_t count = 1;
        int overflow = 0;
        for (int d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0)
                return wick_fail(WICK_EINVAL, "%s: tensor '%s': negative dimension %lld", path, nm,
                                 (long long)t[i].shape[d]);
            overflow |= __builtin_mul_overflow(count, (uint64_t)t[i].shape[d], &count);
        }
        uint64_t bytes;
        if (overflow || __builtin_mul_overflow(count, (uint64_t)wick_dtype_size(t[i].dtype), &bytes) ||
            __builtin_add_overflow(at, bytes, &at) || at > (uint64_t)INT64_MAX)
            return wick_fail(WICK_EINVAL, "%s: tensor '%s': size beyond 63 bits", path, nm);
        if (bytes && !t[i].data)
            return wick_fail(WICK_EINVAL, "%s: tensor '%s': data is NULL for %llu bytes", path, nm,
                             (unsigned long long)bytes);
    }
    for (int i = 0; i < nmeta; i++) {
        const char *k = meta[2 * i], *v = meta[2 * i + 1];
        if (!k || !v) return wick_fail(WICK_EINVAL, "%s: metadata entry %d is NULL", path, i);
        if (!utf8_valid(k) || !utf8_valid(v))
            return wick_fail(WICK_EINVAL, "%s: metadata '%.80s' is not valid UTF-8", path, k);
    }
    wick_status s = WICK_OK;
    int most = n > nmeta ? n : nmeta;
    const char **v = most ? wick_malloc((size_t)most * sizeof *v) : NULL;
    if (most && !v) return wick_fail(WICK_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) v[i] = t[i].name;
    s = find_dup(path, v, n, "tensor name");
    for (int i = 0; i < nmeta && !s; i++) v[i] = meta[2 * i];
    if (!s) s = find_dup(path, v, nmeta, "metadata key");
    wick_free(v);
    if (!s) *total = at;
    return s;
}

/* The header JSON: __metadata__ first, then the tensors in the caller's
 * order with offsets laid out in that order.  jansson keeps insertion order. */
static char *build_header(const wick_st_tensor *t, int n, const char *const *meta, int nmeta) {
    json_t *root = json_object(), *m = NULL;
    char *out = NULL;
    if (!root) return NULL;
    if (nmeta > 0) {
        if (!(m = json_object()) || json_object_set_new(root, "__metadata__", m)) goto done;
        for (int i = 0; i < nmeta; i++)
            if (json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1]))) goto done;
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = wick_dtype_size(t[i].dtype);
        json_t *e = json_object(), *shape = json_array(), *off = json_array();
        if (!e || !shape || !off) {
            json_decref(e); json_decref(shape); json_decref(off);
            goto done;
        }
        if (json_object_set_new(root, t[i].name, e)) {
            json_decref(shape); json_decref(off);
            goto done;
        }
        int bad = json_object_set_new(e, "dtype", json_string(wick_dtype_name(t[i].dtype)));
        bad |= json_object_set_new(e, "shape", shape);
        bad |= json_object_set_new(e, "data_offsets", off);
        if (bad) goto done;
        for (int d = 0; d < t[i].ndim; d++) {
            bytes *= (uint64_t)t[i].shape[d];
            if (json_array_append_new(shape, json_integer(t[i].shape[d]))) goto done;
        }
        if (json_array_append_new(off, json_integer((json_int_t)at)) ||
            json_array_append_new(off, json_integer((json_int_t)(at + bytes))))
            goto done;
        at += bytes;
    }
    out = json_dumps(root, JSON_COMPACT);
done:
    json_decref(root);
    return out;
}

wick_status wick_st_write(const char *path, const wick_st_tensor *t, int n, const char *const *meta,
                          int nmeta) {
    if (!path || !*path) return wick_fail(WICK_EINVAL, "wick_st_write: no path");
    pthread_once(&json_once, json_setup);
    uint64_t total;
    wick_status s = check_tensors(path, t, n, meta, nmeta, &total);
    if (s) return s;
    /* The target is checked and the temporary file created beside it (the
     * rename must be atomic) by src/io/path.c. */
    wick_io_out o;
    if ((s = wick_io_out_open(&o, path))) return s;
    json_alloc_failed = 0;
    char *hdr = build_header(t, n, meta, nmeta);
    if (!hdr || json_alloc_failed) {
        s = wick_fail(WICK_ENOMEM, "%s: out of memory building the header", path);
        goto out;
    }
    /* Pad with spaces so that the data section starts 8-byte aligned, as the
     * reference writer does. */
    size_t hlen = strlen(hdr), pad = (8 - hlen % 8) % 8;
    uint64_t nh = hlen + pad;
    uint8_t lb[8 + 8];
    for (int i = 0; i < 8; i++) lb[i] = (uint8_t)(nh >> (8 * i));
    memset(lb + 8, ' ', 8);
    int bad = write_all(o.fd, lb, 8) || write_all(o.fd, hdr, hlen) || (pad && write_all(o.fd, lb + 8, pad));
    for (int i = 0; i < n && !bad; i++) {
        uint64_t bytes = wick_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) bytes *= (uint64_t)t[i].shape[d];
        if (bytes) bad = write_all(o.fd, t[i].data, (size_t)bytes);
    }
    if (bad) {
        s = wick_fail(WICK_EIO, "%s: writing '%s' failed: %s", path, o.tmp, strerror(errno));
        goto out;
    }
    s = wick_io_out_commit(&o);   /* releases o */
out:
    wick_io_out_abort(&o);        /* after a commit: nothing left to do */
    if (hdr) json_release(hdr);   /* json_dumps' buffer, from jansson's allocator */
    return s;
}
