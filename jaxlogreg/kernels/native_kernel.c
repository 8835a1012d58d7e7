/* The single-read gradient of binary logistic regression for CPUs, as an XLA FFI handler.
 *
 * jaxlogreg.core.native compiles this file with the system's C compiler and registers
 * jaxlogreg_value_and_grad_{f32,f64} with XLA; see that module for when it is used.
 *
 *   inputs   Xt (n, m) row-major, y (m,) labels 0/1, s (m,) or () per-example scale,
 *            w (n,), b ()                               all of one dtype (float32 or float64)
 *   outputs  J ()   = Σ_i s_i (log(1 + e^{-|z_i|}) + max(z_i, 0) - y_i z_i),  z = wᵀX + b
 *            dw (n) = X dz,  db () = Σ_i dz_i,          dz = s ⊙ (σ(z) - y)
 *
 * (the L2 term is added by the caller). XLA's two products read X twice: z = wᵀX, then X dz.
 * Here the columns (examples) are cut into blocks of `width` columns that fit in the core's
 * L2 cache; for each block the first pass reads its n row segments from memory and forms z,
 * the elementwise pass forms the loss and dz, and the second pass reads the same segments
 * again, now from the cache, for the block's share of X dz. X crosses the memory bus once.
 * Four rows are handled per pass, so z is loaded and stored once per four rows and the four
 * dot products of the second pass are independent chains.
 *
 * Work is split into parts (contiguous ranges of blocks; one part for small X) that run on
 * XLA's own thread pool (the FFI's ThreadPool_Schedule), so the kernel never competes with
 * XLA's threads for the cores: the calling thread schedules a task per extra part, then
 * claims parts itself until none is left, and waits only for parts that another thread has
 * claimed and is running (XLA may run scheduled tasks late, or on the caller's thread: a
 * task that starts after every part is claimed just returns). Each part sums its blocks in
 * the parameters' dtype and adds each block's sums to float64 totals; the caller adds the
 * parts' totals in a fixed order, so results do not depend on which thread ran what.
 */
#define _GNU_SOURCE
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "xla/ffi/api/c_api.h"

#if defined(JAXLOGREG_LIBMVEC)
/* glibc's vector math library (libmvec) has SIMD versions of these; declaring them lets the
 * compiler vectorize the elementwise pass without -ffast-math (which would let it assume there
 * is no NaN or inf, and, when linking, switch the process's floating point to flush denormals
 * to zero). */
__attribute__((__simd__("notinbranch"))) float expf(float);
__attribute__((__simd__("notinbranch"))) float log1pf(float);
__attribute__((__simd__("notinbranch"))) double exp(double);
__attribute__((__simd__("notinbranch"))) double log1p(double);
#endif

enum { MAX_WIDTH = 4096, MIN_WIDTH = 64, PARTS_PER_THREAD = 4 };
static const int64_t CACHE_BYTES = 384 * 1024;         /* a block of X: within a 512 KiB L2 */
static const int64_t MIN_ELEMENTS_PER_PART = 1 << 20;  /* smaller parts cost more than they save */

typedef struct {
  const void *Xt, *y, *s, *w;
  double b;
  int s_per_example;
  int64_t n, m, begin, end; /* the columns [begin, end) */
  double J, db;
  double *dw; /* n totals */
} Task;

/* Columns per block: the block's n row segments fill about CACHE_BYTES; a multiple of 16, and
 * at least 64 (shorter row segments defeat the hardware prefetcher). */
static int64_t block_width(int64_t n, int64_t itemsize) {
  int64_t width = n > 0 ? CACHE_BYTES / (n * itemsize) / 16 * 16 : MAX_WIDTH;
  return width < MIN_WIDTH ? MIN_WIDTH : width > MAX_WIDTH ? MAX_WIDTH : width;
}

