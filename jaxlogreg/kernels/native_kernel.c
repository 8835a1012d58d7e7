/* Single-read gradients of logistic regression for CPUs, as XLA FFI handlers.
 *
 * jaxlogreg.kernels.native compiles this file with the system's C compiler and registers its
 * handlers with XLA; see that module for when they are used.
 *
 * jaxlogreg_rows_value_and_grad_{f32,f64}: X (m, n) row-major, as the user gives it.
 *   inputs   X (m, n), y (m,), s (m,) or () per-example scale, w, b    (X, s, w, b one dtype)
 *            binary:  w (n,), b (), y labels 0/1 of the dtype
 *            softmax: w (n, K), b (K,), y int32 class indices in [0, K)
 *   outputs  J () = Σ_i s_i L_i,  dw = Xᵀ dZ (as w),  db = Σ_i dZ_i (as b)
 *            binary:  L = softplus((1 - 2y) z), z = Xw + b, dz = s ⊙ (σ(z) - y)
 *            softmax: L = logsumexp(Z_i) - Z_iy (never negative), Z = XW + b,
 *                     dZ = s ⊙ (softmax(Z) - onehot(y))
 *   The rows are cut into blocks that fit in the core's L1 cache: for each block the forward
 *   pass reads its rows from memory, the elementwise pass forms the loss and dZ, and the
 *   backward pass forms the block's Xᵀ dZ, reading the rows again from the cache. Binary and
 *   few classes: dot products of rows with the columns of W, then each row times its dZ added
 *   to dW. More classes: both products as a small matrix-product micro-kernel, a tile of rows
 *   (or features) x one vector of classes (K padded with zeros to whole vectors) summed in
 *   registers while the loop runs over the features (or rows), one element of X broadcast
 *   against a contiguous vector of W or dZ: no horizontal sums. The stable log-softmax runs
 *   class-major, along the rows. A class index outside [0, K) is an error, never read past.
 *
 * The L2 term is added by the caller. Work is split into parts (contiguous ranges of blocks;
 * one part for small X) that run on XLA's own thread pool (the FFI's ThreadPool_Schedule), so
 * the kernel never competes with XLA's threads for the cores: the calling thread schedules a
 * task per extra thread, then claims parts itself until none is left, and waits only for parts
 * that another thread has claimed (a task that starts after every part is claimed just
 * returns). Each part sums a block in the parameters' dtype and adds the block's sums to its
 * float64 totals; the caller adds the parts' totals in a fixed order, so results do not depend
 * on which thread ran what.
 */
#include "native_common.h"

enum { MAX_ROWS = 1024, MIN_ROWS = 16, PARTS_PER_THREAD = 4 };
static const int64_t ROWS_CACHE_BYTES = 32 * 1024;  /* a block of rows: within L1 */
static const int64_t MIN_ELEMENTS_PER_PART = 1 << 20; /* smaller parts cost more than they save */

/* Parts: PARTS_PER_THREAD per thread, each of at least MIN_ELEMENTS_PER_PART elements, at
 * most one per block, at least one. */
static int64_t count_parts(int64_t threads, int64_t elements, int64_t blocks) {
  int64_t parts = elements / MIN_ELEMENTS_PER_PART;
  parts = parts < PARTS_PER_THREAD * threads ? parts : PARTS_PER_THREAD * threads;
  parts = parts < blocks ? parts : blocks;
  return parts < 1 || threads == 1 ? 1 : parts;
}

/* NULL when the frame has 5 array inputs and 3 array outputs, else the error `message`. */
static XLA_FFI_Error *check_arity(const XLA_FFI_CallFrame *frame, const char *message) {
  if (frame->args.size != 5 || frame->rets.size != 3) return error(frame, message);
  for (int k = 0; k < 5; k++)
    if (frame->args.types[k] != XLA_FFI_ArgType_BUFFER) return error(frame, message);
  for (int k = 0; k < 3; k++)
    if (frame->rets.types[k] != XLA_FFI_RetType_BUFFER) return error(frame, message);
  return NULL;
}

