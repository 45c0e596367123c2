/* mpi.c — the wick_collective over Open MPI: sums with MPI_Allreduce,
 * gradients in buckets with MPI_Iallreduce started as backward completes
 * them, and the start-up agreement (status and checksums of every rank).
 *
 * Gradients are summed in double.  Each rank's term is a float gradient
 * times its share of the rows, and the sum of a few such terms is exact or
 * nearly so in double, so the float result hardly depends on the order in
 * which the allreduce's algorithm adds them; the trainer still checks at
 * each epoch's end that every rank holds the same weights.  With
 * `wick train --allreduce f32` they are summed in float: half the bytes on the wire,
 * and each term and partial sum rounded to float (results within ~1e-6 of
 * one process's rather than ~1e-7; docs/distributed.md). */
#include "dist/dist.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

int wick_dist_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

#ifdef WICK_NO_MPI

int wick_dist_available(void) { return 0; }
wick_status wick_dist_init(wick_dist **out) {
    *out = NULL;
    return wick_dist_error(WICK_EINVAL, "started by mpirun, but this wick was built without MPI "
                          "(install libopenmpi-dev and rebuild)");
}
int wick_dist_rank(const wick_dist *d) { return 0; }
int wick_dist_ranks(const wick_dist *d) { return 1; }
int wick_dist_local_ranks(const wick_dist *d) { return 1; }
wick_status wick_dist_agree(wick_dist *d, wick_status local, const char *why, const wick_dataset *train,
                            const wick_dataset *val, wick_mlp *m, const char *config) { return local; }
wick_status wick_dist_collective(wick_dist *d, wick_mlp *m, size_t bucket_bytes, int f32, int shards,
                                 const wick_collective **out) {
    return wick_dist_error(WICK_EINVAL, "built without MPI");
}
double wick_dist_wait_seconds(const wick_dist *d) { return 0; }
void wick_dist_abort(wick_dist *d, int code) { exit(code); }
void wick_dist_finish(wick_dist *d) {}

#else

#include <mpi.h>

#define MAX_TENSORS 1024

struct wick_dist {
    int rank, ranks, local_ranks;
    wick_collective coll;
    int np;                      /* parameter tensors */
    size_t off[MAX_TENSORS + 1]; /* tensor i's gradient at dbuf + off[i]: buffer order is the reverse of
                                    the parameter order, the order backward completes them */
    size_t size[MAX_TENSORS];
    float *grad[MAX_TENSORS];    /* where the sum goes back, this step */
    char ready[MAX_TENSORS];
    int nb;                      /* buckets: tensors [first[b], last[b]] (descending), started in order */
    int *bfirst, *blast;
    MPI_Request *req;
    int next;                    /* the next bucket to start */
    double *dbuf;
    int f32;                     /* gradients summed in float (--allreduce f32) */
    int shards;                  /* --shards: micro-shards summed in a fixed order (0: off) */
    float *fbuf;                 /* ... then here, laid out as dbuf */
    double wait_s;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int wick_dist_available(void) { return 1; }

static wick_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return wick_dist_error(WICK_EIO, "MPI: %s: %s", what, msg);
}

wick_status wick_dist_init(wick_dist **out) {
    *out = NULL;
    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return wick_dist_error(WICK_EIO, "MPI_Init_thread failed (code %d)", rc);
    /* errors come back as codes, so a rank can say what failed before the job ends */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    wick_dist *d = calloc(1, sizeof *d);
    if (!d) return wick_dist_error(WICK_ENOMEM, "out of memory");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->ranks);
    MPI_Comm local;
    d->local_ranks = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_size(local, &d->local_ranks);
        MPI_Comm_free(&local);
    }
    *out = d;
    return WICK_OK;
}

int wick_dist_rank(const wick_dist *d) { return d->rank; }
int wick_dist_ranks(const wick_dist *d) { return d->ranks; }
int wick_dist_local_ranks(const wick_dist *d) { return d->local_ranks; }
double wick_dist_wait_seconds(const wick_dist *d) { return d->wait_s; }

/* ---- start-up agreement ------------------------------------------------ */

typedef struct {
    int32_t status;
    uint32_t build, data, config, weights, sum_mode;
    char msg[232];
} hello;

