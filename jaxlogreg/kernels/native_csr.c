/* Gradients and Hessian-vector products of logistic regression on sparse X in CSR, one pass
 * over the non-zeros, as XLA FFI handlers (see jaxlogreg.kernels.native). Row i of X holds
 * data[k] at column indices[k], k in [indptr[i], indptr[i+1]); indptr, indices int32; s (m,) or
 * (); data, s, w, b (v_w, v_b) of one dtype; binary w (n,), b (); softmax w (n, K), b (K,).
 *
 * jaxlogreg_csr_value_and_grad_{f32,f64}(indptr, indices, data, y, s, w, b) -> J, dw, db:
 *   J = Σ_i s_i L_i, dw = Xᵀ dZ, db = Σ_i dZ_i; binary (y 0/1 of the dtype): z_i = x_i·w + b,
 *   L = softplus((1 - 2y) z), dz = s (σ(z) - y); softmax (y int32 in [0, K)): Z_i = Wᵀ x_i + b,
 *   L = logsumexp(Z_i) - Z_iy, dZ_i = s_i (softmax(Z_i) - onehot(y_i)).
 * jaxlogreg_csr_hvp_{f32,f64}(indptr, indices, data, s, w, b, v_w, v_b) -> hv_w, hv_b = Xᵀ dZ,
 *   Σ_i dZ_i (H v): binary dz = s a(1 - a) u, a = σ(z), u_i = x_i·v_w + v_b; softmax
 *   dZ_i = s_i (A ⊙ U_i - A (A·U_i)), A = softmax(Z_i), U_i = V_wᵀ x_i + v_b.
 * Each row is read once: its z (and u, W_j and V_j side by side; or K of each), its dz, then its
 * entries again from the L1 cache to add data[k] dz to dw[indices[k]]. Rows are cut into parts
 * of about equal non-zeros on XLA's thread pool; each part sums its rows' dw (n K) in the dtype,
 * its J and db in float64, and the parts' sums are added in float64 in a fixed order: results do
 * not depend on which thread ran what. Before reading an entry the handler checks the shapes and
 * dtypes, and that indptr starts at 0 or above, never decreases and ends within the entries; an
 * index outside [0, n) or a class outside [0, K) is an error, never read. No L2 term here.
 */
#include "native_common.h"

/* A part reads at least this many entries (a smaller one costs more than it saves), and the
 * parts' accumulators (n K each, zeroed and summed) together stay within the entries. */
static const int64_t CSR_MIN_ENTRIES_PER_PART = 1 << 18;

/* ---------------------------------------------------------------------------------------- */
/* The rows [begin, end) of one part                                                         */

typedef struct {
  const int32_t *indptr, *indices;
  const void *data, *y, *s, *w, *b;
  const void *v_w, *v_b; /* H v's direction (NULL: the gradient); w, v_w in rows [W_j, V_j] */
  int s_per_example, softmax;
  int64_t n, K, begin, end;
  double J;
  void *dw;   /* this part's dw (n, K), in the dtype: float32 dw and w fit in a core's L2 cache */
  double *db; /* this part's db (K) */
  int bad_index, bad_label, failed;
} CsrTask;

/* binary_rows and csr_part serve the gradient (hvp 0) and H v (hvp 1), inlined with a constant
 * hvp: a loop each. Softmax has a function each (merged, the gradient's loop ran slower). */
