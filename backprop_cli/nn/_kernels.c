/* The optimizer updates of optimizers.py as one loop over the flat buffers.
 *
 * NumPy's Adam step is a dozen passes over the parameters (SGD with momentum four), each
 * reading and writing whole buffers; these loops do the same IEEE operations in the same
 * order, element by element, in one pass. fast.py compiles this file once per machine with
 * -ffp-contract=off (no fused multiply-add) and without -ffast-math, so that every result is
 * the NumPy path's to the last bit (tests/test_optimizers.py checks it). Scalars arrive in
 * the buffers' dtype, as NumPy casts Python floats to it.
 */
#include <math.h>
#include <stdint.h>

/* p <- p * decay (AdamW); g <- g + wd p (Adam's L2 term); m <- m + (g - m) c1 (torch's lerp);
 * v <- b2 v + c2 g^2; p <- p - step m / (sqrt(v) inv_b2s + eps). */
#define ADAM(T, SUFFIX, SQRT)                                                              \
    void adam_##SUFFIX(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,   \
                       int64_t n, T c1, T c2, T b2, T inv_b2s, T eps, T step, T wd,        \
                       T decay)                                                            \
    {                                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                  \
            T pi = p[i] * decay;                                                           \
            T gi = g[i];                                                                   \
            if (wd != 0)                                                                   \
                gi = pi * wd + gi;                                                         \
            T mi = m[i] + (gi - m[i]) * c1;                                                \
            T vi = v[i] * b2 + (gi * gi) * c2;                                             \
            m[i] = mi;                                                                     \
            v[i] = vi;                                                                     \
            p[i] = pi - (mi / ((SQRT(vi) * inv_b2s) + eps)) * step;                        \
        }                                                                                  \
    }

/* g <- g + wd p; b <- mu b + damp g (b = g at the first step); g <- g + mu b if nesterov
 * else b; p <- p - lr g. damp is 1 - dampening. */
#define SGD(T, SUFFIX)                                                                     \
    void sgd_##SUFFIX(T *restrict p, const T *restrict g, T *restrict buf, int64_t n,      \
                      T lr, T momentum, T damp, T wd, int32_t first, int32_t nesterov)     \
    {                                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                  \
            T gi = g[i];                                                                   \
            if (wd != 0)                                                                   \
                gi = p[i] * wd + gi;                                                       \
            if (momentum != 0) {                                                           \
                T bi;                                                                      \
                if (first)                                                                 \
                    bi = gi;                                                               \
                else if (damp != 1)                                                        \
                    bi = buf[i] * momentum + gi * damp;                                    \
                else                                                                       \
                    bi = buf[i] * momentum + gi;                                           \
                buf[i] = bi;                                                               \
                gi = nesterov ? bi * momentum + gi : bi;                                   \
            }                                                                              \
            p[i] = p[i] - gi * lr;                                                         \
        }                                                                                  \
    }

ADAM(float, f32, sqrtf)
ADAM(double, f64, sqrt)
SGD(float, f32)
SGD(double, f64)
