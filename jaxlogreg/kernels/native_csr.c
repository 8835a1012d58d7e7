/* Gradients of logistic regression on sparse X in CSR, one pass over the non-zeros, as XLA
 * FFI handlers (compiled into one library with native_kernel.c; see jaxlogreg.kernels.native).
 *
 * jaxlogreg_csr_value_and_grad_{f32,f64}:
 *   inputs   indptr (m + 1,) int32, indices (nnz,) int32, data (nnz,), y (m,), s (m,) or (),
 *            w, b                                       (data, s, w, b one dtype)
 *            binary:  w (n,), b (), y labels 0/1 of the dtype
 *            softmax: w (n, K), b (K,), y int32 class indices in [0, K)
 *   outputs  J () = Σ_i s_i L_i,  dw = Xᵀ dZ (as w),  db = Σ_i dZ_i (as b)
 *            row i of X holds data[k] at column indices[k] for k in [indptr[i], indptr[i+1])
 *            binary:  z_i = Σ_k data[k] w[indices[k]] + b, L = softplus((1 - 2y) z),
 *                     dz = s (σ(z) - y);  softmax: Z_i = Σ_k data[k] W[indices[k]] + b,
 *                     L = logsumexp(Z_i) - Z_iy, dZ_i = s_i (softmax(Z_i) - onehot(y_i))
 *   Each row is read once: its z (or the K logits), its loss and dz, then its entries again
 *   from the L1 cache to add data[k] dz to dw[indices[k]]. Rows are cut into parts of about
 *   equal non-zeros run on XLA's thread pool; each part sums its rows' dw (n K) in the dtype
 *   (a float32 w and dw fit in a core's L2 cache, a float64 dw would not), its J and db in
 *   float64, and the parts' sums are added in float64 in a fixed order: results do not depend
 *   on which thread ran what. Before any entry is read the handler checks the shapes and dtypes,
 *   and that indptr starts at 0 or above, never decreases and ends within the entries; an
 *   index outside [0, n) or a class outside [0, K) is an error, never read.
 *   The L2 term is added by the caller.
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
  int s_per_example, softmax;
  int64_t n, K, begin, end;
  double J;
  void *dw;   /* this part's sums of dw (n, K) as W, in the dtype: a float32 dw (and w) fit in
               * the core's L2 cache where a float64 dw would not */
  double *db; /* this part's db (K) */
  int bad_index, bad_label, failed;
} CsrTask;

#define DEFINE_CSR(SFX, T, EXP, LOG1P, LOG)                                                     \
  static void binary_rows_##SFX(CsrTask *t) {                                                   \
    const int32_t *indptr = t->indptr, *indices = t->indices;                                   \
    const T *data = (const T *)t->data, *y = (const T *)t->y, *s = (const T *)t->s;             \
    const T *w = (const T *)t->w, b = *(const T *)t->b;                                         \
    const uint32_t n = (uint32_t)t->n;                                                          \
    double J = 0, db = 0;                                                                       \
    T *restrict dw = (T *)t->dw;                                                                \
    int bad = 0;                                                                                \
    for (int64_t i = t->begin; i < t->end; i++) {                                               \
      const int64_t lo = indptr[i], hi = indptr[i + 1];                                         \
      T z = b;                                                                                  \
      for (int64_t k = lo; k < hi; k++) {                                                       \
        const uint32_t j = (uint32_t)indices[k];                                                \
        if (j >= n) {                                                                           \
          bad = 1;                                                                              \
          continue;                                                                             \
        }                                                                                       \
        z += data[k] * w[j];                                                                    \
      }                                                                                         \
      /* a = σ(z) from e = exp(-|z|); L = softplus((1 - 2y) z) = log1p(e) + max(tz, 0) */       \
      const T e = EXP(z < 0 ? z : -z), r = 1 / (1 + e), a = z >= 0 ? r : e * r;                 \
      const T si = t->s_per_example ? s[i] : s[0], tz = (1 - 2 * y[i]) * z;                     \
      J += (double)(si * (LOG1P(e) + (tz > 0 ? tz : 0)));                                       \
      const T dz = si * (a - y[i]);                                                             \
      db += dz;                                                                                 \
      if (dz == 0) continue; /* padding rows (weight 0) add nothing */                          \
      for (int64_t k = lo; k < hi; k++) {                                                       \
        const uint32_t j = (uint32_t)indices[k];                                                \
        if (j < n) dw[j] += data[k] * dz;                                                       \
      }                                                                                         \
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
    T *restrict dW = (T *)t->dw;                                                                \
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
      if (si == 0) continue;                                                                    \
      for (int64_t k = lo; k < hi; k++) {                                                       \
        const uint32_t j = (uint32_t)indices[k];                                                \
        if (j >= n) continue;                                                                   \
        const T x = data[k];                                                                    \
        T *restrict dwj = dW + (int64_t)j * K;                                                  \
        for (int64_t c = 0; c < K; c++) dwj[c] += x * Z[c];                                     \
      }                                                                                         \
    }                                                                                           \
    t->J = J;                                                                                   \
  }                                                                                             \
                                                                                                \
  static void csr_task_##SFX(void *task) {                                                      \
    CsrTask *t = (CsrTask *)task;                                                               \
    memset(t->dw, 0, sizeof(T) * (size_t)(t->n * t->K));                                        \
    memset(t->db, 0, sizeof(double) * (size_t)t->K);                                            \
    if (!t->softmax) {                                                                          \
      binary_rows_##SFX(t);                                                                     \
      return;                                                                                   \
    }                                                                                           \
    T *Z = malloc(sizeof(T) * (size_t)t->K);                                                    \
    if (Z == NULL) {                                                                            \
      t->failed = 1;                                                                            \
      return;                                                                                   \
    }                                                                                           \
    softmax_rows_##SFX(t, Z);                                                                   \
    free(Z);                                                                                    \
  }