#define INLINE static inline __attribute__((always_inline))
#define DEFINE_CSR(SFX, T, EXP, LOG1P, LOG)                                                     \
  /* dw[indices[k]] (K) += data[k] dz for the entries [lo, hi) of a row (indices within n) */   \
  INLINE void scatter_##SFX(const CsrTask *t, int64_t lo, int64_t hi, const T *dz, int64_t K) { \
    const int32_t *indices = t->indices;                                                        \
    const T *data = (const T *)t->data;                                                         \
    const uint32_t n = (uint32_t)t->n;                                                          \
    T *restrict dw = (T *)t->dw;                                                                \
    for (int64_t k = lo; k < hi; k++) {                                                         \
      const uint32_t j = (uint32_t)indices[k];                                                  \
      if (j >= n) continue;                                                                     \
      const T x = data[k];                                                                      \
      T *restrict dwj = dw + (int64_t)j * K;                                                    \
      for (int64_t c = 0; c < K; c++) dwj[c] += x * dz[c];                                      \
    }                                                                                           \
  }                                                                                             \
                                                                                                \
  /* gradient: dz = s (a - y) and J; H v: u = x·v_w + v_b from the same entries,                \
   * dz = s a(1 - a) u */                                                                       \
  INLINE void binary_rows_##SFX(CsrTask *t, const int hvp) {                                    \
    const int32_t *indptr = t->indptr, *indices = t->indices;                                   \
    const T *data = (const T *)t->data, *y = (const T *)t->y, *s = (const T *)t->s;             \
    const T *w = (const T *)t->w, b = *(const T *)t->b;                                         \
    const T *v = (const T *)t->v_w, vb = hvp ? *(const T *)t->v_b : 0;                          \
    const uint32_t n = (uint32_t)t->n;                                                          \
    double J = 0, db = 0;                                                                       \
    int bad = 0;                                                                                \
    for (int64_t i = t->begin; i < t->end; i++) {                                               \
      const int64_t lo = indptr[i], hi = indptr[i + 1];                                         \
      T z = b, u = vb;                                                                          \
      for (int64_t k = lo; k < hi; k++) {                                                       \
        const uint32_t j = (uint32_t)indices[k];                                                \
        if (j >= n) {                                                                           \
          bad = 1;                                                                              \
          continue;                                                                             \
        }                                                                                       \
        z += data[k] * w[hvp ? 2 * (int64_t)j : j];                                             \
        if (hvp) u += data[k] * v[2 * (int64_t)j];                                              \
      }                                                                                         \
      /* a = σ(z) from e = exp(-|z|), a(1 - a) = e r²; L = softplus((1 - 2y) z) = log1p(e) +    \
       * max(tz, 0) */                                                                          \
      const T e = EXP(z < 0 ? z : -z), r = 1 / (1 + e), a = z >= 0 ? r : e * r;                 \
      const T si = t->s_per_example ? s[i] : s[0], tz = hvp ? 0 : (1 - 2 * y[i]) * z;           \
      if (!hvp) J += (double)(si * (LOG1P(e) + (tz > 0 ? tz : 0)));                             \
      const T dz = hvp ? si * (e * r * r) * u : si * (a - y[i]);                                \
      db += dz;                                                                                 \
      if (dz != 0) scatter_##SFX(t, lo, hi, &dz, 1); /* padding rows (weight 0) add nothing */  \
    }                                                                                           \
    t->J = J;                                                                                   \
    t->db[0] = db;                                                                              \
    t->bad_index = bad;                                                                         \
  }                                                                                             \
                                                                                                \
  /* Z (K) scratch */                                                                           \
  static void softmax_rows_##SFX(CsrTask *t, T *Z) {                                            \
    const int32_t *indptr = t->indptr, *indices = t->indices, *y = (const int32_t *)t->y;       \
    const T *data = (const T *)t->data, *s = (const T *)t->s;                                   \
    const T *W = (const T *)t->w, *b = (const T *)t->b;                                         \
    const int64_t K = t->K;                                                                     \
    const uint32_t n = (uint32_t)t->n;                                                          \
    double J = 0, *restrict db = t->db;                                                         \
    for (int64_t i = t->begin; i < t->end; i++) {                                               \
      const int64_t lo = indptr[i], hi = indptr[i + 1];                                         \
      if (y[i] < 0 || y[i] >= K) {                                                              \
        t->bad_label = 1;                                                                       \
        continue;                                                                               \
      }                                                                                         \
      for (int64_t c = 0; c < K; c++) Z[c] = b[c];                                              \
      for (int64_t k = lo; k < hi; k++) {                                                       \
        const uint32_t j = (uint32_t)indices[k];                                                \
        if (j >= n) {                                                                           \
          t->bad_index = 1;                                                                     \
          continue;                                                                             \
        }                                                                                       \
        const T x = data[k], *wj = W + (int64_t)j * K;                                          \
        for (int64_t c = 0; c < K; c++) Z[c] += x * wj[c];                                      \
      }                                                                                         \
      T top = Z[0], total = 0;                                                                  \
      for (int64_t c = 1; c < K; c++) top = Z[c] > top ? Z[c] : top;                            \
      const T zy = Z[y[i]] - top; /* <= 0 */                                                    \
      for (int64_t c = 0; c < K; c++) {                                                         \
        Z[c] = EXP(Z[c] - top);                                                                 \
        total += Z[c]; /* >= 1 */                                                               \
      }                                                                                         \
      const T si = t->s_per_example ? s[i] : s[0], scale = si / total;                          \
      J += (double)(si * (LOG(total) - zy));                                                    \
      for (int64_t c = 0; c < K; c++) Z[c] *= scale;                                            \
      Z[y[i]] -= si;                                                                            \
      for (int64_t c = 0; c < K; c++) db[c] += Z[c];                                            \
      if (si != 0) scatter_##SFX(t, lo, hi, Z, K);                                              \
    }                                                                                           \
    t->J = J;                                                                                   \
  }                                                                                             \
                                                                                                \
  /* o (n, 2K): row j is [W_j, V_j], so that one cache line gives an entry both */              \
  static void interleave_##SFX(T *restrict o, const T *w, const T *v, int64_t n, int64_t K) {   \
    for (int64_t j = 0; j < n; j++, o += 2 * K, w += K, v += K)                                 \
      for (int64_t c = 0; c < K; c++) o[c] = w[c], o[K + c] = v[c];                             \
  }                                                                                             \
                                                                                                \
  /* H v: Z and U = V_wᵀ x + v_b (K each, scratch) from the same entries, then                  \
   * dZ = s (A ⊙ U - A (A·U)) with A = softmax(Z) */                                            \
  static void softmax_hvp_rows_##SFX(CsrTask *t, T *Z, T *U) {                                  \
    const int32_t *indptr = t->indptr, *indices = t->indices;                                   \
    const T *data = (const T *)t->data, *s = (const T *)t->s;                                   \
    const T *W = (const T *)t->w, *b = (const T *)t->b;                                         \
    const T *vb = (const T *)t->v_b;                                                            \
    const int64_t K = t->K;                                                                     \
    const uint32_t n = (uint32_t)t->n;                                                          \
    double *restrict db = t->db;                                                                \
    for (int64_t i = t->begin; i < t->end; i++) {                                               \
      const int64_t lo = indptr[i], hi = indptr[i + 1];                                         \
      for (int64_t c = 0; c < K; c++) Z[c] = b[c], U[c] = vb[c];                                \
      for (int64_t k = lo; k < hi; k++) {                                                       \
        const uint32_t j = (uint32_t)indices[k];                                                \
        if (j >= n) {                                                                           \
          t->bad_index = 1;                                                                     \
          continue;                                                                             \
        }                                                                                       \
        const T x = data[k], *wj = W + (int64_t)j * 2 * K, *vj = wj + K;                        \
        for (int64_t c = 0; c < K; c++) Z[c] += x * wj[c], U[c] += x * vj[c];                   \
      }                                                                                         \
      const T si = t->s_per_example ? s[i] : s[0];                                              \
      if (si == 0) continue; /* padding rows add nothing */                                     \
      T top = Z[0], total = 0, au = 0;                                                          \
      for (int64_t c = 1; c < K; c++) top = Z[c] > top ? Z[c] : top;                            \
      for (int64_t c = 0; c < K; c++) {                                                         \
        Z[c] = EXP(Z[c] - top);                                                                 \
        total += Z[c]; /* >= 1 */                                                               \
      }                                                                                         \
      for (int64_t c = 0; c < K; c++) au += Z[c] * U[c];                                        \
      const T scale = si / total; /* A_c = Z_c / total */                                       \
      au /= total;                                                                              \
      for (int64_t c = 0; c < K; c++) {                                                         \
        Z[c] *= scale * (U[c] - au);                                                            \
        db[c] += Z[c];                                                                          \
      }                                                                                         \
      scatter_##SFX(t, lo, hi, Z, K);                                                           \
    }                                                                                           \
  }                                                                                             \
                                                                                                \
  /* One part: the gradient, or H v (hvp, the task's v_w and v_b) */                            \
  INLINE void csr_part_##SFX(CsrTask *t, const int hvp) {                                       \
    memset(t->dw, 0, sizeof(T) * (size_t)(t->n * t->K));                                        \
    memset(t->db, 0, sizeof(double) * (size_t)t->K);                                            \
    if (!t->softmax) {                                                                          \
      binary_rows_##SFX(t, hvp);                                                                \
      return;                                                                                   \
    }                                                                                           \
    T *Z = malloc(sizeof(T) * (hvp ? 2 : 1) * (size_t)t->K); /* Z, and U for H v */             \
    t->failed = Z == NULL;                                                                      \
    if (Z == NULL) return;                                                                      \
    if (hvp) softmax_hvp_rows_##SFX(t, Z, Z + t->K);                                            \
    else softmax_rows_##SFX(t, Z);                                                              \
    free(Z);                                                                                    \
  }                                                                                             \
                                                                                                \
  static void grad_task_##SFX(void *task) { csr_part_##SFX((CsrTask *)task, 0); }               \
  static void hvp_task_##SFX(void *task) { csr_part_##SFX((CsrTask *)task, 1); }