/* out[i] = Σ_k totals[k * stride + i] for i < count, the parts in order. */
static void store_sums(void *out, const double *totals, int64_t parts, int64_t stride,
                       int64_t count, int itemsize) {
  for (int64_t i = 0; i < count; i++) {
    double total = 0;
    for (int64_t k = 0; k < parts; k++) total += totals[k * stride + i];
    store(out, i, total, itemsize);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* X in rows: X (m, n), binary (K = 1: w (n,), b ()) or softmax (W (n, K), b (K,))            */

typedef struct {
  const void *X, *y, *s, *w, *b;
  int s_per_example, softmax;
  int64_t n, K, begin, end; /* the rows [begin, end) */
  double J;
  double *dw, *db; /* totals: dw (n, K) as W, db (K) */
  int bad_label;   /* a class index outside [0, K) */
  int failed;      /* out of memory */
} RowsTask;

/* Rows per block: the block fills about ROWS_CACHE_BYTES, within [MIN_ROWS, MAX_ROWS]. */
static int64_t block_rows(int64_t n, int64_t itemsize) {
  int64_t rows = n > 0 ? ROWS_CACHE_BYTES / (n * itemsize) : MAX_ROWS;
  return rows < MIN_ROWS ? MIN_ROWS : rows > MAX_ROWS ? MAX_ROWS : rows;
}

/* Vector registers for the softmax tiles (GCC and Clang vector extensions): as wide as this
 * build's instruction set allows (AVX-512, AVX, else 16 bytes, which the compiler splits or
 * maps to SSE2 or NEON). */
#if defined(__AVX512F__)
enum { VECTOR_BYTES = 64 };
#elif defined(__AVX__)
enum { VECTOR_BYTES = 32 };
#else
enum { VECTOR_BYTES = 16 };
#endif
typedef float vec_f32 __attribute__((vector_size(VECTOR_BYTES)));
typedef double vec_f64 __attribute__((vector_size(VECTOR_BYTES)));
enum { TILE_ROWS = 8 }; /* rows of a tile: TILE_ROWS vector sums in registers */

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* Softmax with K classes uses the tiles when K fills enough of a vector of L lanes: at fewer
 * classes the padding costs more than dot products along the features (float32 at 16 lanes,
 * n = 100: dot products faster up to K = 6, the tiles from K = 7). */
#define USE_TILES(K, L) (5 * (K) > 2 * (L))

/* Few classes (binary, K = 1, or softmax short of USE_TILES): Wp (K, n) is Wᵀ;
 * forward:  Z[c S + r] = x_r · Wp[c] + b[c], dot products four rows and two classes at a time
 *           (Z class-major, S: rows a block holds);
 * backward: dWp[c] += Σ_r dZ[r, c] x_r (dZ (B, KP) with KP = K).
 * Softmax with tiles: Wp (n, KP) is W with its classes padded with zeros to KP, a multiple of
 * the vector width, so Zr (B, KP), a block's rows of Z and then of dZ, has zeros in its padding;
 * forward:  Zr[r, c:] = Σ_j X[r, j] Wp[j, c:] + b[c:], a tile of TILE_ROWS rows x one vector
 *           of classes in registers while the loop runs over the features j, then copied to
 *           Z class-major;
 * backward: dWp[j, c:] = Σ_r X[r, j] dZr[r, c:], a tile of TILE_ROWS features x one vector
 *           in registers while the loop runs over the block's rows r;
 * each step broadcasts one element of X against one contiguous vector (no horizontal sums).
 * The elementwise passes run on Z class-major, along the rows, vectorised, whatever K is.
 * binary_ turns z into dz in place, db += Σ dz, and returns Σ s softplus((1 - 2y) z);
 * softmax_ writes dZ to Zr (B, KP), db[c] += Σ_r dZ[r, c], and returns
 * Σ s (logsumexp(Z_r) - Z_ry). */
#define DEFINE_ROWS(SFX, T, V, EXP, LOG1P, LOG)                                                 \
  enum { LANES_##SFX = VECTOR_BYTES / sizeof(T) };                                              \
                                                                                                \
  static void forward_##SFX(const T *X, int64_t n, int64_t K, int64_t B, int64_t S,             \
                            const T *Wt, const T *b, T *Z) {                                    \
    int64_t r = 0;                                                                              \
    for (; r + 4 <= B; r += 4) {                                                                \
      const T *x0 = X + r * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;                        \
      int64_t c = 0;                                                                            \
      for (; c + 2 <= K; c += 2) { /* two classes: eight independent sums */                    \
        const T *u = Wt + c * n, *v = u + n;                                                    \
        T a0 = 0, a1 = 0, a2 = 0, a3 = 0, e0 = 0, e1 = 0, e2 = 0, e3 = 0;                       \
        for (int64_t j = 0; j < n; j++) {                                                       \
          a0 += x0[j] * u[j];                                                                   \
          a1 += x1[j] * u[j];                                                                   \
          a2 += x2[j] * u[j];                                                                   \
          a3 += x3[j] * u[j];                                                                   \
          e0 += x0[j] * v[j];                                                                   \
          e1 += x1[j] * v[j];                                                                   \
          e2 += x2[j] * v[j];                                                                   \
          e3 += x3[j] * v[j];                                                                   \
        }                                                                                       \
        T *z = Z + c * S + r, *z1 = z + S;                                                      \
        z[0] = a0 + b[c]; z[1] = a1 + b[c]; z[2] = a2 + b[c]; z[3] = a3 + b[c];                 \
        z1[0] = e0 + b[c + 1]; z1[1] = e1 + b[c + 1];                                           \
        z1[2] = e2 + b[c + 1]; z1[3] = e3 + b[c + 1];                                           \
      }                                                                                         \
      for (; c < K; c++) {                                                                      \
        const T *u = Wt + c * n;                                                                \
        T a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                       \
        for (int64_t j = 0; j < n; j++) {                                                       \
          a0 += x0[j] * u[j];                                                                   \
          a1 += x1[j] * u[j];                                                                   \
          a2 += x2[j] * u[j];                                                                   \
          a3 += x3[j] * u[j];                                                                   \
        }                                                                                       \
        T *z = Z + c * S + r;                                                                   \
        z[0] = a0 + b[c]; z[1] = a1 + b[c]; z[2] = a2 + b[c]; z[3] = a3 + b[c];                 \
      }                                                                                         \
    }                                                                                           \
    for (; r < B; r++)                                                                          \
      for (int64_t c = 0; c < K; c++) {                                                         \
        const T *x0 = X + r * n, *u = Wt + c * n;                                               \
        T a0 = 0;                                                                               \
        for (int64_t j = 0; j < n; j++) a0 += x0[j] * u[j];                                     \
        Z[c * S + r] = a0 + b[c];                                                               \
      }                                                                                         \
  }                                                                                             \
                                                                                                \
  static void backward_##SFX(const T *X, int64_t n, int64_t K, int64_t B, int64_t KP,           \
                             const T *dZ, T *dWt) {                                             \
    int64_t r = 0;                                                                              \
    for (; r + 4 <= B; r += 4) {                                                                \
      const T *x0 = X + r * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;                        \
      int64_t c = 0;                                                                            \
      for (; c + 2 <= K; c += 2) { /* two classes */                                            \
        const T *d = dZ + r * KP + c, *f = d + 1;                                               \
        const T d0 = d[0], d1 = d[KP], d2 = d[2 * KP], d3 = d[3 * KP], f0 = f[0], f1 = f[KP];   \
        const T f2 = f[2 * KP], f3 = f[3 * KP];                                                 \
        T *restrict u = dWt + c * n, *restrict v = u + n;                                       \
        for (int64_t j = 0; j < n; j++) {                                                       \
          u[j] += d0 * x0[j] + d1 * x1[j] + d2 * x2[j] + d3 * x3[j];                            \
          v[j] += f0 * x0[j] + f1 * x1[j] + f2 * x2[j] + f3 * x3[j];                            \
        }                                                                                       \
      }                                                                                         \
      for (; c < K; c++) {                                                                      \
        const T *d = dZ + r * KP + c, d0 = d[0], d1 = d[KP], d2 = d[2 * KP], d3 = d[3 * KP];    \
        T *restrict u = dWt + c * n;                                                            \
        for (int64_t j = 0; j < n; j++)                                                         \
          u[j] += d0 * x0[j] + d1 * x1[j] + d2 * x2[j] + d3 * x3[j];                            \
      }                                                                                         \
    }                                                                                           \
    for (; r < B; r++)                                                                          \
      for (int64_t c = 0; c < K; c++) {                                                         \
        const T d0 = dZ[r * KP + c], *x0 = X + r * n;                                           \
        T *restrict u = dWt + c * n;                                                            \
        for (int64_t j = 0; j < n; j++) u[j] += d0 * x0[j];                                     \
      }                                                                                         \
  }                                                                                             \
                                                                                                \
  ALWAYS_INLINE void forward_tile_##SFX(const T *X, int64_t n, int64_t KP, const T *Wp,         \
                                        const T *b, int R, T *Zr) {                             \
    for (int64_t c = 0; c < KP; c += LANES_##SFX) {                                             \
      V acc[TILE_ROWS];                                                                         \
      for (int r = 0; r < R; r++) acc[r] = (V){0};                                              \
      for (int64_t j = 0; j < n; j++) {                                                         \
        const V w = *(const V *)(Wp + j * KP + c);                                              \
        __builtin_prefetch(X + R * n + j * R); /* the next tile */                              \
        for (int r = 0; r < R; r++) acc[r] += X[r * n + j] * w;                                 \
      }                                                                                         \
      const V bias = *(const V *)(b + c);                                                       \
      for (int r = 0; r < R; r++) *(V *)(Zr + r * KP + c) = acc[r] + bias;                      \
    }                                                                                           \
  }                                                                                             \
                                                                                                \
  ALWAYS_INLINE void backward_tile_##SFX(const T *X, int64_t n, int64_t KP, int64_t B,          \
                                         const T *dZr, int J, T *dWp) {                         \
    for (int64_t c = 0; c < KP; c += LANES_##SFX) {                                             \
      V acc[TILE_ROWS];                                                                         \
      for (int i = 0; i < J; i++) acc[i] = (V){0};                                              \
      for (int64_t r = 0; r < B; r++) {                                                         \
        const V d = *(const V *)(dZr + r * KP + c);                                             \
        for (int i = 0; i < J; i++) acc[i] += X[r * n + i] * d;                                 \
      }                                                                                         \
      for (int i = 0; i < J; i++) *(V *)(dWp + i * KP + c) = acc[i];                            \
    }                                                                                           \
  }                                                                                             \
                                                                                                \
  static void tile_forward_##SFX(const T *X, int64_t n, int64_t KP, int64_t B, const T *Wp,     \
                                 const T *b, T *Zr) {                                           \
    int64_t r = 0;                                                                              \
    for (; r + TILE_ROWS <= B; r += TILE_ROWS)                                                  \
      forward_tile_##SFX(X + r * n, n, KP, Wp, b, TILE_ROWS, Zr + r * KP);                      \
    for (; r < B; r++) forward_tile_##SFX(X + r * n, n, KP, Wp, b, 1, Zr + r * KP);             \
  }                                                                                             \
                                                                                                \
  static void tile_backward_##SFX(const T *X, int64_t n, int64_t KP, int64_t B, const T *dZr,   \
                                  T *dWp) {                                                     \
    int64_t j = 0;                                                                              \
    for (; j + TILE_ROWS <= n; j += TILE_ROWS)                                                  \
      backward_tile_##SFX(X + j, n, KP, B, dZr, TILE_ROWS, dWp + j * KP);                       \
    for (; j < n; j++) backward_tile_##SFX(X + j, n, KP, B, dZr, 1, dWp + j * KP);              \
  }                                                                                             \
                                                                                                \
  static T binary_##SFX(const RowsTask *t, int64_t r0, int64_t B, T *z, T *db) {                \
    const T *y = (const T *)t->y + r0, *s = (const T *)t->s;                                    \
    T J = 0, dbb = 0; /* a = σ(z) from e = exp(-|z|); L = softplus(tk): no cancellation */      \
    for (int64_t k = 0; k < B; k++) {                                                           \
      const T zk = z[k], e = EXP(zk < 0 ? zk : -zk), r = 1 / (1 + e);                           \
      const T a = zk >= 0 ? r : e * r, sk = t->s_per_example ? s[r0 + k] : s[0];                \
      const T tk = (1 - 2 * y[k]) * zk;                                                         \
      J += sk * (LOG1P(e) + (tk > 0 ? tk : 0));                                                 \
      z[k] = sk * (a - y[k]);                                                                   \
      dbb += z[k];                                                                              \
    }                                                                                           \
    db[0] += dbb;                                                                               \
    return J;                                                                                   \
  }                                                                                             \
                                                                                                \
  /* top, zy, total: B scratch each */                                                          \
  static T softmax_##SFX(RowsTask *t, int64_t r0, int64_t B, int64_t S, int64_t KP, T *Z,       \
                         T *Zr, T *db, T *top, T *zy, T *total) {                               \
    const int32_t *y = (const int32_t *)t->y + r0;                                              \
    const T *s = (const T *)t->s;                                                               \
    const int64_t K = t->K;                                                                     \
    for (int64_t k = 0; k < B; k++) top[k] = Z[k];                                              \
    for (int64_t c = 1; c < K; c++)                                                             \
      for (int64_t k = 0; k < B; k++) top[k] = Z[c * S + k] > top[k] ? Z[c * S + k] : top[k];   \
    for (int64_t k = 0; k < B; k++) { /* Z_ry - max (<= 0); a bad index is never read */        \
      const int bad = y[k] < 0 || y[k] >= K;                                                    \
      t->bad_label |= bad;                                                                      \
      zy[k] = bad ? 0 : Z[y[k] * S + k] - top[k];                                               \
      total[k] = 0;                                                                             \
    }                                                                                           \
    for (int64_t c = 0; c < K; c++) /* exp(Z - max), summed: >= 1 (the largest is exp(0)) */    \
      for (int64_t k = 0; k < B; k++) {                                                         \
        Z[c * S + k] = EXP(Z[c * S + k] - top[k]);                                              \
        total[k] += Z[c * S + k];                                                               \
      }                                                                                         \
    T J = 0;                                                                                    \
    for (int64_t k = 0; k < B; k++) { /* log(Σ) >= 0 and -zy >= 0: L >= 0 */                    \
      const T sk = t->s_per_example ? s[r0 + k] : s[0];                                         \
      J += sk * (LOG(total[k]) - zy[k]);                                                        \
      total[k] = sk / total[k];                                                                 \
    }                                                                                           \
    for (int64_t c = 0; c < K; c++) { /* dZ = s (softmax - onehot), to the rows */              \
      T sum = 0;                                                                                \
      for (int64_t k = 0; k < B; k++) {                                                         \
        const T d = Z[c * S + k] * total[k];                                                    \
        Zr[k * KP + c] = d;                                                                     \
        sum += d;                                                                               \
      }                                                                                         \
      db[c] += sum;                                                                             \
    }                                                                                           \
    for (int64_t k = 0; k < B; k++)                                                             \
      if (y[k] >= 0 && y[k] < K) {                                                              \
        const T sk = t->s_per_example ? s[r0 + k] : s[0];                                       \
        Zr[k * KP + y[k]] -= sk;                                                                \
        db[y[k]] -= sk;                                                                         \
      }                                                                                         \
    return J;                                                                                   \
  }                                                                                             \
                                                                                                \
  /* Zr (B, KP) -> Zc (K, S) */                                                                 \
  static void to_classes_##SFX(const T *Zr, int64_t K, int64_t KP, int64_t B, int64_t S,        \
                               T *Zc) {                                                         \
    for (int64_t c = 0; c < K; c++)                                                             \
      for (int64_t r = 0; r < B; r++) Zc[c * S + r] = Zr[r * KP + c];                           \
  }                                                                                             \
                                                                                                \
  static void rows_task_##SFX(void *task) {                                                     \
    RowsTask *t = (RowsTask *)task;                                                             \
    const T *X = (const T *)t->X, *w = (const T *)t->w, *b = (const T *)t->b;                   \
    const int64_t n = t->n, K = t->K, rows = block_rows(n, sizeof(T)), L = LANES_##SFX;         \
    const int tiles = t->softmax && USE_TILES(K, L);                                            \
    const int64_t KP = tiles ? (K + L - 1) / L * L : K;                                         \
    /* Wp, dWp (n, KP) for tiles, else (K, n); bias (KP), Zr (rows, KP), Zc (K, rows), top, zy, \
     * total (rows), db (K) */                                                                  \
    const size_t count = (size_t)(2 * n * KP + KP + rows * KP + K * rows + 3 * rows + K);       \
    void *memory = NULL;                                                                        \
    if (posix_memalign(&memory, VECTOR_BYTES, sizeof(T) * count) != 0) {                        \
      t->failed = 1;                                                                            \
      return;                                                                                   \
    }                                                                                           \
    T *Wp = (T *)memory, *dWp = Wp + n * KP, *bias = dWp + n * KP, *Zr = bias + KP;             \
    T *Zc = Zr + rows * KP, *top = Zc + K * rows, *zy = top + rows, *total = zy + rows;         \
    T *db = total + rows;                                                                       \
    for (int64_t j = 0; j < n; j++)                                                             \
      for (int64_t c = 0; c < KP; c++)                                                          \
        Wp[tiles ? j * KP + c : c * n + j] = c < K ? w[j * K + c] : 0;                          \
    for (int64_t c = 0; c < KP; c++) bias[c] = c < K ? b[c] : 0;                                \
    memset(t->dw, 0, sizeof(double) * (size_t)(n * K));                                         \
    memset(t->db, 0, sizeof(double) * (size_t)K);                                               \
    double J = 0;                                                                               \
    for (int64_t r0 = t->begin; r0 < t->end; r0 += rows) {                                      \
      const int64_t B = t->end - r0 < rows ? t->end - r0 : rows;                                \
      const T *Xb = X + r0 * n;                                                                 \
      memset(db, 0, sizeof(T) * (size_t)K);                                                     \
      if (tiles) {                                                                              \
        tile_forward_##SFX(Xb, n, KP, B, Wp, bias, Zr);                                         \
        to_classes_##SFX(Zr, K, KP, B, rows, Zc);                                               \
      } else {                                                                                  \
        forward_##SFX(Xb, n, K, B, rows, Wp, bias, Zc);                                         \
      }                                                                                         \
      J += t->softmax ? softmax_##SFX(t, r0, B, rows, KP, Zc, Zr, db, top, zy, total)           \
                      : binary_##SFX(t, r0, B, Zc, db); /* dz in Zc: rows of K = 1 */           \
      if (tiles) {                                                                              \
        tile_backward_##SFX(Xb, n, KP, B, Zr, dWp);                                             \
      } else {                                                                                  \
        memset(dWp, 0, sizeof(T) * (size_t)(n * KP));                                           \
        backward_##SFX(Xb, n, K, B, KP, t->softmax ? Zr : Zc, dWp);                             \
      }                                                                                         \
      if (tiles)                                                                                \
        for (int64_t j = 0; j < n; j++)                                                         \
          for (int64_t c = 0; c < K; c++) t->dw[j * K + c] += dWp[j * KP + c];                  \
      else                                                                                      \
        for (int64_t c = 0; c < K; c++)                                                         \
          for (int64_t j = 0; j < n; j++) t->dw[j * K + c] += dWp[c * n + j];                   \
      for (int64_t c = 0; c < K; c++) t->db[c] += db[c];                                        \
    }                                                                                           \
    t->J = J;                                                                                   \
    free(memory);                                                                               \
  }

