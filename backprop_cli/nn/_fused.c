/* The fused training step (nn/fused.py): a whole mini-batch, or a run of them, in one call.
 *
 * For each batch: gather its rows, forward through every layer (z = a W + b, the activation,
 * the dropout mask, the residual sum), the loss and the output error delta^L, backward (BP1-BP4)
 * and the optimizer update, with the loss, the classification count or squared errors and each
 * layer's squared gradient norm added up for the epoch's record. The matrix products are
 * blocked loops over the CPU's widest vectors (GCC's and Clang's vector extensions: AVX-512,
 * AVX2 or SSE as the CPU has them, VBYTES below), the accumulators held in registers.
 *
 * The products sum in another order than the BLAS's (and with fused multiply-adds where the
 * CPU has them), so the results are NumPy's to within rounding, not to the bit; the same
 * build on the same CPU gives the same bits every time (no threads, no data-dependent order).
 * The optimizer update is _kernels.c's, so it is the NumPy path's to the bit given the same
 * gradients. The parameters are trained in a packed copy whose rows are padded to whole
 * vectors with zeros, which every update keeps zero (a zero gradient moves nothing); fused.py
 * copies them in and out around each call.
 *
 * The body is _fused.h, written once for a type T and included here for float and double.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Fused multiply-adds in the products: the kernels of _kernels.c are compiled with
 * -ffp-contract=off to keep NumPy's bits; this file's results differ from NumPy's anyway. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT ON
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

/* The optimizer updates of _kernels.c. */
void adam_f32(float *p, const float *g, float *m, float *v, int64_t n, float c1, float c2,
              float b2, float inv_b2s, float eps, float step, float wd, float decay);
void adam_f64(double *p, const double *g, double *m, double *v, int64_t n, double c1,
              double c2, double b2, double inv_b2s, double eps, double step, double wd,
              double decay);
void sgd_f32(float *p, const float *g, float *buf, int64_t n, float lr, float momentum,
             float damp, float wd, int32_t first, int32_t nesterov);
void sgd_f64(double *p, const double *g, double *buf, int64_t n, double lr, double momentum,
             double damp, double wd, int32_t first, int32_t nesterov);

enum { ACT_IDENTITY, ACT_RELU, ACT_LEAKY_RELU, ACT_SIGMOID, ACT_TANH, ACT_ELU, ACT_SOFTPLUS,
       ACT_GELU, ACT_SOFTMAX };
enum { LOSS_CROSS_ENTROPY, LOSS_BINARY_CROSS_ENTROPY, LOSS_MSE, LOSS_MAE, LOSS_HUBER };
enum { OPT_SGD, OPT_ADAM, OPT_ADAMW };
enum { REGRESSION, CLASSIFY_CLASSES, CLASSIFY_MULTILABEL }; /* Net.classify */

/* One layer, as fused.py describes it (its ctypes Structure mirrors this). W is fan_in x
 * stride (stride: fan_out rounded up to whole vectors), WT its transpose, fan_out x the
 * previous layer's stride (NULL for the first layer, whose input gradient is not needed). The
 * per-batch buffers are batch x stride: z^l, h^l = sigma(z^l), a^l (h^l itself without dropout
 * or a residual), g^l = dC/da^l, d^l (delta^l where g^l must survive it or be masked), and
 * the dropout mask. */
typedef struct {
    int64_t fan_in, fan_out, stride;
    int32_t act, residual;
    double dropout, act_param;
    void *W, *b, *gW, *gb, *WT;
    void *z, *h, *a, *g, *d, *mask;
} Layer;

/* The network, loss and optimizer, and what a call adds up. */
typedef struct {
    int64_t n_layers, n_features, batch, n_params;
    Layer *layers;
    int32_t loss, classify;
    double huber_delta;
    int32_t opt, nesterov;
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
    int64_t t;
    void *params, *grads, *state0, *state1;
    double clip_norm, clip_value;
    double loss_sum;
    int64_t correct, clipped;
    double *ss_res, *grad_sq;
    double last_loss;
    int32_t decay_biases; /* 0: weight decay on the layers' W alone */
    int32_t threads;      /* 2: a batch's two parts on two threads (fused.py decides) */
    int32_t fuse_update;  /* 1: BP3 and the update in one pass where the batch allows it */
} Net;

/* An optimizer step's scalars that do not depend on the values: computed once per step. */
typedef struct {
    int64_t t;
    double bias1, bias2_sqrt; /* Adam's bias corrections */
} Step;

static Step step_of(const Net *net, int64_t t)
{
    Step st = {.t = t};
    if (net->opt != OPT_SGD) {
        st.bias1 = 1.0 - pow(net->beta1, (double)t);
        st.bias2_sqrt = sqrt(1.0 - pow(net->beta2, (double)t));
    }
    return st;
}

/* The vectors: the CPU's widest (64 bytes with AVX-512, 32 with AVX, else 16: SSE, NEON), so
 * that each is one register. A vector type wider than the CPU's is split by the compiler into
 * several, and a product's tile of them no longer fits the registers: an AVX2 build of
 * 64-byte vectors trained 20 times slower. TJ: the vectors of B one tile spans, as many as
 * the registers hold beside four rows' accumulators (32 registers: 4; 16: 2). */
#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
#if defined(__AVX512F__) || defined(__aarch64__)
#define TJ 4
#else
#define TJ 2
#endif
/* A batch of this many rows or more is done in two parts (a thread each where fused.py asks
 * for two); a smaller one in one. */
#ifndef SPLIT_ROWS
#define SPLIT_ROWS 16
#endif