DEFINE_CSR(f32, float, expf, log1pf, logf)
DEFINE_CSR(f64, double, exp, log1p, log)

/* ---------------------------------------------------------------------------------------- */
/* The handlers                                                                              */

static const char CSR_SHAPES[] =
    "jaxlogreg native gradient (csr): expected indptr (m + 1,) int32, indices (nnz,) int32, "
    "data (nnz,), y (m,), s (m,) or (), and w (n,), b () (binary, y of data's dtype) or "
    "w (n, K), b (K,) (softmax, y int32), all else of data's dtype; J (), dw and db shaped as "
    "w and b";
static const char HVP_SHAPES[] =
    "jaxlogreg native Hessian-vector product (csr): expected indptr (m + 1,) int32, indices "
    "(nnz,) int32, data (nnz,), s (m,) or (), w (n,), b () (binary) or w (n, K), b (K,) "
    "(softmax), v_w and v_b shaped as w and b, all of data's dtype; hv_w and hv_b shaped as w "
    "and b";

/* Whether X (indptr, indices, data) of m rows, s, w and b are as the shapes above say. */
static int csr_inputs_ok(const XLA_FFI_CallFrame *frame, int at_s, int64_t m,
                         XLA_FFI_DataType dtype) {
  const XLA_FFI_Buffer *indptr = arg(frame, 0), *indices = arg(frame, 1), *data = arg(frame, 2);
  const XLA_FFI_Buffer *s = arg(frame, at_s), *w = arg(frame, at_s + 1), *b = arg(frame, at_s + 2);
  int ok = indptr->dtype == XLA_FFI_DataType_S32 && indices->dtype == XLA_FFI_DataType_S32;
  ok = ok && data->dtype == dtype && s->dtype == dtype && w->dtype == dtype && b->dtype == dtype;
  ok = ok && indptr->rank == 1 && indices->rank == 1 && data->rank == 1 && s->rank <= 1 &&
       (w->rank == 1 || w->rank == 2) && b->rank == w->rank - 1;
  ok = ok && m >= 0 && indptr->dims[0] == m + 1 && data->dims[0] == indices->dims[0];
  ok = ok && (s->rank == 0 || s->dims[0] == m) && w->dims[0] <= INT32_MAX;
  return ok && (w->rank == 1 || (w->dims[1] >= 1 && b->dims[0] == w->dims[1]));
}