static uint32_t crc_data(uint32_t c, const wick_dataset *s) {
    if (!s) return c;
    uint64_t shape[2] = {s->n, s->dim};
    c = crc32(c, (const unsigned char *)shape, sizeof shape);
    const unsigned char *p = (const unsigned char *)s->x;
    for (size_t left = s->n * s->dim * sizeof *s->x; left;) {   /* crc32 takes a uInt length */
        uInt k = left > (1u << 30) ? 1u << 30 : (uInt)left;
        c = crc32(c, p, k);
        p += k;
        left -= k;
    }
    return crc32(c, (const unsigned char *)s->y, (uInt)(s->n * sizeof *s->y));
}

static uint32_t crc_weights(wick_mlp *m) {
    wick_graph *g = wick_mlp_graph(m);
    wick_node p[MAX_TENSORS];
    int np = wick_graph_params(g, p, MAX_TENSORS);
    uint32_t c = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < np; i++)
        c = crc32(c, wick_graph_value(g, p[i]), (uInt)((size_t)wick_graph_rows(g, p[i]) * wick_graph_cols(g, p[i]) * 4));
    return c;
}

wick_status wick_dist_agree(wick_dist *d, wick_status local, const char *why, const wick_dataset *train,
                            const wick_dataset *val, wick_mlp *m, const char *config) {
    hello me;
    memset(&me, 0, sizeof me);
    me.status = local;
    if (local != WICK_OK) {
        snprintf(me.msg, sizeof me.msg, "%s", why ? why : wick_last_error());
    } else {
        uint32_t z = crc32(0L, Z_NULL, 0);
        const char *b = wick_library_versions();
        me.build = crc32(crc32(z, (const unsigned char *)wick_version(), (uInt)strlen(wick_version())),
                         (const unsigned char *)b, (uInt)strlen(b));
        me.data = crc_data(crc_data(z, train), val);
        me.config = crc32(z, (const unsigned char *)config, (uInt)strlen(config));
        me.weights = crc_weights(m);
        me.sum_mode = (uint32_t)d->f32 | (uint32_t)d->shards << 1;
    }
    hello *all = malloc((size_t)d->ranks * sizeof *all);
    if (!all) return wick_dist_error(WICK_ENOMEM, "out of memory");
    int rc = MPI_Allgather(&me, sizeof me, MPI_BYTE, all, sizeof me, MPI_BYTE, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, "the start-up check");
    }
    wick_status s = WICK_OK;
    for (int r = 0; r < d->ranks && s == WICK_OK; r++)
        if (all[r].status != WICK_OK) {
            all[r].msg[sizeof all[r].msg - 1] = 0;
            s = wick_dist_error((wick_status)all[r].status, "rank %d of %d failed at start-up: %s", r, d->ranks,
                                all[r].msg);
        }
    static const char *what[5] = {"build (wick version or libraries)", "data set (training and validation)",
                                  "configuration", "initial weights (model, seed, --init-from or --resume)",
                                  "gradient sum (--allreduce, --shards)"};
    for (int r = 1; r < d->ranks && s == WICK_OK; r++) {
        uint32_t a[5] = {all[0].build, all[0].data, all[0].config, all[0].weights, all[0].sum_mode};
        uint32_t b[5] = {all[r].build, all[r].data, all[r].config, all[r].weights, all[r].sum_mode};
        for (int k = 0; k < 5 && s == WICK_OK; k++)
            if (a[k] != b[k])
                s = wick_dist_error(WICK_EINVAL, "rank %d's %s differs from rank 0's (checksum %08x, rank 0: %08x)", r,
                                    what[k], b[k], a[k]);
    }
    free(all);
    return s;
}

/* ---- the collective ---------------------------------------------------- */

static wick_status c_sum(void *user, double *x, int n) {
    wick_dist *d = user;
    double t0 = now();
    int rc = MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    d->wait_s += now() - t0;
    return rc == MPI_SUCCESS ? WICK_OK : mpi_fail(rc, "summing over the ranks");
}

/* Starts every bucket whose tensors are all ready, in bucket order (the same
 * on every rank, as collectives must be), and lets MPI progress the others. */
static wick_status start_ready(wick_dist *d) {
    while (d->next < d->nb) {
        int b = d->next, ok = 1;
        for (int i = d->bfirst[b]; i >= d->blast[b] && ok; i--) ok = d->ready[i];
        if (!ok) break;
        size_t lo = d->off[d->bfirst[b]], hi = d->off[d->blast[b]] + d->size[d->blast[b]];
        void *buf = d->f32 ? (void *)(d->fbuf + lo) : (void *)(d->dbuf + lo);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)(hi - lo), d->f32 ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM,
                                MPI_COMM_WORLD, &d->req[b]);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "starting a gradient sum");
        d->next++;
    }
    int flag;
    if (d->next > 0) MPI_Testall(d->next, d->req, &flag, MPI_STATUSES_IGNORE);
    return WICK_OK;
}