/* The second thread: started on first use (again in a forked child), it spins a while for
 * the next part, then sleeps until it is posted one. One call at a time uses it (the
 * trainer's thread): run_parts posts part 1 to it, runs part 0, and then runs part 1 itself
 * if the second thread has not claimed it yet (on a busy machine the second thread may wait
 * for a core for milliseconds: a 117-batch call once took 121 ms instead of 1.4), else waits
 * for it. Whoever claims a part (claimed: the last part claimed) runs it. */
#define SPINS 20000 /* pauses (about half a millisecond) before sleeping, or yielding */
static struct {
    pthread_t thread;
    pid_t pid; /* the process that started it (0: none) */
    atomic_ulong posted, claimed, finished;
    atomic_int sleeping, busy;
    void (*fn)(void *, int);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *unused)
{
    (void)unused;
    unsigned long seen = atomic_load(&pool.finished);
    for (;;) {
        unsigned long p;
        for (long spins = 0; (p = atomic_load(&pool.posted)) == seen; spins++) {
            if (spins < SPINS) {
                relax();
                continue;
            }
            pthread_mutex_lock(&pool.mu);
            atomic_store(&pool.sleeping, 1);
            while (atomic_load(&pool.posted) == seen)
                pthread_cond_wait(&pool.cv, &pool.mu);
            atomic_store(&pool.sleeping, 0);
            pthread_mutex_unlock(&pool.mu);
            spins = 0;
        }
        unsigned long before = p - 1;
        if (atomic_compare_exchange_strong(&pool.claimed, &before, p)) {
            pool.fn(pool.arg, 1);
            atomic_store(&pool.finished, p);
        }
        seen = p;
    }
    return 0;
}

/* Whether the second thread runs in this process (started now if not). */
static int pool_ready(void)
{
    pid_t me = getpid();
    if (pool.pid == me)
        return 1;
    pthread_mutex_init(&pool.mu, 0); /* a forked child's copy may be held */
    pthread_cond_init(&pool.cv, 0);
    atomic_store(&pool.posted, 0);
    atomic_store(&pool.claimed, 0);
    atomic_store(&pool.finished, 0);
    atomic_store(&pool.sleeping, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&pool.thread, &attr, worker, 0) == 0;
    pthread_attr_destroy(&attr);
    if (ok)
        pool.pid = me;
    return ok;
}

/* fn(arg, 0) and, with parts 2, fn(arg, 1): on two threads where threads is 2, else one
 * after the other. */
static void run_parts(void (*fn)(void *, int), void *arg, int parts, int threads)
{
    /* busy: another trainer in this process (a Python thread of its own) has the thread */
    int two = parts > 1 && threads > 1 && !atomic_exchange(&pool.busy, 1);
    if (two && !pool_ready()) {
        atomic_store(&pool.busy, 0);
        two = 0;
    }
    if (!two) {
        for (int p = 0; p < parts; p++)
            fn(arg, p);
        return;
    }
    pool.fn = fn;
    pool.arg = arg;
    unsigned long p = atomic_fetch_add(&pool.posted, 1) + 1;
    if (atomic_load(&pool.sleeping)) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_signal(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    fn(arg, 0);
    unsigned long before = p - 1;
    if (atomic_compare_exchange_strong(&pool.claimed, &before, p)) {
        fn(arg, 1); /* the second thread has not started it: no waiting for it */
    } else {
        for (long spins = 0; atomic_load(&pool.finished) != p; spins++)
            if (spins < SPINS)
                relax();
            else
                sched_yield();
    }
    atomic_store(&pool.busy, 0);
}

/* Up to this batch size the backward pass's delta W^T is dot products (gemm_nt), beyond it a
 * product through W^T (measured: README, Performance). */
#ifndef NT_ROWS
#define NT_ROWS 4
#endif
_Static_assert(NT_ROWS <= 4, "few_update takes at most 4 rows");
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

#define T float
#define SUFFIX f32
#define ITYPE int32_t
#define SIGNBIT INT32_MIN
#define LANES (VBYTES / 4)
#define EXP expf
#define LOG1P log1pf
#define EXPM1 expm1f
#define TANH tanhf
#define ERF erff
#define SQRT sqrtf
#define TINY FLT_MIN
#include "_fused.h"
#undef T
#undef SUFFIX
#undef EXP
#undef LOG1P
#undef EXPM1
#undef TANH
#undef ERF
#undef SQRT
#undef TINY
#undef LANES
#undef ITYPE
#undef SIGNBIT

#define T double
#define SUFFIX f64
#define ITYPE int64_t
#define SIGNBIT INT64_MIN
#define LANES (VBYTES / 8)
#define EXP exp
#define LOG1P log1p
#define EXPM1 expm1
#define TANH tanh
#define ERF erf
#define SQRT sqrt
#define TINY DBL_MIN
#include "_fused.h"

/* One row's activation (z padded to whole vectors), as the fused step's forward pass computes
 * it: for tests/test_fused.py, which checks the vector functions against float64 math. */
void activate_row_f32(int32_t act, double param, const float *z, float *h, int64_t n)
{
    activate_f32(act, (float)param, z, h, n);
}

void activate_row_f64(int32_t act, double param, const double *z, double *h, int64_t n)
{
    activate_f64(act, param, z, h, n);
}

/* The bytes of the fused step's vectors in this build (64 with AVX-512, 32 with AVX, else 16):
 * for backprop --version --verbose. */
int32_t fused_vector_bytes(void)
{
    return VBYTES;
}