/* NULL when the frame holds indptr, indices, data, y, s, w, b and J, dw, db (CSR_SHAPES). */
static XLA_FFI_Error *check_csr(const XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype) {
  if (!buffers_only(frame, 7, 3)) return error(frame, CSR_SHAPES);
  const XLA_FFI_Buffer *y = arg(frame, 3), *w = arg(frame, 5), *b = arg(frame, 6);
  int ok = y->rank == 1 && y->dtype == (w->rank == 2 ? XLA_FFI_DataType_S32 : dtype);
  ok = ok && csr_inputs_ok(frame, 4, y->dims[0], dtype) && ret(frame, 0)->dtype == dtype &&
       ret(frame, 0)->rank == 0;
  ok = ok && same_shape(ret(frame, 1), w) && same_shape(ret(frame, 2), b);
  return ok ? NULL : error(frame, CSR_SHAPES);
}

/* NULL when the frame holds indptr, indices, data, s, w, b, v_w, v_b and hv_w, hv_b
 * (HVP_SHAPES). */
static XLA_FFI_Error *check_hvp(const XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype) {
  if (!buffers_only(frame, 8, 2)) return error(frame, HVP_SHAPES);
  const XLA_FFI_Buffer *indptr = arg(frame, 0), *w = arg(frame, 4), *b = arg(frame, 5);
  int ok = csr_inputs_ok(frame, 3, indptr->rank == 1 ? indptr->dims[0] - 1 : -1, dtype);
  ok = ok && same_shape(arg(frame, 6), w) && same_shape(arg(frame, 7), b);
  ok = ok && same_shape(ret(frame, 0), w) && same_shape(ret(frame, 1), b);
  return ok ? NULL : error(frame, HVP_SHAPES);
}

