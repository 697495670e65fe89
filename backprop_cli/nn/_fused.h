/* The body of _fused.c for one type T (float or double; F(name) is name_f32 or name_f64).
 * Arrays are row-major; "rows" are arrays of row pointers, so that a batch's rows of X are
 * read where they are (no gather copy) and a layer's rows through the same code. */

#define F(name) CAT(name, SUFFIX)
#define V F(vec)
#define VL ((int64_t)(VBYTES / sizeof(T)))

typedef T V __attribute__((vector_size(VBYTES), aligned(sizeof(T))));

/* A tile of C = A B (+ bias): rows i < R and vectors j < J (at B's and C's column 0) of
 *     C[i] = bias + sum_{p < P} a(i, p) B[p],   a(i, p) = TR ? rows[p][i] : rows[i][p]
 * with R x J accumulators in registers. TR (A transposed) is a^T delta (BP3): the rows are
 * the batch's, p runs over them. With sq, the sum of the squares of C is added to *sq. */
static inline __attribute__((always_inline)) void F(tile)(
    const int TR, const int R, const int J, const T *const *rows, int64_t col, const T *B,
    int64_t ldb, int64_t P, const T *bias, T *C, int64_t ldc, V *sq)
{
    V acc[4][4];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < J; j++)
            acc[i][j] = bias ? *(const V *)(bias + j * VL) : (V){0};
    const T *ra[4] = {0};
    if (!TR)
        for (int i = 0; i < R; i++)
            ra[i] = rows[i] + col;
    for (int64_t p = 0; p < P; p++) {
        const V *b = (const V *)(B + p * ldb);
        V bv[4];
        for (int j = 0; j < J; j++) {
            bv[j] = b[j];
            /* B's vectors in registers for the R rows' multiply-adds: left to itself, GCC
             * folds the load into each of them, R loads of each vector where one does, and
             * the loads, not the multiply-adds, set the pace (small case: 0.028 -> 0.019 s
             * per epoch on one thread). An empty asm that takes and gives back the register
             * keeps it there; it changes no value. */
#if defined(__AVX512F__) && (defined(__GNUC__) || defined(__clang__))
            if (R > 1)
                __asm__("" : "+v"(bv[j]));
#elif (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__) && defined(__GNUC__)
            if (R > 1)
                __asm__("" : "+x"(bv[j]));
#endif
        }
        const T *rp = TR ? rows[p] + col : 0;
        for (int i = 0; i < R; i++) {
            T s = TR ? rp[i] : ra[i][p];
            for (int j = 0; j < J; j++)
                acc[i][j] += s * bv[j];
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < J; j++) {
            *(V *)(C + i * ldc + j * VL) = acc[i][j];
            if (sq)
                *sq += acc[i][j] * acc[i][j];
        }
}

#define TILE_J(TR, R)                                                                      \
    switch (J) {                                                                           \
    case 4: F(tile)(TR, R, 4, rw, cc, Bj, ldb, P, bj, Cj, ldc, sq); break;                 \
    case 3: F(tile)(TR, R, 3, rw, cc, Bj, ldb, P, bj, Cj, ldc, sq); break;                 \
    case 2: F(tile)(TR, R, 2, rw, cc, Bj, ldb, P, bj, Cj, ldc, sq); break;                 \
    default: F(tile)(TR, R, 1, rw, cc, Bj, ldb, P, bj, Cj, ldc, sq); break;                \
    }
#define TILE_RJ(TR)                                                                        \
    switch (R) {                                                                           \
    case 4: TILE_J(TR, 4) break;                                                           \
    case 3: TILE_J(TR, 3) break;                                                           \
    case 2: TILE_J(TR, 2) break;                                                           \
    default: TILE_J(TR, 1) break;                                                          \
    }

/* c = bias + sum_{p < P} a[p] B[p] for one row a (gemm's with n_rows 1, not TR): the sum
 * split four ways by p mod 4 (added up in a fixed order at the end), so that a few vectors'
 * multiply-adds are not one chain each, waiting on the one before. */
static inline __attribute__((always_inline)) void F(gemv_tile)(const int J, const T *a,
                                                               const T *B, int64_t ldb,
                                                               int64_t P, const T *bias, T *c)
{
    V acc[4][4];
    for (int u = 0; u < 4; u++)
        for (int j = 0; j < J; j++)
            acc[u][j] = (V){0};
    int64_t p = 0;
    for (; p + 4 <= P; p += 4)
        for (int u = 0; u < 4; u++) {
            const V *b = (const V *)(B + (p + u) * ldb);
            for (int j = 0; j < J; j++)
                acc[u][j] += a[p + u] * b[j];
        }
    for (; p < P; p++) {
        const V *b = (const V *)(B + p * ldb);
        for (int j = 0; j < J; j++)
            acc[0][j] += a[p] * b[j];
    }
    for (int j = 0; j < J; j++) {
        V sum = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]);
        ((V *)c)[j] = bias ? sum + *(const V *)(bias + j * VL) : sum;
    }
}

static void F(gemv)(int64_t width, const T *a, const T *B, int64_t ldb, int64_t P,
                    const T *bias, T *c)
{
    int64_t nv = width / VL;
    for (int64_t j0 = 0; j0 < nv; j0 += TJ) {
        int J = nv - j0 < TJ ? (int)(nv - j0) : TJ;
        const T *Bj = B + j0 * VL, *bj = bias ? bias + j0 * VL : 0;
        T *cj = c + j0 * VL;
        switch (J) {
        case 4: F(gemv_tile)(4, a, Bj, ldb, P, bj, cj); break;
        case 3: F(gemv_tile)(3, a, Bj, ldb, P, bj, cj); break;
        case 2: F(gemv_tile)(2, a, Bj, ldb, P, bj, cj); break;
        default: F(gemv_tile)(1, a, Bj, ldb, P, bj, cj); break;
        }
    }
}

/* C (n_rows x width, row stride ldc) = A B (+ bias), B (P x width, row stride ldb). A's row
 * i is rows[i] from column col on; with TR, A is the transpose of rows[0..P) from column col
 * on (C's row i is their column col + i). width is a whole number of vectors. With sq_out,
 * the sum of the squares of C is added to it. */