#define DEFINE_TASK(NAME, T, EXP, LOG1P)                                                      \
  static void NAME(Task *t) {                                                               \
    const T *Xt = (const T *)t->Xt, *y = (const T *)t->y, *s = (const T *)t->s;             \
    const T *w = (const T *)t->w, b = (T)t->b;                                              \
    const int64_t n = t->n, m = t->m, width = block_width(n, sizeof(T));                    \
    T z[MAX_WIDTH], dz[MAX_WIDTH];                                                          \
    double J = 0, db = 0;                                                                   \
    for (int64_t i = 0; i < n; i++) t->dw[i] = 0;                                           \
    for (int64_t c = t->begin; c < t->end; c += width) {                                    \
      const int64_t B = t->end - c < width ? t->end - c : width;                            \
      const T *yc = y + c;                                                                  \
      int64_t i = 0;                                                                        \
      for (int64_t k = 0; k < B; k++) z[k] = b;                                             \
      for (; i + 4 <= n; i += 4) { /* forward: z = wᵀX + b, four rows at a time */          \
        const T *x0 = Xt + i * m + c, *x1 = x0 + m, *x2 = x1 + m, *x3 = x2 + m;             \
        const T w0 = w[i], w1 = w[i + 1], w2 = w[i + 2], w3 = w[i + 3];                     \
        for (int64_t k = 0; k < B; k++)                                                     \
          z[k] += w0 * x0[k] + w1 * x1[k] + w2 * x2[k] + w3 * x3[k];                        \
      }                                                                                     \
      for (; i < n; i++) {                                                                  \
        const T *x0 = Xt + i * m + c, w0 = w[i];                                            \
        for (int64_t k = 0; k < B; k++) z[k] += w0 * x0[k];                                 \
      }                                                                                     \
      T Jb = 0, dbb = 0; /* loss and dz = s (a - y), a = σ(z) from e = exp(-|z|) */         \
      for (int64_t k = 0; k < B; k++) {                                                     \
        const T zk = z[k], e = EXP(zk < 0 ? zk : -zk), r = 1 / (1 + e);                     \
        const T a = zk >= 0 ? r : e * r, sk = t->s_per_example ? s[c + k] : s[0];          \
        const T tk = (1 - 2 * yc[k]) * zk; /* L = softplus(tk): no cancellation, y in {0,1} */ \
        Jb += sk * (LOG1P(e) + (tk > 0 ? tk : 0));                                          \
        dz[k] = sk * (a - yc[k]);                                                           \
        dbb += dz[k];                                                                       \
      }                                                                                     \
      J += Jb;                                                                              \
      db += dbb;                                                                            \
      for (i = 0; i + 4 <= n; i += 4) { /* backward: dw += X[:, block] dz, from the cache */ \
        const T *x0 = Xt + i * m + c, *x1 = x0 + m, *x2 = x1 + m, *x3 = x2 + m;             \
        T a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                   \
        for (int64_t k = 0; k < B; k++) {                                                   \
          a0 += x0[k] * dz[k];                                                              \
          a1 += x1[k] * dz[k];                                                              \
          a2 += x2[k] * dz[k];                                                              \
          a3 += x3[k] * dz[k];                                                              \
        }                                                                                   \
        t->dw[i] += a0;                                                                     \
        t->dw[i + 1] += a1;                                                                 \
        t->dw[i + 2] += a2;                                                                 \
        t->dw[i + 3] += a3;                                                                 \
      }                                                                                     \
      for (; i < n; i++) {                                                                  \
        const T *x0 = Xt + i * m + c;                                                       \
        T a0 = 0;                                                                           \
        for (int64_t k = 0; k < B; k++) a0 += x0[k] * dz[k];                                \
        t->dw[i] += a0;                                                                     \
      }                                                                                     \
    }                                                                                       \
    t->J = J;                                                                               \
    t->db = db;                                                                             \
  }

DEFINE_TASK(task_f32, float, expf, log1pf)
DEFINE_TASK(task_f64, double, exp, log1p)

static int64_t cpus(void) {
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
  long count = sysconf(_SC_NPROCESSORS_ONLN);
  return count > 0 ? count : 1;
}

/* The parts of one call, shared by the caller and its pool tasks; freed by the last of them. */
typedef struct {
  atomic_int next;     /* the next part to claim */
  atomic_int finished; /* parts done */
  atomic_int users;    /* the caller and the scheduled tasks that have not returned */
  int parts;
  void (*run)(Task *);
  Task *tasks;
  double *totals;
} Work;

static void release(Work *work) {
  if (atomic_fetch_sub(&work->users, 1) == 1) {
    free(work->tasks);
    free(work->totals);
    free(work);
  }
}