DEFINE_ROWS(f32, float, vec_f32, expf, log1pf, logf)
DEFINE_ROWS(f64, double, vec_f64, exp, log1p, log)

static const char ROWS_SHAPES[] =
    "jaxlogreg native gradient (rows): expected X (m, n), y (m,), s (m,) or (), and w (n,), "
    "b () (binary, y of X's dtype) or w (n, K), b (K,) (softmax, y int32), all else of X's "
    "dtype; J (), dw and db shaped as w and b";

/* NULL when the frame holds X (m, n), y, s, w, b and J, dw, db as ROWS_SHAPES says. */
static XLA_FFI_Error *check_rows(const XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype) {
  XLA_FFI_Error *err = check_arity(frame, ROWS_SHAPES);
  if (err != NULL) return err;
  const XLA_FFI_Buffer *X = arg(frame, 0), *y = arg(frame, 1), *s = arg(frame, 2);
  const XLA_FFI_Buffer *w = arg(frame, 3), *b = arg(frame, 4);
  const XLA_FFI_Buffer *J = ret(frame, 0), *dw = ret(frame, 1), *db = ret(frame, 2);
  const int softmax = w->rank == 2;
  const XLA_FFI_DataType y_dtype = softmax ? XLA_FFI_DataType_S32 : dtype;
  int ok = X->dtype == dtype && y->dtype == y_dtype && s->dtype == dtype && w->dtype == dtype &&
           b->dtype == dtype && J->dtype == dtype && dw->dtype == dtype && db->dtype == dtype;
  ok = ok && X->rank == 2 && y->rank == 1 && s->rank <= 1 && J->rank == 0;
  ok = ok && (w->rank == 1 || w->rank == 2) && b->rank == w->rank - 1;
  ok = ok && dw->rank == w->rank && db->rank == b->rank;
  if (!ok) return error(frame, ROWS_SHAPES);
  const int64_t m = X->dims[0], n = X->dims[1], K = softmax ? w->dims[1] : 1;
  ok = y->dims[0] == m && (s->rank == 0 || s->dims[0] == m) && w->dims[0] == n && K >= 1;
  ok = ok && dw->dims[0] == n && (!softmax || (b->dims[0] == K && dw->dims[1] == K &&
                                               db->dims[0] == K));
  return ok ? NULL : error(frame, ROWS_SHAPES);
}