static void F(gemm)(const int TR, int64_t n_rows, int64_t width, const T *const *rows,
                    int64_t col, const T *B, int64_t ldb, int64_t P, const T *bias, T *C,
                    int64_t ldc, double *sq_out)
{
    V total = {0};
    V *sq = sq_out ? &total : 0;
    int64_t nv = width / VL;
    for (int64_t i0 = 0; i0 < n_rows; i0 += 4) {
        int R = n_rows - i0 < 4 ? (int)(n_rows - i0) : 4;
        const T *const *rw = TR ? rows : rows + i0;
        int64_t cc = TR ? col + i0 : col;
        for (int64_t j0 = 0; j0 < nv; j0 += TJ) {
            int J = nv - j0 < TJ ? (int)(nv - j0) : TJ;
            const T *Bj = B + j0 * VL;
            const T *bj = bias ? bias + j0 * VL : 0;
            T *Cj = C + i0 * ldc + j0 * VL;
            if (TR) {
                TILE_RJ(1)
            } else {
                TILE_RJ(0)
            }
        }
    }
    if (sq_out) {
        double s = 0;
        for (int64_t k = 0; k < VL; k++)
            s += total[k];
        *sq_out += s;
    }
}

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector) && (LANES == 16 || LANES == 8)
#define HSUMS 1
#endif
#endif
#ifdef HSUMS
#define SH __builtin_shufflevector
/* The LANES sums of LANES vectors at once: lane i of the result is the sum of acc[i]'s lanes,
 * by a tree of shuffles and adds (each level halves the partial sums per row and doubles the
 * rows per vector) instead of LANES sums of LANES - 1 serial adds each. */