/* The first row whose indptr is out of order (indptr[0] < 0, indptr[i + 1] < indptr[i], or
 * indptr[m] > nnz), or -1 when indptr is sound. */
static int64_t bad_indptr(const int32_t *indptr, int64_t m, int64_t nnz) {
  if (indptr[0] < 0) return 0;
  for (int64_t i = 0; i < m; i++)
    if (indptr[i + 1] < indptr[i]) return i;
  return indptr[m] > nnz ? m : -1;
}

/* The first row of part k of `parts`: where the non-zeros reach k / parts of the total. */
static int64_t part_start(const int32_t *indptr, int64_t m, int64_t k, int64_t parts) {
  const int64_t first = indptr[0], target = first + (indptr[m] - first) * k / parts;
  int64_t lo = 0, hi = m; /* the first row i with indptr[i] >= target */
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (indptr[mid] < target) lo = mid + 1;
    else hi = mid;
  }
  return k == 0 ? 0 : k == parts ? m : lo;
}

static int64_t csr_parts(int64_t threads, int64_t m, int64_t nnz, int64_t nK) {
  int64_t parts = nnz / CSR_MIN_ENTRIES_PER_PART;
  if (nK > 0 && parts > nnz / nK) parts = nnz / nK;
  parts = parts < threads ? parts : threads;
  parts = parts < m ? parts : m;
  return parts < 1 ? 1 : parts;
}

/* The parts' totals, in order, to the outputs from the first: J (when `with_J`), dw, db. */
static void csr_sum_parts(XLA_FFI_CallFrame *frame, const CsrTask *tasks, int64_t parts,
                          int with_J, int itemsize) {
  const int64_t K = tasks[0].K, nK = tasks[0].n * K;
  double J = 0;
  for (int64_t k = 0; k < parts; k++) J += tasks[k].J;
  if (with_J) store(ret(frame, 0)->data, 0, J, itemsize);
  for (int64_t i = 0; i < nK; i++) {
    double total = 0;
    for (int64_t k = 0; k < parts; k++)
      total += itemsize == 4 ? ((const float *)tasks[k].dw)[i] : ((const double *)tasks[k].dw)[i];
    store(ret(frame, with_J)->data, i, total, itemsize);
  }
  for (int64_t c = 0; c < K; c++) {
    double total = 0;
    for (int64_t k = 0; k < parts; k++) total += tasks[k].db[c];
    store(ret(frame, with_J + 1)->data, c, total, itemsize);
  }
}