DEFINE_CSR(f32, float, expf, log1pf, logf)
DEFINE_CSR(f64, double, exp, log1p, log)

/* ---------------------------------------------------------------------------------------- */
/* The handlers                                                                              */

static const char CSR_SHAPES[] =
    "jaxlogreg native gradient (csr): expected indptr (m + 1,) int32, indices (nnz,) int32, "
    "data (nnz,), y (m,), s (m,) or (), and w (n,), b () (binary, y of data's dtype) or "
    "w (n, K), b (K,) (softmax, y int32), all else of data's dtype; J (), dw and db shaped as "
    "w and b";

/* NULL when the frame holds the buffers CSR_SHAPES names, else the error. */
static XLA_FFI_Error *check_csr(const XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype) {
  if (frame->args.size != 7 || frame->rets.size != 3) return error(frame, CSR_SHAPES);
  for (int k = 0; k < 7; k++)
    if (frame->args.types[k] != XLA_FFI_ArgType_BUFFER) return error(frame, CSR_SHAPES);
  for (int k = 0; k < 3; k++)
    if (frame->rets.types[k] != XLA_FFI_RetType_BUFFER) return error(frame, CSR_SHAPES);
  const XLA_FFI_Buffer *indptr = arg(frame, 0), *indices = arg(frame, 1);
  const XLA_FFI_Buffer *data = arg(frame, 2), *y = arg(frame, 3), *s = arg(frame, 4);
  const XLA_FFI_Buffer *w = arg(frame, 5), *b = arg(frame, 6);
  const XLA_FFI_Buffer *J = ret(frame, 0), *dw = ret(frame, 1), *db = ret(frame, 2);
  const int softmax = w->rank == 2;
  const XLA_FFI_DataType y_dtype = softmax ? XLA_FFI_DataType_S32 : dtype;
  int ok = indptr->dtype == XLA_FFI_DataType_S32 && indices->dtype == XLA_FFI_DataType_S32;
  ok = ok && data->dtype == dtype && y->dtype == y_dtype && s->dtype == dtype &&
       w->dtype == dtype && b->dtype == dtype && J->dtype == dtype && dw->dtype == dtype &&
       db->dtype == dtype;
  ok = ok && indptr->rank == 1 && indices->rank == 1 && data->rank == 1 && y->rank == 1 &&
       s->rank <= 1 && J->rank == 0 && (w->rank == 1 || w->rank == 2) &&
       b->rank == w->rank - 1 && dw->rank == w->rank && db->rank == b->rank;
  if (!ok) return error(frame, CSR_SHAPES);
  const int64_t m = y->dims[0], K = softmax ? w->dims[1] : 1;
  ok = indptr->dims[0] == m + 1 && data->dims[0] == indices->dims[0];
  ok = ok && (s->rank == 0 || s->dims[0] == m) && K >= 1 && dw->dims[0] == w->dims[0];
  ok = ok && w->dims[0] <= INT32_MAX;
  ok = ok && (!softmax || (b->dims[0] == K && dw->dims[1] == K && db->dims[0] == K));
  return ok ? NULL : error(frame, CSR_SHAPES);
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

/* The parts' totals, in order, to the outputs; frees nothing. */
static void csr_sum_parts(XLA_FFI_CallFrame *frame, const CsrTask *tasks, int64_t parts,
                          int64_t nK, int64_t K, int itemsize) {
  double J = 0;
  for (int64_t k = 0; k < parts; k++) J += tasks[k].J;
  store(ret(frame, 0)->data, 0, J, itemsize);
  for (int64_t i = 0; i < nK; i++) {
    double total = 0;
    for (int64_t k = 0; k < parts; k++)
      total += itemsize == 4 ? ((const float *)tasks[k].dw)[i] : ((const double *)tasks[k].dw)[i];
    store(ret(frame, 1)->data, i, total, itemsize);
  }
  for (int64_t c = 0; c < K; c++) {
    double total = 0;
    for (int64_t k = 0; k < parts; k++) total += tasks[k].db[c];
    store(ret(frame, 2)->data, c, total, itemsize);
  }
}

static XLA_FFI_Error *csr_value_and_grad(XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype,
                                         RunPart run) {
  if (frame->extension_start != NULL &&
      frame->extension_start->type == XLA_FFI_Extension_Metadata)
    return metadata(frame);
  if (frame->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;
  XLA_FFI_Error *err = check_csr(frame, dtype);
  if (err != NULL) return err;
  const XLA_FFI_Buffer *w = arg(frame, 5), *s = arg(frame, 4);
  const int32_t *indptr = (const int32_t *)arg(frame, 0)->data;
  const int softmax = w->rank == 2, itemsize = dtype == XLA_FFI_DataType_F32 ? 4 : 8;
  const int64_t m = arg(frame, 3)->dims[0], nnz = arg(frame, 1)->dims[0];
  const int64_t n = w->dims[0], K = softmax ? w->dims[1] : 1, nK = n * K;
  char message[200];
  const int64_t bad_row = bad_indptr(indptr, m, nnz);
  if (bad_row >= 0) {
    snprintf(message, sizeof(message),
             "jaxlogreg native gradient (csr): indptr must start at 0 or above, never decrease "
             "and end at most at the %lld entries; it does not at row %lld",
             (long long)nnz, (long long)bad_row);
    return error(frame, message);
  }
  const int64_t threads = threads_for(frame);
  const int64_t parts = csr_parts(threads, m, indptr[m] - indptr[0], nK);
  CsrTask *tasks = calloc((size_t)parts, sizeof(CsrTask));
  char *sums = malloc((size_t)(parts * nK * itemsize) + 1); /* each part's dw, in the dtype */
  double *db = malloc(sizeof(double) * (size_t)(parts * K));
  int failed = tasks == NULL || sums == NULL || db == NULL;
  for (int64_t k = 0; !failed && k < parts; k++) {
    CsrTask part = {indptr, arg(frame, 1)->data, arg(frame, 2)->data,
                    arg(frame, 3)->data, s->data, w->data, arg(frame, 6)->data,
                    s->rank == 1, softmax, n, K, part_start(indptr, m, k, parts),
                    part_start(indptr, m, k + 1, parts), 0,
                    sums + k * nK * itemsize, db + k * K, 0, 0, 0};
    tasks[k] = part;
  }
  failed = failed || run_parts(frame, threads, parts, run, tasks, sizeof(CsrTask)) != 0;
  int bad_index = 0, bad_label = 0;
  for (int64_t k = 0; !failed && k < parts; k++) {
    failed |= tasks[k].failed;
    bad_index |= tasks[k].bad_index;
    bad_label |= tasks[k].bad_label;
  }
  if (!failed && !bad_index && !bad_label) csr_sum_parts(frame, tasks, parts, nK, K, itemsize);
  free(tasks);
  free(sums);
  free(db);
  if (failed) return error(frame, "jaxlogreg native gradient (csr): out of memory");
  if (bad_index || bad_label) {
    snprintf(message, sizeof(message),
             bad_index ? "jaxlogreg native gradient (csr): indices holds a column outside "
                         "[0, %lld)"
                       : "jaxlogreg native gradient (csr): y holds a class index outside "
                         "[0, %lld)",
             (long long)(bad_index ? n : K));
    return error(frame, message);
  }
  return NULL;
}

XLA_FFI_Error *jaxlogreg_csr_value_and_grad_f32(XLA_FFI_CallFrame *frame) {
  return csr_value_and_grad(frame, XLA_FFI_DataType_F32, csr_task_f32);
}

XLA_FFI_Error *jaxlogreg_csr_value_and_grad_f64(XLA_FFI_CallFrame *frame) {
  return csr_value_and_grad(frame, XLA_FFI_DataType_F64, csr_task_f64);
}