static inline __attribute__((always_inline)) V F(hsums)(const V *acc)
{
#if LANES == 16
    V a[8], b[4], c[2];
    for (int q = 0; q < 8; q++)
        a[q] = SH(acc[2 * q], acc[2 * q + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22,
                  23)
               + SH(acc[2 * q], acc[2 * q + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28,
                    29, 30, 31);
    for (int q = 0; q < 4; q++)
        b[q] = SH(a[2 * q], a[2 * q + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
               + SH(a[2 * q], a[2 * q + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29,
                    30, 31);
    for (int q = 0; q < 2; q++)
        c[q] = SH(b[2 * q], b[2 * q + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29)
               + SH(b[2 * q], b[2 * q + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27,
                    30, 31);
    return SH(c[0], c[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
           + SH(c[0], c[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#else
    V a[4], b[2];
    for (int q = 0; q < 4; q++)
        a[q] = SH(acc[2 * q], acc[2 * q + 1], 0, 1, 2, 3, 8, 9, 10, 11)
               + SH(acc[2 * q], acc[2 * q + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    for (int q = 0; q < 2; q++)
        b[q] = SH(a[2 * q], a[2 * q + 1], 0, 1, 4, 5, 8, 9, 12, 13)
               + SH(a[2 * q], a[2 * q + 1], 2, 3, 6, 7, 10, 11, 14, 15);
    return SH(b[0], b[1], 0, 2, 4, 6, 8, 10, 12, 14) + SH(b[0], b[1], 1, 3, 5, 7, 9, 11, 13, 15);
#endif
}
#undef SH
#endif

/* C (m x n_i, row stride ldc) = D W^T for D's m rows drows[r] and W (n_i x s): each entry a
 * dot product over s (a whole number of vectors; the padding is zero in both): VL of W's
 * rows at a time, their lanes summed together (hsums), where the compiler has the shuffles;
 * else four at a time. For a few rows this beats a product through W^T, whose copy must be
 * remade after every update (NT_ROWS). */
static void F(gemm_nt)(int64_t m, int64_t n_i, int64_t s, const T *const *drows, const T *W,
                       T *C, int64_t ldc)
{
    int64_t nv = s / VL;
    for (int64_t r = 0; r < m; r++) {
        const V *d = (const V *)drows[r];
        T *c = C + r * ldc;
        int64_t i0 = 0;
#ifdef HSUMS
        for (; i0 < n_i; i0 += VL) { /* VL of W's rows at a time (the last: those left) */
            int64_t I = n_i - i0 < VL ? n_i - i0 : VL;
            V acc[VL];
            for (int ii = 0; ii < VL; ii++)
                acc[ii] = (V){0};
            if (I == VL)
                for (int64_t v = 0; v < nv; v++) {
                    V dv = d[v];
                    for (int ii = 0; ii < VL; ii++)
                        acc[ii] += dv * ((const V *)(W + (i0 + ii) * s))[v];
                }
            else
                for (int64_t v = 0; v < nv; v++) {
                    V dv = d[v];
                    for (int64_t ii = 0; ii < I; ii++)
                        acc[ii] += dv * ((const V *)(W + (i0 + ii) * s))[v];
                }
            V sums = F(hsums)(acc);
            memcpy(c + i0, &sums, (size_t)I * sizeof(T));
        }
#endif
        for (; i0 < n_i; i0 += 4) {
            int I = n_i - i0 < 4 ? (int)(n_i - i0) : 4;
            V acc[4] = {{0}};
            for (int64_t v = 0; v < nv; v++) {
                V dv = d[v];
                for (int ii = 0; ii < I; ii++)
                    acc[ii] += dv * ((const V *)(W + (i0 + ii) * s))[v];
            }
            for (int ii = 0; ii < I; ii++) {
                T t = 0;
                for (int64_t k = 0; k < VL; k++)
                    t += acc[ii][k];
                c[i0 + ii] = t;
            }
        }
    }
}

#if defined(__has_builtin)
#if __has_builtin(__builtin_convertvector)
#define HAVE_VEXP 1
#endif
#endif
#ifdef HAVE_VEXP
typedef ITYPE F(ivec) __attribute__((vector_size(VBYTES))); /* T's bits, lane for lane */
/* The exponential functions a vector at a time, instead of a call to the C library's exp or
 * tanh for each value (which vectorize only under -ffast-math): sigmoid and softmax networks
 * train about twice as fast, tanh ones four times (README, Performance). As Cephes computes
 * them: x = n ln 2 + r, |r| <= ln 2 / 2, e^r by a polynomial (float: degree 7) or a rational
 * function (double), times 2^n put in the exponent's bits; within about 2.3 ulp of the exact
 * value (tests/test_fused.py allows 4).
 *
 * exp(x) for x <= 0 (softmax's z - max z, sigmoid's -|z|, tanh's -2|z|); 0 below the smallest
 * normal value's log; NaN stays NaN. */
static inline V F(vexp)(V x)
{
    typedef F(ivec) I;
#if LANES * 4 == VBYTES /* float */
    const T lo = -87.3365478515625f, magic = 12582912.0f, c1 = 0.693359375f, c2 = -2.12194440e-4f;
#else
    const T lo = -708.39641853226408, magic = 6755399441055744.0;
    const T c1 = 6.93145751953125e-1, c2 = 1.42860682030941723212e-6;
#endif
    I under = x < lo, over = x > 0; /* above 0: 0 (softmax's padding lanes, thrown away) */
    x = (V)(((I)x & ~under & ~over) | ((I)((V){0} + lo) & under));
    V nf = (x * (T)1.4426950408889634074 + magic) - magic; /* x / ln 2 to the nearest integer */
    V r = x - nf * c1;
    r = r - nf * c2;
#if LANES * 4 == VBYTES
    V p = (V){0} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    I bits = (__builtin_convertvector(nf, I) + 127) << 23;
#else
    V q = r * r;
    V px = r * ((q * 1.26177193074810590878e-4 + 3.02994407707441961300e-2) * q
                + 9.99999999999999999910e-1);
    V qx = ((q * 3.00198505138664455042e-6 + 2.52448340349684104192e-3) * q
            + 2.27265548208155028766e-1) * q + 2.00000000000000000009e0;
    V p = (px / (qx - px)) * 2.0 + 1.0;
    I bits = (__builtin_convertvector(nf, I) + 1023) << 52;
#endif
    V y = p * (V)bits;
    return (V)((I)y & ~under);
}

/* sigmoid: 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) below, e^-|z| by vexp; NaN stays NaN. */
static inline V F(vsigmoid)(V z)
{
    typedef F(ivec) I;
    V one = (V){0} + (T)1;
    I neg = z < 0;
    V e = F(vexp)((V)((I)z | ((I){0} + SIGNBIT))); /* e^-|z|: z with its sign bit set */
    return (V)(((I)e & neg) | ((I)one & ~neg)) / (one + e);
}

/* tanh, as Cephes' tanh and tanhf: near 0 an odd polynomial (float) or rational function
 * (double), above sign(z) (1 - e) / (1 + e) with e = e^-2|z| by vexp; NaN stays NaN. */
static inline V F(vtanh)(V z)
{
    typedef F(ivec) I;
    V one = (V){0} + (T)1, q = z * z, near;
#if LANES * 4 == VBYTES
    const T edge = 0.5493f;
    V poly = (V){0} - 5.70498872745e-3f;
    poly = poly * q + 2.06390887954e-2f;
    poly = poly * q - 5.37397155531e-2f;
    poly = poly * q + 1.33314422036e-1f;
    poly = poly * q - 3.33332819422e-1f;
    near = poly * q * z + z;
#else
    const T edge = 0.625;
    V pp = (q * -9.64399179425052238628e-1 - 9.92877231001918586564e1) * q
           - 1.61468768441708447952e3;
    V qq = ((q + 1.12811678491632931402e2) * q + 2.23548839060100448583e3) * q
           + 4.84406305325125486048e3;
    near = z * q * (pp / qq) + z;
#endif
    I sign = (I)z & ((I){0} + SIGNBIT), small = (z < edge) & (z > -edge);
    V az = (V)((I)z & ~sign), e = F(vexp)((V){0} - (az + az));
    V big = (V)((I)((one - e) / (one + e)) | sign);
    return (V)(((I)near & small) | ((I)big & ~small));
}

/* h[j] = f(z[j] - shift) for j < n, a vector at a time (z's row padded to whole vectors;
 * h's lanes past n left as they are). */
static inline void F(vector_rows)(V (*f)(V), const T *z, T shift, T *h, int64_t n)
{
    for (int64_t j0 = 0; j0 < n; j0 += VL) {
        T o[VL];
        V v = f(*(const V *)(z + j0) - shift);
        memcpy(o, &v, sizeof v);
        for (int64_t j = j0; j < n && j < j0 + VL; j++)
            h[j] = o[j - j0];
    }
}
#endif

/* sigma(z) for an elementwise activation, over n values. */
static void F(activate)(int act, T param, const T *z, T *h, int64_t n)
{
    switch (act) {
    case ACT_RELU:
        for (int64_t j = 0; j < n; j++)
            h[j] = z[j] > 0 ? z[j] : (z[j] == z[j] ? (T)0 : z[j]);
        break;
    case ACT_LEAKY_RELU:
        for (int64_t j = 0; j < n; j++)
            h[j] = z[j] * (z[j] > 0 ? (T)1 : param);
        break;
    case ACT_SIGMOID:
#ifdef HAVE_VEXP
        F(vector_rows)(F(vsigmoid), z, 0, h, n);
        break;
#endif
        for (int64_t j = 0; j < n; j++) {
            T e = EXP(-fabs(z[j]));
            h[j] = (z[j] >= 0 ? (T)1 : e) / ((T)1 + e);
        }
        break;
    case ACT_TANH:
#ifdef HAVE_VEXP
        F(vector_rows)(F(vtanh), z, 0, h, n);
        break;
#endif
        for (int64_t j = 0; j < n; j++)
            h[j] = TANH(z[j]);
        break;
    case ACT_ELU:
        for (int64_t j = 0; j < n; j++)
            h[j] = z[j] > 0 ? z[j] : param * EXPM1(z[j] < 0 ? z[j] : (T)0);
        break;
    case ACT_SOFTPLUS:
        for (int64_t j = 0; j < n; j++)
            h[j] = (z[j] > 0 ? z[j] : (T)0) + LOG1P(EXP(-fabs(z[j])));
        break;
    case ACT_GELU:
        for (int64_t j = 0; j < n; j++)
            h[j] = z[j] * ((T)0.5 * ((T)1 + ERF(z[j] * (T)0.70710678118654752440)));
        break;
    case ACT_SOFTMAX: {
        T top = z[0];
        for (int64_t j = 1; j < n; j++)
            top = z[j] > top ? z[j] : top;
#ifdef HAVE_VEXP
        F(vector_rows)(F(vexp), z, top, h, n);
#else
        for (int64_t j = 0; j < n; j++)
            h[j] = EXP(z[j] - top);
#endif
        T sum = 0;
        for (int64_t j = 0; j < n; j++)
            sum += h[j];
        for (int64_t j = 0; j < n; j++)
            h[j] /= sum;
        break;
    }
    default:
        memcpy(h, z, (size_t)n * sizeof(T));
    }
}

/* delta = g * sigma'(z) over n values (d may be g); softmax: its Jacobian's product. */
static void F(derive)(int act, T param, const T *z, const T *h, const T *g, T *d, int64_t n)
{
    switch (act) {
    case ACT_RELU:
        for (int64_t j = 0; j < n; j++)
            d[j] = g[j] * (T)(h[j] > 0);
        break;
    case ACT_LEAKY_RELU:
        for (int64_t j = 0; j < n; j++)
            d[j] = g[j] * (z[j] > 0 ? (T)1 : param);
        break;
    case ACT_SIGMOID:
        for (int64_t j = 0; j < n; j++)
            d[j] = g[j] * (h[j] * ((T)1 - h[j]));
        break;
    case ACT_TANH:
        for (int64_t j = 0; j < n; j++)
            d[j] = g[j] * ((T)1 - h[j] * h[j]);
        break;
    case ACT_ELU:
        for (int64_t j = 0; j < n; j++)
            d[j] = g[j] * (z[j] > 0 ? (T)1 : h[j] + param);
        break;
    case ACT_SOFTPLUS:
        for (int64_t j = 0; j < n; j++) {
            T e = EXP(-fabs(z[j]));
            d[j] = g[j] * ((z[j] >= 0 ? (T)1 : e) / ((T)1 + e));
        }
        break;
    case ACT_GELU:
        for (int64_t j = 0; j < n; j++) {
            T cdf = (T)0.5 * ((T)1 + ERF(z[j] * (T)0.70710678118654752440));
            T pdf = EXP((T)-0.5 * z[j] * z[j]) * (T)0.39894228040143267794;
            d[j] = g[j] * (cdf + z[j] * pdf);
        }
        break;
    case ACT_SOFTMAX: {
        T dot = 0;
        for (int64_t j = 0; j < n; j++)
            dot += g[j] * h[j];
        for (int64_t j = 0; j < n; j++)
            d[j] = (g[j] - dot) * h[j];
        break;
    }
    default:
        if (d != g)
            memcpy(d, g, (size_t)n * sizeof(T));
    }
}


/* Forward through every layer for rows r0 .. r1 - 1 of the batch's m rows, xrows its rows of
 * X; each layer's rows of a^l into arows + l * batch; uniforms: the dropout layers' draws,
 * m x fan_out each. A row's values do not depend on which rows go with it. */
static void F(forward)(Net *net, const T *const *xrows, int64_t m, int64_t r0, int64_t r1,
                       const T *uniforms, const T **arows)
{
    const T *const *in = xrows;
    for (int64_t l = 0; l < net->n_layers; l++) {
        Layer *L = net->layers + l;
        int64_t s = L->stride, k = L->fan_out;
        T *z = L->z, *h = L->h, *a = L->a;
        if (r1 - r0 == 1 && net->batch == 1)
            F(gemv)(s, in[0], L->W, s, L->fan_in, L->b, z);
        else
            F(gemm)(0, r1 - r0, s, in + r0, 0, L->W, s, L->fan_in, L->b, z + r0 * s, s, 0);
        const T *u = 0;
        T p = (T)L->dropout, scale = 0;
        if (L->dropout > 0) {
            u = uniforms;
            uniforms += m * k;
            scale = (T)(1.0 / (1.0 - L->dropout)); /* 0 or 1/(1 - p), as sample_masks */
        }
        const T **out = arows + l * net->batch;
        for (int64_t r = r0; r < r1; r++) {
            T *hr = h + r * s, *ar = a + r * s;
            F(activate)(L->act, (T)L->act_param, z + r * s, hr, k);
            if (u) {
                T *mr = (T *)L->mask + r * s;
                const T *ur = u + r * k;
                for (int64_t j = 0; j < k; j++) {
                    mr[j] = (ur[j] >= p) * scale;
                    ar[j] = hr[j] * mr[j];
                }
            } else if (ar != hr) {
                memcpy(ar, hr, (size_t)k * sizeof(T));
            }
            if (L->residual) {
                const T *prev = in[r];
                for (int64_t j = 0; j < k; j++)
                    ar[j] += prev[j];
            }
            out[r] = ar;
        }
        in = out;
    }
}

/* The index of the first largest value, NaN counting as largest (numpy.argmax). */
static int64_t F(argmax)(const T *x, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 0; j < k; j++) {
        if (x[j] != x[j])
            return j;
        if (x[j] > x[best])
            best = j;
    }
    return best;
}

/* Loss.value's row c_i; the output error delta^L into the last layer's g (BP1, fused for
 * softmax + cross-entropy and sigmoid + binary cross-entropy) before any row weight. */
static double F(row_loss)(const Net *net, const Layer *L, int64_t r, const void *targets,
                          int64_t row, T inv, T m)
{
    int64_t s = L->stride, k = L->fan_out;
    const T *z = (const T *)L->z + r * s, *h = (const T *)L->h + r * s;
    T *g = (T *)L->g + r * s;
    double c = 0;
    if (net->loss == LOSS_CROSS_ENTROPY) {
        int64_t y = ((const int64_t *)targets)[row];
        /* -log a_y, or from the logits where a_y is too small for its log to be accurate */
        if (h[y] > (T)1e-30) {
            c = -log((double)h[y]);
        } else {
            T top = z[0];
            for (int64_t j = 1; j < k; j++)
                top = z[j] > top ? z[j] : top;
            double se = 0;
            for (int64_t j = 0; j < k; j++)
                se += exp((double)(z[j] - top));
            c = log(se) - (double)(z[y] - top);
        }
        if (L->act == ACT_SOFTMAX) { /* (a - onehot(y)) / n */
            for (int64_t j = 0; j < k; j++)
                g[j] = (h[j] - (T)(j == y)) * inv;
        } else {
            for (int64_t j = 0; j < k; j++)
                g[j] = 0;
            T hy = h[y] > TINY ? h[y] : TINY;
            g[y] = (T)-1.0 / (hy * m);
        }
        return c;
    }
    const T *y = (const T *)targets + row * k;
    for (int64_t j = 0; j < k; j++) {
        T d = h[j] - y[j], ad = d < 0 ? -d : d;
        switch (net->loss) {
        case LOSS_BINARY_CROSS_ENTROPY: /* from the logits, as binary_cross_entropy_with_logits */
            c += (double)((z[j] > 0 ? z[j] : (T)0) - z[j] * y[j] + LOG1P(EXP(-fabs(z[j]))));
            g[j] = d * inv; /* sigmoid' cancelled: (a - y) / (n k) */
            break;
        case LOSS_MSE:
            c += (double)(d * d);
            g[j] = d * (inv + inv);
            break;
        case LOSS_MAE:
            c += (double)ad;
            g[j] = (T)((d > 0) - (d < 0)) * inv;
            if (d != d)
                g[j] = d;
            break;
        default: { /* huber */
            T delta = (T)net->huber_delta, q = ad < delta ? ad : delta;
            c += (double)((T)0.5 * q * q + delta * (ad - q));
            g[j] = (d < -delta ? -delta : (d > delta ? delta : d)) * inv;
        }
        }
    }
    return c / (double)k;
}

/* delta^L into the last layer's g for rows r0 .. r1 - 1 of the batch's m (wsum: the batch's
 * row weights' sum), and what the record counts added into *correct and ss[k]; returns the
 * rows' sum of losses (times their weights). */
static double F(output_error)(Net *net, const int64_t *idx, int64_t m, int64_t r0, int64_t r1,
                              const void *targets, const T *w, T wsum, int64_t *correct,
                              double *ss)
{
    Layer *L = net->layers + net->n_layers - 1;
    int64_t s = L->stride, k = L->fan_out;
    int fused = (net->loss == LOSS_CROSS_ENTROPY && L->act == ACT_SOFTMAX)
                || (net->loss == LOSS_BINARY_CROSS_ENTROPY && L->act == ACT_SIGMOID);
    T inv = (T)(1.0 / (double)(net->loss == LOSS_CROSS_ENTROPY ? m : m * k));
    T wscale = w ? (T)m / wsum : (T)0;
    double total = 0;
    for (int64_t r = r0; r < r1; r++) {
        int64_t row = idx[r];
        double c = F(row_loss)(net, L, r, targets, row, inv, (T)m);
        T *g = (T *)L->g + r * s;
        const T *h = (const T *)L->h + r * s;
        if (!fused)
            F(derive)(L->act, (T)L->act_param, (const T *)L->z + r * s, h, g, g, k);
        if (w) {
            T f = w[row] * wscale;
            for (int64_t j = 0; j < k; j++)
                g[j] *= f;
            c *= (double)w[row];
        }
        total += c;
        if (net->classify == CLASSIFY_MULTILABEL) { /* every label of the row right */
            const T *y = (const T *)targets + row * k;
            int right = 1;
            for (int64_t j = 0; j < k; j++)
                right &= (h[j] >= (T)0.5) == (y[j] >= (T)0.5);
            *correct += right;
        } else if (net->classify) { /* metrics.count_correct: class indices of both */
            const T *y = (const T *)targets + row * k;
            int64_t want = net->loss == LOSS_CROSS_ENTROPY ? ((const int64_t *)targets)[row]
                           : k == 1                        ? (int64_t)y[0]
                                                           : F(argmax)(y, k);
            int64_t got = k == 1 ? (int64_t)(h[0] >= (T)0.5) : F(argmax)(h, k);
            *correct += got == want;
        } else {
            const T *y = (const T *)targets + row * k;
            for (int64_t j = 0; j < k; j++) {
                double e = (double)(y[j] - h[j]);
                ss[j] += e * e;
            }
        }
    }
    return total;
}

/* delta^l of layer l: its g, or its d where g must survive it or be masked. */
static inline const T *F(delta_of)(const Net *net, int64_t l)
{
    const Layer *L = net->layers + l;
    return (l == net->n_layers - 1 || !(L->dropout > 0 || L->residual)) ? (const T *)L->g
                                                                         : (const T *)L->d;
}

/* The delta^l of rows r0 .. r1 - 1 for every layer below the output (BP2), from delta^L in
 * the last layer's g, down through dC/da^(l-1) = delta^l W^l^T. */
static void F(chain)(Net *net, int64_t r0, int64_t r1, const T **drows)
{
    for (int64_t l = net->n_layers - 1; l >= 1; l--) {
        Layer *L = net->layers + l, *P = L - 1;
        int64_t s = L->stride, ps = P->stride, k = P->fan_out;
        const T *delta = F(delta_of)(net, l);
        for (int64_t r = r0; r < r1; r++)
            drows[r] = delta + r * s;
        /* through the transposed copy, or for a few rows as dot products of delta's rows with
         * W's (no copy to keep) */
        if (net->batch <= NT_ROWS)
            F(gemm_nt)(r1 - r0, L->fan_in, s, drows + r0, L->W, (T *)P->g + r0 * ps, ps);
        else
            F(gemm)(0, r1 - r0, ps, drows + r0, 0, L->WT, ps, L->fan_out, 0,
                    (T *)P->g + r0 * ps, ps, 0);
        for (int64_t r = r0; r < r1; r++) {
            T *g = (T *)P->g + r * ps;
            if (L->residual) { /* the skip connection passes dC/da^l straight through */
                const T *gl = (const T *)L->g + r * s;
                for (int64_t j = 0; j < k; j++)
                    g[j] += gl[j];
            }
            T *d = (P->dropout > 0 || P->residual) ? (T *)P->d + r * ps : g;
            const T *gh = g;
            if (P->dropout > 0) { /* dC/dsigma(z) = dC/da * mask */
                const T *mr = (const T *)P->mask + r * ps;
                for (int64_t j = 0; j < k; j++)
                    d[j] = g[j] * mr[j];
                gh = d;
            }
            F(derive)(P->act, (T)P->act_param, (const T *)P->z + r * ps,
                      (const T *)P->h + r * ps, gh, d, k); /* BP2 */
        }
    }
}

/* BP4: dC/db = the sum of delta's m rows (s values each), row after row. */
static inline void F(bias_grad)(T *gb, const T *delta, int64_t m, int64_t s)
{
    for (int64_t j = 0; j < s; j++)
        gb[j] = 0;
    for (int64_t r = 0; r < m; r++) {
        const T *dr = delta + r * s;
        for (int64_t j = 0; j < s; j++)
            gb[j] += dr[j];
    }
}

/* BP3 for rows i of every dC/dW^l in part `part` of `parts` (W's rows split at a multiple
 * of 4), the sum of their squares into sqw[l]; part 0 also BP4, each dC/db^l, and the sum of
 * its squares into sqb[l]. */
static void F(grads)(Net *net, const T *const *xrows, int64_t m, const T **arows, int part,
                     int parts, double *sqw, double *sqb)
{
    for (int64_t l = 0; l < net->n_layers; l++) {
        Layer *L = net->layers + l;
        int64_t s = L->stride, half = parts > 1 ? L->fan_in / 2 / 4 * 4 : L->fan_in;
        int64_t i0 = part ? half : 0, i1 = part ? L->fan_in : half;
        const T *delta = F(delta_of)(net, l);
        const T *const *in = l ? arows + (l - 1) * net->batch : xrows;
        sqw[l] = 0;
        if (i1 > i0)
            F(gemm)(1, i1 - i0, s, in, i0, delta, s, m, 0, (T *)L->gW + i0 * s, s, sqw + l);
        if (part)
            continue;
        T *gb = L->gb;
        F(bias_grad)(gb, delta, m, s);
        sqb[l] = 0;
        for (int64_t j = 0; j < s; j++)
            sqb[l] += (double)(gb[j] * gb[j]);
    }
}

#ifdef HSUMS
/* rows_out rows of a VL x VL block of W^T (row stride ts) from the block of W at W (row
 * stride s): the matrix's VL rows as vectors, interleaved pairwise (row k with row k + VL/2)
 * log2(VL) times, which rotates each value's (row, lane) bits until row and lane have
 * swapped: the transpose, in 64 two-vector shuffles for float's 256 values. */
static inline __attribute__((always_inline)) void F(transpose_block)(const T *W, int64_t s,
                                                                     T *WT, int64_t ts,
                                                                     int64_t rows_out)
{
    V r[VL], o[VL];
    for (int i = 0; i < VL; i++)
        r[i] = *(const V *)(W + i * s);
    for (int level = 0; level < (VL == 16 ? 4 : 3); level++) {
        for (int k = 0; k < VL / 2; k++) {
#if LANES == 16
            o[2 * k] = __builtin_shufflevector(r[k], r[k + 8], 0, 16, 1, 17, 2, 18, 3, 19, 4,
                                               20, 5, 21, 6, 22, 7, 23);
            o[2 * k + 1] = __builtin_shufflevector(r[k], r[k + 8], 8, 24, 9, 25, 10, 26, 11,
                                                   27, 12, 28, 13, 29, 14, 30, 15, 31);
#else
            o[2 * k] = __builtin_shufflevector(r[k], r[k + 4], 0, 8, 1, 9, 2, 10, 3, 11);
            o[2 * k + 1] = __builtin_shufflevector(r[k], r[k + 4], 4, 12, 5, 13, 6, 14, 7, 15);
#endif
        }
        for (int i = 0; i < VL; i++)
            r[i] = o[i];
    }
    for (int64_t j = 0; j < rows_out; j++)
        *(V *)(WT + j * ts) = r[j];
}
#endif

/* Every layer's W^T copy (fan_out x the previous layer's stride) from W, after an update:
 * by VL x VL blocks of vector shuffles where the compiler has them, the rows of W left over
 * (fan_in not a whole number of VL) one value at a time. */
static void F(transpose)(Net *net)
{
    for (int64_t l = 1; l < net->n_layers; l++) {
        Layer *L = net->layers + l;
        int64_t K = L->fan_in, M = L->fan_out, s = L->stride, ts = (L - 1)->stride, i0 = 0;
        const T *W = L->W;
        T *WT = L->WT;
#ifdef HSUMS
        for (; i0 + VL <= K; i0 += VL)
            for (int64_t j0 = 0; j0 < M; j0 += VL)
                F(transpose_block)(W + i0 * s + j0, s, WT + j0 * ts + i0, ts,
                                   M - j0 < VL ? M - j0 : VL);
#endif
        for (; i0 < K; i0 += 8)
            for (int64_t j0 = 0; j0 < M; j0 += 8)
                for (int64_t i = i0; i < i0 + 8 && i < K; i++)
                    for (int64_t j = j0; j < j0 + 8 && j < M; j++)
                        WT[j * ts + i] = W[i * s + j];
    }
}

/* The optimizer's step over n values from offset o of the packed buffers, their gradients
 * g, with weight decay wd, its scalars computed as optimizers.py computes them (in double,
 * then rounded to T), so that the update is its bits. */
static void F(update_range)(Net *net, int64_t o, int64_t n, const T *g, double wd,
                            const Step *st)
{
    T *p = (T *)net->params + o, *s0 = (T *)net->state0 + o;
    if (net->opt == OPT_SGD) {
        F(sgd)(p, g, s0, n, (T)net->lr, (T)net->momentum, (T)(1.0 - net->dampening), (T)wd,
               st->t == 1, net->nesterov);
        return;
    }
    T *s1 = (T *)net->state1 + o;
    int decoupled = net->opt == OPT_ADAMW;
    F(adam)(p, g, s0, s1, n, (T)(1.0 - net->beta1), (T)(1.0 - net->beta2), (T)net->beta2,
            (T)(1.0 / st->bias2_sqrt), (T)net->eps, (T)(net->lr / st->bias1),
            (T)(decoupled ? 0.0 : wd), (T)(decoupled ? 1.0 - net->lr * wd : 1.0));
}

/* The optimizer's step over the packed buffers' values lo .. hi - 1, from the gradient
 * buffer; without decay_biases, the weight decay on each layer's W alone (the bias ranges
 * updated with none, as optimizers.py's compiled path does it range by range). Elementwise:
 * any split of the buffer gives the same bits. */
static void F(update_span)(Net *net, int64_t lo, int64_t hi, const Step *st)
{
    const T *g = net->grads;
    if (net->decay_biases || net->weight_decay == 0) {
        if (hi > lo)
            F(update_range)(net, lo, hi - lo, g + lo, net->weight_decay, st);
        return;
    }
    for (int64_t l = 0; l < net->n_layers; l++) {
        const Layer *L = net->layers + l;
        int64_t w0 = (const T *)L->W - (const T *)net->params, nw = L->fan_in * L->stride;
        int64_t edges[3] = {w0, w0 + nw, w0 + nw + L->stride};
        for (int q = 0; q < 2; q++) {
            int64_t a = edges[q] > lo ? edges[q] : lo, b = edges[q + 1] < hi ? edges[q + 1] : hi;
            if (b > a)
                F(update_range)(net, a, b - a, g + a, q ? 0.0 : net->weight_decay, st);
        }
    }
}

/* One mini-batch's work, in parts that one or two threads run (run_parts): rows split in
 * two for forward, output error and BP2, W's rows for BP3, the buffer for the update. What
 * the parts add up is combined in a fixed order, so one thread or two give the same bits. */
typedef struct {
    Net *net;
    const T *const *xrows;
    const T **arows, **drows;
    const int64_t *idx;
    const void *targets;
    const T *w, *uniforms;
    T wsum;
    int64_t m;
    Step st;
    int parts;
    double total[2], *ss[2], *sqw[2], *sqb;
    int64_t correct[2];
} F(Batch);

static void F(rows_part)(void *arg, int part)
{
    F(Batch) *c = arg;
    int64_t half = c->parts > 1 ? c->m / 2 : c->m;
    int64_t r0 = part ? half : 0, r1 = part ? c->m : half;
    F(forward)(c->net, c->xrows, c->m, r0, r1, c->uniforms, c->arows);
    c->total[part] = F(output_error)(c->net, c->idx, c->m, r0, r1, c->targets, c->w, c->wsum,
                                     c->correct + part, c->ss[part]);
    F(chain)(c->net, r0, r1, c->drows);
}

static void F(grads_part)(void *arg, int part)
{
    F(Batch) *c = arg;
    F(grads)(c->net, c->xrows, c->m, c->arows, part, c->parts, c->sqw[part], c->sqb);
}

static void F(update_part)(void *arg, int part)
{
    F(Batch) *c = arg;
    Net *net = c->net;
    int64_t half = c->parts > 1 ? net->n_params / 2 / 16 * 16 : net->n_params;
    F(update_span)(net, part ? half : 0, part ? net->n_params : half, &c->st);
}

/* Clipping of n gradients: times coef (clip_grad_norm_'s, 1 for none), then into [-v, v]
 * (clip_grad_value_'s, 0 for none). */
static inline void F(clip)(T *g, int64_t n, T coef, T v)
{
    if (coef != 1)
        for (int64_t i = 0; i < n; i++)
            g[i] *= coef;
    if (v > 0)
        for (int64_t i = 0; i < n; i++)
            g[i] = g[i] < -v ? -v : (g[i] > v ? v : g[i]);
}

/* sum_i x[i] y[i] over n values, in double (eight partial sums, so that it vectorizes). */
static double F(dot64)(const T *x, const T *y, int64_t n)
{
    double acc[8] = {0}, t = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[i + k] * (double)y[i + k];
    for (; i < n; i++)
        t += (double)x[i] * (double)y[i];
    for (int k = 0; k < 8; k++)
        t += acc[k];
    return t;
}

/* sum_{i,j} (sum_r in[r][i] delta[r][j])^2, in double: a layer's squared gradient norm,
 * summed as it is (few_norms, where the rows' dot products cancel). */
static double F(direct_norm)(int64_t K, int64_t s, int64_t m, const T *const *in,
                             const T *delta)
{
    double total = 0;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < s; j++) {
            double g = 0;
            for (int64_t r = 0; r < m; r++)
                g += (double)in[r][i] * (double)delta[r * s + j];
            total += g * g;
        }
    return total;
}

/* For a batch of a few rows (at most NT_ROWS): BP4, each dC/db^l and the sum of its squares
 * into sqb[l], and the sum of the squares of each dC/dW^l = sum_r a_r delta_r^T without
 * forming it, as sum_{r,q} (a_r . a_q)(delta_r . delta_q), into sqw[l] (in double; where
 * it is beyond the largest T, infinite, as T's sum of squares would be). */
static void F(few_norms)(Net *net, const T *const *xrows, int64_t m, const T **arows,
                         double *sqw, double *sqb)
{
    for (int64_t l = 0; l < net->n_layers; l++) {
        Layer *L = net->layers + l;
        int64_t s = L->stride, K = L->fan_in;
        const T *delta = F(delta_of)(net, l);
        const T *const *in = l ? arows + (l - 1) * net->batch : xrows;
        T *gb = L->gb;
        F(bias_grad)(gb, delta, m, s);
        double top = sizeof(T) == 4 ? FLT_MAX : DBL_MAX, q = 0, size = 0;
        sqb[l] = F(dot64)(gb, gb, s);
        sqb[l] = sqb[l] > top ? INFINITY : sqb[l];
        for (int64_t r = 0; r < m; r++)
            for (int64_t r2 = r; r2 < m; r2++) {
                double term = (r2 == r ? 1.0 : 2.0) * F(dot64)(in[r], in[r2], K)
                              * F(dot64)(delta + r * s, delta + r2 * s, s);
                q += term;
                size += fabs(term);
            }
        /* The rows' terms can nearly cancel (the same input with other targets): then q is
         * their rounding, not the norm, and the gradient's squares are summed as they are. */
        if (!(q >= 1e-6 * size))
            q = isfinite(size) ? F(direct_norm)(K, s, m, in, delta) : size;
        sqw[l] = q > top ? INFINITY : q;
    }
}

/* BP3 and the update in one pass, for a batch of a few rows: each chunk of dC/dW^l (the sum
 * over the rows of a_r[i] delta_r[j], in the order of grads' product: the same bits) is made
 * in a buffer that stays in the L1 cache, clipped and applied, instead of being written to
 * the gradient buffer and read back; then the biases' (made by few_norms). The step moves
 * the parameters and state through the cache once instead of three times. */
#define CHUNK 2048
/* out[0 .. len) = sum over the M rows r of a[r] delta[r * s + j] (len a whole number of
 * vectors), in the order of grads' product. */
static inline __attribute__((always_inline)) void F(outer)(const int M, const T *a,
                                                           const T *delta, int64_t s,
                                                           int64_t len, T *out)
{
    for (int64_t u = 0; u < len / VL; u++) {
        V acc = {0};
        for (int r = 0; r < M; r++)
            acc += a[r] * ((const V *)(delta + r * s))[u];
        ((V *)out)[u] = acc;
    }
}

static void F(few_update)(Net *net, const T *const *xrows, int64_t m, const T **arows,
                          T coef, const Step *st)
{
    T buf[CHUNK] __attribute__((aligned(VBYTES)));
    T v = (T)net->clip_value;
    double wd_b = net->decay_biases ? net->weight_decay : 0.0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        Layer *L = net->layers + l;
        int64_t s = L->stride, K = L->fan_in;
        int64_t w0 = (const T *)L->W - (const T *)net->params;
        const T *delta = F(delta_of)(net, l);
        const T *const *in = l ? arows + (l - 1) * net->batch : xrows;
        /* chunks of whole rows of W, or of pieces of one row where a row is longer */
        int64_t rows = s <= CHUNK ? CHUNK / s : 1, piece = s <= CHUNK ? s : CHUNK;
        for (int64_t i0 = 0; i0 < K; i0 += rows) {
            int64_t i1 = K - i0 < rows ? K : i0 + rows;
            for (int64_t j0 = 0; j0 < s; j0 += piece) {
                int64_t len = s - j0 < piece ? s - j0 : piece, n = 0;
                for (int64_t i = i0; i < i1; i++, n += len) {
                    T a[4];
                    for (int64_t r = 0; r < m; r++)
                        a[r] = in[r][i];
                    switch (m) {
                    case 4: F(outer)(4, a, delta + j0, s, len, buf + n); break;
                    case 3: F(outer)(3, a, delta + j0, s, len, buf + n); break;
                    case 2: F(outer)(2, a, delta + j0, s, len, buf + n); break;
                    default: F(outer)(1, a, delta + j0, s, len, buf + n); break;
                    }
                }
                F(clip)(buf, n, coef, v);
                F(update_range)(net, w0 + i0 * s + j0, n, buf, net->weight_decay, st);
            }
        }
        F(clip)(L->gb, s, coef, v);
        F(update_range)(net, w0 + K * s, s, L->gb, wd_b, st);
    }
}

/* Asks for the m rows idx[r] of X (n_features each) to be brought into the cache. */
static void F(prefetch_rows)(const T *X, int64_t n_features, const int64_t *idx, int64_t m)
{
    int64_t bytes = n_features * (int64_t)sizeof(T);
    for (int64_t r = 0; r < m; r++) {
        const char *row = (const char *)(X + idx[r] * n_features);
        for (int64_t o = 0; o < bytes; o += 64)
            __builtin_prefetch(row + o);
    }
}

/* Batches b0 .. b1 - 1 of an epoch: the batch b is rows order[b * batch ...] of X (n rows).
 * Returns how many were done: fewer where a batch's loss or gradient was not finite (that
 * batch is not applied; net->last_loss holds its loss). work: (n_layers + 2) x batch row
 * pointers. A batch of SPLIT_ROWS rows or more is done in two parts, by net->threads threads;
 * a smaller one in one. */
int64_t F(train)(Net *net, const T *X, const void *targets, const T *w, const int64_t *order,
                 int64_t n, int64_t b0, int64_t b1, const T *uniforms, const T **work)
{
    int64_t bs = net->batch, per_row = 0, nl = net->n_layers;
    int64_t k = net->layers[nl - 1].fan_out;
    for (int64_t l = 0; l < nl; l++)
        if (net->layers[l].dropout > 0)
            per_row += net->layers[l].fan_out;
    double sqw[2][nl], sqb[nl], ss[2][k];
    F(Batch) c = {.net = net, .targets = targets, .w = w, .sqb = sqb};
    c.xrows = (const T *const *)work;
    c.arows = work + bs;
    c.drows = work + (nl + 1) * bs;
    c.parts = bs >= SPLIT_ROWS ? 2 : 1;
    c.sqw[0] = sqw[0], c.sqw[1] = sqw[1];
    int threads = c.parts > 1 ? net->threads : 1;
    /* a batch of a few rows: BP3 in the update's pass (few_update) */
    int few = net->fuse_update && bs <= NT_ROWS;
    T coef = 1;
    for (int64_t b = b0; b < b1; b++) {
        const int64_t *idx = order + b * bs;
        int64_t m = n - b * bs < bs ? n - b * bs : bs;
        for (int64_t r = 0; r < m; r++)
            ((const T **)work)[r] = X + idx[r] * net->n_features;
        if (b + 1 < b1) /* the next batch's rows of X on their way into the cache meanwhile */
            F(prefetch_rows)(X, net->n_features, order + (b + 1) * bs,
                             n - (b + 1) * bs < bs ? n - (b + 1) * bs : bs);
        c.idx = idx, c.m = m, c.uniforms = uniforms, c.wsum = 0;
        if (w)
            for (int64_t r = 0; r < m; r++)
                c.wsum += w[idx[r]];
        c.correct[0] = c.correct[1] = 0;
        for (int p = 0; p < 2; p++) {
            c.ss[p] = c.parts > 1 ? ss[p] : net->ss_res;
            if (c.parts > 1)
                memset(ss[p], 0, sizeof ss[p]);
        }
        run_parts(F(rows_part), &c, c.parts, threads);
        uniforms += m * per_row;
        if (few)
            F(few_norms)(net, c.xrows, m, c.arows, sqw[0], sqb);
        else
            run_parts(F(grads_part), &c, c.parts, threads);
        double total = c.total[0] + (c.parts > 1 ? c.total[1] : 0.0), norm2 = 0;
        double value = total / (w ? (double)c.wsum : (double)m), sq[nl];
        for (int64_t l = 0; l < nl; l++) {
            sq[l] = sqw[0][l] + (c.parts > 1 ? sqw[1][l] : 0.0) + sqb[l];
            norm2 += sq[l];
        }
        net->last_loss = value;
        if (!isfinite(value) || !isfinite(norm2)) {
            if (few) /* the gradient buffer holds the batch's gradients, as without few */
                F(grads)(net, c.xrows, m, c.arows, 0, 1, sqw[0], sqb);
            return b - b0;
        }
        net->loss_sum += total;
        net->correct += c.correct[0] + c.correct[1];
        if (c.parts > 1)
            for (int p = 0; p < 2; p++)
                for (int64_t j = 0; j < k; j++)
                    net->ss_res[j] += ss[p][j];
        for (int64_t l = 0; l < nl; l++)
            net->grad_sq[l] += sq[l];
        coef = 1;
        if (net->clip_norm > 0) { /* torch.nn.utils.clip_grad_norm_ */
            double scale = net->clip_norm / (sqrt(norm2) + 1e-6);
            if (scale < 1.0) {
                coef = (T)scale;
                net->clipped++;
            }
        }
        c.st = step_of(net, ++net->t);
        if (few) {
            F(few_update)(net, c.xrows, m, c.arows, coef, &c.st);
            continue;
        }
        F(clip)(net->grads, net->n_params, coef, (T)net->clip_value);
        run_parts(F(update_part), &c, c.parts, threads);
        if (net->batch > NT_ROWS)
            F(transpose)(net);
    }
    if (few && b1 > b0) { /* the gradient buffer: the last batch's gradients, clipped */
        F(grads)(net, c.xrows, c.m, c.arows, 0, 1, sqw[0], sqb);
        F(clip)(net->grads, net->n_params, coef, (T)net->clip_value);
    }
    return b1 - b0;
}

#undef F
#undef V
#undef VL
#undef HAVE_VEXP
#undef HSUMS