static void claim_parts(Work *work) {
  for (int k; (k = atomic_fetch_add(&work->next, 1)) < work->parts;) {
    work->run(&work->tasks[k]);
    atomic_fetch_add(&work->finished, 1);
  }
}

static void pool_task(void *data) {
  claim_parts((Work *)data);
  release((Work *)data);
}

static XLA_FFI_Error *error(const XLA_FFI_CallFrame *frame, const char *message) {
  XLA_FFI_Error_Create_Args args = {XLA_FFI_Error_Create_Args_STRUCT_SIZE, NULL, message,
                                    XLA_FFI_Error_Code_INVALID_ARGUMENT};
  return frame->api->XLA_FFI_Error_Create(&args);
}

static void drop(const XLA_FFI_CallFrame *frame, XLA_FFI_Error *err) {
  XLA_FFI_Error_Destroy_Args args = {XLA_FFI_Error_Destroy_Args_STRUCT_SIZE, NULL, err};
  frame->api->XLA_FFI_Error_Destroy(&args);
}

/* Threads of XLA's pool (1 when this XLA has no pool for handlers). */
static int64_t pool_threads(const XLA_FFI_CallFrame *frame) {
  const size_t needed = offsetof(XLA_FFI_Api, XLA_FFI_ThreadPool_NumThreads) +
                        sizeof(frame->api->XLA_FFI_ThreadPool_NumThreads);
  if (frame->api->struct_size < needed) return 1;
  int64_t threads = 1;
  XLA_FFI_ThreadPool_NumThreads_Args args = {XLA_FFI_ThreadPool_NumThreads_Args_STRUCT_SIZE,
                                             NULL, frame->ctx, &threads};
  XLA_FFI_Error *err = frame->api->XLA_FFI_ThreadPool_NumThreads(&args);
  if (err != NULL) {
    drop(frame, err);
    return 1;
  }
  return threads > 0 ? threads : 1;
}

static XLA_FFI_Error *metadata(XLA_FFI_CallFrame *frame) {
  XLA_FFI_Metadata *out = ((XLA_FFI_Metadata_Extension *)frame->extension_start)->metadata;
  XLA_FFI_Api_Version version = {XLA_FFI_Api_Version_STRUCT_SIZE, NULL, XLA_FFI_API_MAJOR,
                                 XLA_FFI_API_MINOR};
  out->api_version = version;
  out->traits = 0;
  return NULL;
}

static XLA_FFI_Buffer *buffer(void *p) { return (XLA_FFI_Buffer *)p; }