static wick_status c_grad_start(void *user, int i, float *grad, size_t n, double weight) {
    wick_dist *d = user;
    if (d->f32) {
        float *dst = d->fbuf + d->off[i], w = (float)weight;
        if (weight == 0) memset(dst, 0, n * sizeof *dst);
        else for (size_t j = 0; j < n; j++) dst[j] = w * grad[j];
    } else {
        double *dst = d->dbuf + d->off[i];
        if (weight == 0) memset(dst, 0, n * sizeof *dst);
        else for (size_t j = 0; j < n; j++) dst[j] = weight * grad[j];
    }
    d->grad[i] = grad;
    d->ready[i] = 1;
    return start_ready(d);
}

static wick_status c_grad_finish(void *user) {
    wick_dist *d = user;
    double t0 = now();
    wick_status s = start_ready(d);
    if (s == WICK_OK && d->next < d->nb)
        s = wick_dist_error(WICK_EINVAL, "train: %d of %d gradient buckets were never completed", d->nb - d->next,
                            d->nb);
    if (s == WICK_OK) {
        int rc = MPI_Waitall(d->nb, d->req, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) s = mpi_fail(rc, "summing the gradients");
    }
    d->wait_s += now() - t0;
    for (int i = 0; i < d->np; i++) {
        if (s == WICK_OK && d->f32) memcpy(d->grad[i], d->fbuf + d->off[i], d->size[i] * sizeof(float));
        else if (s == WICK_OK)
            for (size_t j = 0; j < d->size[i]; j++) d->grad[i][j] = (float)d->dbuf[d->off[i] + j];
        d->ready[i] = 0;
    }
    d->next = 0;
    return s;
}

wick_status wick_dist_collective(wick_dist *d, wick_mlp *m, size_t bucket_bytes, int f32, int shards,
                                 const wick_collective **out) {
    d->f32 = f32;
    d->shards = shards;
    wick_graph *g = wick_mlp_graph(m);
    wick_node p[MAX_TENSORS];
    d->np = wick_graph_params(g, p, MAX_TENSORS);
    if (d->np > MAX_TENSORS) return wick_dist_error(WICK_EINVAL, "train: more than %d parameter tensors", MAX_TENSORS);
    size_t total = 0;
    for (int i = d->np - 1; i >= 0; i--) {
        d->size[i] = (size_t)wick_graph_rows(g, p[i]) * wick_graph_cols(g, p[i]);
        d->off[i] = total;
        total += d->size[i];
    }
    free(d->dbuf);
    free(d->fbuf);
    free(d->bfirst);
    free(d->req);
    d->dbuf = NULL;
    d->fbuf = NULL;
    if (d->f32) d->fbuf = malloc((total ? total : 1) * sizeof *d->fbuf);
    else d->dbuf = malloc((total ? total : 1) * sizeof *d->dbuf);
    d->bfirst = malloc(2 * (size_t)(d->np + 1) * sizeof *d->bfirst);
    d->req = malloc((size_t)(d->np + 1) * sizeof *d->req);
    if (!(d->dbuf || d->fbuf) || !d->bfirst || !d->req) return wick_dist_error(WICK_ENOMEM, "train: out of memory");
    d->blast = d->bfirst + d->np + 1;
    /* buckets: consecutive tensors from the last, closed at bucket_bytes */
    d->nb = 0;
    size_t acc = 0;
    for (int i = d->np - 1; i >= 0; i--) {
        if (acc == 0) d->bfirst[d->nb] = i;
        acc += d->size[i] * (d->f32 ? sizeof(float) : sizeof(double));
        if (acc >= bucket_bytes || i == 0) {
            d->blast[d->nb++] = i;
            acc = 0;
        }
    }
    d->next = 0;
    memset(d->ready, 0, sizeof d->ready);
    d->coll = (wick_collective){.rank = d->rank, .ranks = d->ranks, .user = d, .sum = c_sum,
                                .grad_start = c_grad_start, .grad_finish = c_grad_finish, .shards = d->shards};
    *out = &d->coll;
    return WICK_OK;
}

void wick_dist_abort(wick_dist *d, int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

void wick_dist_finish(wick_dist *d) {
    if (!d) return;
    MPI_Finalize();
    free(d->dbuf);
    free(d->fbuf);
    free(d->bfirst);
    free(d->req);
    free(d);
}

#endif