/* Runs `run` on the m rows of `call` (the inputs) in parts and writes the parts' sums. */
static XLA_FFI_Error *csr_run(XLA_FFI_CallFrame *frame, CsrTask call, int64_t m, int64_t nnz,
                              int itemsize, RunPart run) {
  const int hvp = call.v_w != NULL;
  const char *who = hvp ? "jaxlogreg native Hessian-vector product (csr)"
                        : "jaxlogreg native gradient (csr)";
  char message[200];
  const int64_t bad_row = bad_indptr(call.indptr, m, nnz);
  if (bad_row >= 0) {
    snprintf(message, sizeof(message),
             "%s: indptr must start at 0 or above, never decrease and end at most at the %lld "
             "entries; it does not at row %lld",
             who, (long long)nnz, (long long)bad_row);
    return error(frame, message);
  }
  const int64_t K = call.K, nK = call.n * K, threads = threads_for(frame);
  const int64_t parts = csr_parts(threads, m, call.indptr[m] - call.indptr[0], nK);
  CsrTask *tasks = calloc((size_t)parts, sizeof(CsrTask));
  char *sums = malloc((size_t)(parts * nK * itemsize) + 1); /* each part's dw, in the dtype */
  double *db = malloc(sizeof(double) * (size_t)(parts * K));
  char *wv = hvp ? malloc((size_t)(2 * nK * itemsize) + 1) : NULL; /* [W_j, V_j] rows */
  int failed = tasks == NULL || sums == NULL || db == NULL || (hvp && wv == NULL);
  if (!failed && hvp) {
    if (itemsize == 4) interleave_f32((float *)wv, call.w, call.v_w, call.n, K);
    else interleave_f64((double *)wv, call.w, call.v_w, call.n, K);
    call.w = wv;
    call.v_w = wv + K * itemsize;
  }
  for (int64_t k = 0; !failed && k < parts; k++) {
    tasks[k] = call;
    tasks[k].begin = part_start(call.indptr, m, k, parts);
    tasks[k].end = part_start(call.indptr, m, k + 1, parts);
    tasks[k].dw = sums + k * nK * itemsize;
    tasks[k].db = db + k * K;
  }
  failed = failed || run_parts(frame, threads, parts, run, tasks, sizeof(CsrTask)) != 0;
  int bad_index = 0, bad_label = 0;
  for (int64_t k = 0; !failed && k < parts; k++) {
    failed |= tasks[k].failed;
    bad_index |= tasks[k].bad_index;
    bad_label |= tasks[k].bad_label;
  }
  if (!failed && !bad_index && !bad_label)
    csr_sum_parts(frame, tasks, parts, !hvp, itemsize);
  free(tasks);
  free(sums);
  free(db);
  free(wv);
  if (failed) snprintf(message, sizeof(message), "%s: out of memory", who);
  else if (bad_index || bad_label)
    snprintf(message, sizeof(message), "%s: %s outside [0, %lld)", who,
             bad_index ? "indices holds a column" : "y holds a class index",
             (long long)(bad_index ? call.n : K));
  return failed || bad_index || bad_label ? error(frame, message) : NULL;
}

/* The gradient (inputs indptr, indices, data, y, s, w, b) or, with `hvp`, H v (indptr,
 * indices, data, s, w, b, v_w, v_b). */
static XLA_FFI_Error *csr_call(XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype, RunPart run,
                              int hvp) {
  if (frame->extension_start != NULL &&
      frame->extension_start->type == XLA_FFI_Extension_Metadata)
    return metadata(frame);
  if (frame->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;
  XLA_FFI_Error *err = hvp ? check_hvp(frame, dtype) : check_csr(frame, dtype);
  if (err != NULL) return err;
  const int at_s = hvp ? 3 : 4; /* s, w, b follow y, which H v does not take */
  const XLA_FFI_Buffer *s = arg(frame, at_s), *w = arg(frame, at_s + 1);
  const CsrTask call = {.indptr = arg(frame, 0)->data, .indices = arg(frame, 1)->data,
                        .data = arg(frame, 2)->data, .y = hvp ? NULL : arg(frame, 3)->data,
                        .s = s->data, .w = w->data, .b = arg(frame, at_s + 2)->data,
                        .v_w = hvp ? arg(frame, 6)->data : NULL,
                        .v_b = hvp ? arg(frame, 7)->data : NULL, .s_per_example = s->rank == 1,
                        .softmax = w->rank == 2, .n = w->dims[0],
                        .K = w->rank == 2 ? w->dims[1] : 1};
  return csr_run(frame, call, arg(frame, 0)->dims[0] - 1, arg(frame, 1)->dims[0],
                 dtype == XLA_FFI_DataType_F32 ? 4 : 8, run);
}

XLA_FFI_Error *jaxlogreg_csr_value_and_grad_f32(XLA_FFI_CallFrame *frame) {
  return csr_call(frame, XLA_FFI_DataType_F32, grad_task_f32, 0);
}

XLA_FFI_Error *jaxlogreg_csr_value_and_grad_f64(XLA_FFI_CallFrame *frame) {
  return csr_call(frame, XLA_FFI_DataType_F64, grad_task_f64, 0);
}

XLA_FFI_Error *jaxlogreg_csr_hvp_f32(XLA_FFI_CallFrame *frame) {
  return csr_call(frame, XLA_FFI_DataType_F32, hvp_task_f32, 1);
}

XLA_FFI_Error *jaxlogreg_csr_hvp_f64(XLA_FFI_CallFrame *frame) {
  return csr_call(frame, XLA_FFI_DataType_F64, hvp_task_f64, 1);
}