static XLA_FFI_Error *value_and_grad(XLA_FFI_CallFrame *frame, XLA_FFI_DataType dtype,
                                     void (*run)(Task *)) {
  if (frame->extension_start != NULL &&
      frame->extension_start->type == XLA_FFI_Extension_Metadata)
    return metadata(frame);
  if (frame->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;
  if (frame->args.size != 5 || frame->rets.size != 3)
    return error(frame, "jaxlogreg native gradient: expected 5 inputs and 3 outputs");
  for (int64_t k = 0; k < 5; k++)
    if (frame->args.types[k] != XLA_FFI_ArgType_BUFFER ||
        buffer(frame->args.args[k])->dtype != dtype)
      return error(frame, "jaxlogreg native gradient: inputs must be arrays of its dtype");
  for (int64_t k = 0; k < 3; k++)
    if (frame->rets.types[k] != XLA_FFI_RetType_BUFFER ||
        buffer(frame->rets.rets[k])->dtype != dtype)
      return error(frame, "jaxlogreg native gradient: outputs must be arrays of its dtype");
  XLA_FFI_Buffer *Xt = buffer(frame->args.args[0]), *y = buffer(frame->args.args[1]);
  XLA_FFI_Buffer *s = buffer(frame->args.args[2]), *w = buffer(frame->args.args[3]);
  XLA_FFI_Buffer *b = buffer(frame->args.args[4]);
  if (Xt->rank != 2 || y->rank != 1 || w->rank != 1 || b->rank != 0 || s->rank > 1)
    return error(frame, "jaxlogreg native gradient: expected Xt (n, m), y (m,), s (m,) or (), "
                        "w (n,), b ()");
  const int64_t n = Xt->dims[0], m = Xt->dims[1];
  if (y->dims[0] != m || w->dims[0] != n || (s->rank == 1 && s->dims[0] != m))
    return error(frame, "jaxlogreg native gradient: shapes of Xt, y, s and w do not agree");
  const int itemsize = dtype == XLA_FFI_DataType_F32 ? 4 : 8;
  const double bias = itemsize == 4 ? *(const float *)b->data : *(const double *)b->data;

  /* parts: PARTS_PER_THREAD per thread that may run them, each of at least
     MIN_ELEMENTS_PER_PART elements, and at least one block */
  const int64_t width = block_width(n, itemsize), blocks = (m + width - 1) / width;
  int64_t threads = cpus(), in_pool = pool_threads(frame);
  threads = threads < in_pool ? threads : in_pool;
  int64_t parts = n * m / MIN_ELEMENTS_PER_PART;
  parts = parts < PARTS_PER_THREAD * threads ? parts : PARTS_PER_THREAD * threads;
  parts = parts < blocks ? parts : blocks;
  parts = parts < 1 ? 1 : threads == 1 ? 1 : parts;
  Work *work = calloc(1, sizeof(Work));
  Task *tasks = calloc((size_t)parts, sizeof(Task));
  double *totals = malloc(sizeof(double) * (size_t)(parts * (n > 0 ? n : 1)));
  if (work == NULL || tasks == NULL || totals == NULL) {
    free(work);
    free(tasks);
    free(totals);
    return error(frame, "jaxlogreg native gradient: out of memory");
  }
  for (int64_t k = 0; k < parts; k++) {
    int64_t begin = blocks * k / parts * width, end = blocks * (k + 1) / parts * width;
    Task part = {Xt->data, y->data, s->data, w->data, bias, s->rank == 1, n, m,
                 begin < m ? begin : m, end < m ? end : m, 0, 0, totals + k * n};
    tasks[k] = part;
  }
  *work = (Work){.parts = (int)parts, .run = run, .tasks = tasks, .totals = totals};
  atomic_init(&work->next, 0);
  atomic_init(&work->finished, 0);
  atomic_init(&work->users, 1);
  for (int64_t t = 1; t < threads && t < parts; t++) { /* helpers from XLA's pool */
    atomic_fetch_add(&work->users, 1);
    XLA_FFI_ThreadPool_Schedule_Args args = {XLA_FFI_ThreadPool_Schedule_Args_STRUCT_SIZE, NULL,
                                             frame->ctx, pool_task, work};
    XLA_FFI_Error *err = frame->api->XLA_FFI_ThreadPool_Schedule(&args);
    if (err != NULL) { /* no pool: the caller runs every part */
      drop(frame, err);
      atomic_fetch_sub(&work->users, 1);
      break;
    }
  }
  claim_parts(work);
  while (atomic_load(&work->finished) < parts) sched_yield(); /* parts other threads run */

  double J = 0, db = 0;
  for (int64_t k = 0; k < parts; k++) {
    J += tasks[k].J;
    db += tasks[k].db;
  }
  void *J_out = buffer(frame->rets.rets[0])->data, *dw_out = buffer(frame->rets.rets[1])->data;
  void *db_out = buffer(frame->rets.rets[2])->data;
  for (int64_t i = 0; i < n; i++) {
    double total = 0;
    for (int64_t k = 0; k < parts; k++) total += totals[k * n + i];
    if (itemsize == 4) ((float *)dw_out)[i] = (float)total;
    else ((double *)dw_out)[i] = total;
  }
  if (itemsize == 4) {
    *(float *)J_out = (float)J;
    *(float *)db_out = (float)db;
  } else {
    *(double *)J_out = J;
    *(double *)db_out = db;
  }
  release(work);
  return NULL;
}

XLA_FFI_Error *jaxlogreg_value_and_grad_f32(XLA_FFI_CallFrame *frame) {
  return value_and_grad(frame, XLA_FFI_DataType_F32, task_f32);
}

XLA_FFI_Error *jaxlogreg_value_and_grad_f64(XLA_FFI_CallFrame *frame) {
  return value_and_grad(frame, XLA_FFI_DataType_F64, task_f64);
}