static XLA_FFI_Error *rows_value_and_grad(XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype,
                                          RunPart run) {
  if (frame->extension_start != NULL &&
      frame->extension_start->type == XLA_FFI_Extension_Metadata)
    return metadata(frame);
  if (frame->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;
  XLA_FFI_Error *err = check_rows(frame, dtype);
  if (err != NULL) return err;
  const XLA_FFI_Buffer *X = arg(frame, 0), *s = arg(frame, 2), *w = arg(frame, 3);
  const int softmax = w->rank == 2, itemsize = dtype == XLA_FFI_DataType_F32 ? 4 : 8;
  const int64_t m = X->dims[0], n = X->dims[1], K = softmax ? w->dims[1] : 1;
  const int64_t rows = block_rows(n, itemsize), blocks = (m + rows - 1) / rows;
  const int64_t threads = threads_for(frame);
  const int64_t parts = count_parts(threads, n * m * K, blocks), stride = n * K + K;
  RowsTask *tasks = calloc((size_t)parts, sizeof(RowsTask));
  double *totals = malloc(sizeof(double) * (size_t)(parts * stride));
  int failed = tasks == NULL || totals == NULL;
  for (int64_t k = 0; !failed && k < parts; k++) {
    const int64_t begin = blocks * k / parts * rows, end = blocks * (k + 1) / parts * rows;
    RowsTask part = {X->data, arg(frame, 1)->data, s->data, w->data, arg(frame, 4)->data,
                     s->rank == 1, softmax, n, K, begin < m ? begin : m, end < m ? end : m,
                     0, totals + k * stride, totals + k * stride + n * K, 0, 0};
    tasks[k] = part;
  }
  failed = failed || run_parts(frame, threads, parts, run, tasks, sizeof(RowsTask)) != 0;
  int bad_label = 0;
  double J = 0;
  for (int64_t k = 0; !failed && k < parts; k++) {
    failed |= tasks[k].failed;
    bad_label |= tasks[k].bad_label;
    J += tasks[k].J;
  }
  if (!failed && !bad_label) {
    store(ret(frame, 0)->data, 0, J, itemsize);
    store_sums(ret(frame, 1)->data, totals, parts, stride, n * K, itemsize);
    store_sums(ret(frame, 2)->data, totals + n * K, parts, stride, K, itemsize);
  }
  free(tasks);
  free(totals);
  if (failed) return error(frame, "jaxlogreg native gradient (rows): out of memory");
  if (bad_label) {
    char message[160];
    snprintf(message, sizeof(message),
             "jaxlogreg native gradient (rows): y holds a class index outside [0, %lld)",
             (long long)K);
    return error(frame, message);
  }
  return NULL;
}

XLA_FFI_Error *jaxlogreg_rows_value_and_grad_f32(XLA_FFI_CallFrame *frame) {
  return rows_value_and_grad(frame, XLA_FFI_DataType_F32, rows_task_f32);
}

XLA_FFI_Error *jaxlogreg_rows_value_and_grad_f64(XLA_FFI_CallFrame *frame) {
  return rows_value_and_grad(frame, XLA_FFI_DataType_F64, rows_task_f64);
}
