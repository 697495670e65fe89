/* Compiled loops for the hot path, each doing what NumPy does in several passes in one:
 * the optimizer updates of optimizers.py over the flat buffers, and a relu layer's
 * elementwise work in network.py.
 *
 * Every loop does the same IEEE operations in the same order as the NumPy code it replaces,
 * element by element. fast.py compiles this file once per machine with -ffp-contract=off
 * (no fused multiply-add) and without -ffast-math, so that every result is the NumPy path's
 * to the last bit (tests/test_fast.py checks it). Scalars arrive in the buffers' dtype, as
 * NumPy casts Python floats to it.
 */
#include <math.h>
#include <stdint.h>

/* p <- p * decay (AdamW); g <- g + wd p (Adam's L2 term); m <- m + (g - m) c1 (torch's lerp);
 * v <- b2 v + c2 g^2; p <- p - step m / (sqrt(v) inv_b2s + eps). Specialized for wd = 0 and
 * wd != 0, as the SGD loop below is for its options. */
#define ADAM(T, SUFFIX, SQRT)                                                              \
    static inline __attribute__((always_inline)) void adam_loop_##SUFFIX(                  \
        T *restrict p, const T *restrict g, T *restrict m, T *restrict v, int64_t n, T c1, \
        T c2, T b2, T inv_b2s, T eps, T step, T wd, T decay, const int has_wd)             \
    {                                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                  \
            T pi = p[i] * decay;                                                           \
            T gi = g[i];                                                                   \
            if (has_wd)                                                                    \
                gi = pi * wd + gi;                                                         \
            T mi = m[i] + (gi - m[i]) * c1;                                                \
            T vi = v[i] * b2 + (gi * gi) * c2;                                             \
            m[i] = mi;                                                                     \
            v[i] = vi;                                                                     \
            p[i] = pi - (mi / ((SQRT(vi) * inv_b2s) + eps)) * step;                        \
        }                                                                                  \
    }                                                                                      \
    void adam_##SUFFIX(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,   \
                       int64_t n, T c1, T c2, T b2, T inv_b2s, T eps, T step, T wd,        \
                       T decay)                                                            \
    {                                                                                      \
        if (wd != 0)                                                                       \
            adam_loop_##SUFFIX(p, g, m, v, n, c1, c2, b2, inv_b2s, eps, step, wd, decay, 1); \
        else                                                                               \
            adam_loop_##SUFFIX(p, g, m, v, n, c1, c2, b2, inv_b2s, eps, step, wd, decay, 0); \
    }

/* g <- g + wd p; b <- mu b + damp g (b = g at the first step); g <- g + mu b if nesterov
 * else b; p <- p - lr g. damp is 1 - dampening. The loop is specialized for each combination
 * of the options (the flags are constants in each inlined copy), so that every variant
 * vectorizes: a branch left inside the loop would keep it scalar, several times slower. */
#define SGD(T, SUFFIX)                                                                     \
    static inline __attribute__((always_inline)) void sgd_loop_##SUFFIX(                   \
        T *restrict p, const T *restrict g, T *restrict buf, int64_t n, T lr, T momentum,  \
        T damp, T wd, const int has_wd, const int has_momentum, const int first,           \
        const int has_damp, const int nesterov)                                            \
    {                                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                  \
            T gi = g[i];                                                                   \
            if (has_wd)                                                                    \
                gi = p[i] * wd + gi;                                                       \
            if (has_momentum) {                                                            \
                T bi;                                                                      \
                if (first)                                                                 \
                    bi = gi;                                                               \
                else if (has_damp)                                                         \
                    bi = buf[i] * momentum + gi * damp;                                    \
                else                                                                       \
                    bi = buf[i] * momentum + gi;                                           \
                buf[i] = bi;                                                               \
                gi = nesterov ? bi * momentum + gi : bi;                                   \
            }                                                                              \
            p[i] = p[i] - gi * lr;                                                         \
        }                                                                                  \
    }                                                                                      \
    void sgd_##SUFFIX(T *restrict p, const T *restrict g, T *restrict buf, int64_t n,      \
                      T lr, T momentum, T damp, T wd, int32_t first, int32_t nesterov)     \
    {                                                                                      \
        int flags = (wd != 0) | (momentum != 0) << 1 | (first != 0) << 2                  \
                    | (damp != 1) << 3 | (nesterov != 0) << 4;                             \
        switch (flags) {                                                                   \
            SGD_CASES(SUFFIX)                                                              \
        }                                                                                  \
    }

#define SGD_CASE(SUFFIX, F)                                                                \
    case F:                                                                                \
        sgd_loop_##SUFFIX(p, g, buf, n, lr, momentum, damp, wd, (F) & 1, (F) >> 1 & 1,     \
                          (F) >> 2 & 1, (F) >> 3 & 1, (F) >> 4 & 1);                       \
        break;
#define SGD_CASES4(S, F)                                                                   \
    SGD_CASE(S, F) SGD_CASE(S, F + 1) SGD_CASE(S, F + 2) SGD_CASE(S, F + 3)
#define SGD_CASES(S)                                                                       \
    SGD_CASES4(S, 0) SGD_CASES4(S, 4) SGD_CASES4(S, 8) SGD_CASES4(S, 12)                   \
    SGD_CASES4(S, 16) SGD_CASES4(S, 20) SGD_CASES4(S, 24) SGD_CASES4(S, 28)

ADAM(float, f32, sqrtf)
ADAM(double, f64, sqrt)
SGD(float, f32)
SGD(double, f64)

/* A relu layer's elementwise work, for network.py: forward z <- z + b (z holds a W, n x k,
 * row-major), h <- max(z, 0); backward delta <- g * (h > 0) and the bias gradient
 * gb <- 0 + the rows of delta added in row order, as NumPy's add.reduce over axis 0 does
 * (delta overwrites g).
 * One pass each instead of NumPy's two and three. */
#define RELU(T, SUFFIX)                                                                    \
    void bias_relu_##SUFFIX(T *restrict z, const T *restrict b, T *restrict h, int64_t n,  \
                            int64_t k)                                                     \
    {                                                                                      \
        for (int64_t r = 0; r < n; r++) {                                                  \
            T *restrict zr = z + r * k;                                                    \
            T *restrict hr = h + r * k;                                                    \
            for (int64_t j = 0; j < k; j++) {                                              \
                T x = zr[j] + b[j];                                                        \
                zr[j] = x;                                                                 \
                hr[j] = x > 0 ? x : (x == x ? (T)0 : x); /* np.maximum: NaN propagates */  \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    void relu_backward_bias_##SUFFIX(T *restrict g, const T *restrict h, T *restrict gb,    \
                                     int64_t n, int64_t k)                                 \
    {                                                                                      \
        for (int64_t j = 0; j < k; j++)                                                    \
            gb[j] = 0;                                                                     \
        for (int64_t r = 0; r < n; r++) {                                                  \
            T *restrict gr = g + r * k;                                                    \
            const T *restrict hr = h + r * k;                                              \
            for (int64_t j = 0; j < k; j++) {                                              \
                T x = gr[j] * (T)(hr[j] > 0);                                              \
                gr[j] = x;                                                                 \
                gb[j] = gb[j] + x;                                                         \
            }                                                                              \
        }                                                                                  \
    }

RELU(float, f32)
RELU(double, f64)
