/* What the C kernels share (native_kernel.c, native_csr.c, each including it): headers,
 * glibc's vector math, parts of work on XLA's thread pool, FFI errors, buffers and metadata.
 *
 * Work is split into parts that run on XLA's own thread pool (the FFI's ThreadPool_Schedule),
 * so a kernel never competes with XLA's threads for the cores: the calling thread schedules a
 * task per extra thread, then claims parts itself until none is left, and waits only for parts
 * that another thread has claimed (a task that starts after every part is claimed just
 * returns). Everything here is static: each kernel's file has its own copy.
 */
#ifndef JAXLOGREG_NATIVE_COMMON_H
#define JAXLOGREG_NATIVE_COMMON_H

#define _GNU_SOURCE
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "native_math.h"
#include "xla/ffi/api/c_api.h"


/* ---------------------------------------------------------------------------------------- */
/* Parts on XLA's thread pool                                                                */

typedef void (*RunPart)(void *task);

/* The parts of one call, shared by the caller and its pool tasks; freed by the last of them.
 * A pool task that starts after every part is claimed reads only this struct. */
typedef struct {
  atomic_int next;     /* the next part to claim */
  atomic_int finished; /* parts done */
  atomic_int users;    /* the caller and the scheduled tasks that have not returned */
  int parts;
  RunPart run;
  char *tasks;
  size_t task_size;
} Work;

static void release(Work *work) {
  if (atomic_fetch_sub(&work->users, 1) == 1) free(work);
}

static void claim_parts(Work *work) {
  for (int k; (k = atomic_fetch_add(&work->next, 1)) < work->parts;) {
    work->run(work->tasks + (size_t)k * work->task_size);
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

static int64_t cpus(void) {
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
  long count = sysconf(_SC_NPROCESSORS_ONLN);
  return count > 0 ? count : 1;
}

/* Threads that may run parts: the CPUs, at most the threads of XLA's pool (1 without one). */
static int64_t threads_for(const XLA_FFI_CallFrame *frame) {
  const size_t needed = offsetof(XLA_FFI_Api, XLA_FFI_ThreadPool_NumThreads) +
                        sizeof(frame->api->XLA_FFI_ThreadPool_NumThreads);
  int64_t threads = 1, count = cpus();
  if (frame->api->struct_size < needed) return 1;
  XLA_FFI_ThreadPool_NumThreads_Args args = {XLA_FFI_ThreadPool_NumThreads_Args_STRUCT_SIZE,
                                             NULL, frame->ctx, &threads};
  XLA_FFI_Error *err = frame->api->XLA_FFI_ThreadPool_NumThreads(&args);
  if (err != NULL) {
    drop(frame, err);
    return 1;
  }
  threads = threads > 0 ? threads : 1;
  return threads < count ? threads : count;
}

/* Runs `run` on each of the `parts` tasks (`task_size` bytes apart), on the caller and on up to
 * threads - 1 tasks of XLA's pool; returns when all are done: 0, or -1 out of memory. */
static int run_parts(const XLA_FFI_CallFrame *frame, int64_t threads, int64_t parts,
                     RunPart run, void *tasks, size_t task_size) {
  Work *work = calloc(1, sizeof(Work));
  if (work == NULL) return -1;
  work->parts = (int)parts;
  work->run = run;
  work->tasks = tasks;
  work->task_size = task_size;
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
  release(work);
  return 0;
}

static XLA_FFI_Error *metadata(XLA_FFI_CallFrame *frame) {
  XLA_FFI_Metadata *out = ((XLA_FFI_Metadata_Extension *)frame->extension_start)->metadata;
  XLA_FFI_Api_Version version = {XLA_FFI_Api_Version_STRUCT_SIZE, NULL, XLA_FFI_API_MAJOR,
                                 XLA_FFI_API_MINOR};
  out->api_version = version;
  out->traits = 0;
  return NULL;
}

static XLA_FFI_Buffer *arg(const XLA_FFI_CallFrame *frame, int k) {
  return (XLA_FFI_Buffer *)frame->args.args[k];
}

static XLA_FFI_Buffer *ret(const XLA_FFI_CallFrame *frame, int k) {
  return (XLA_FFI_Buffer *)frame->rets.rets[k];
}

/* Whether the frame has `args` array inputs and `rets` array outputs, nothing else. */
static inline int buffers_only(const XLA_FFI_CallFrame *frame, int64_t args, int64_t rets) {
  if (frame->args.size != args || frame->rets.size != rets) return 0;
  for (int64_t k = 0; k < args; k++)
    if (frame->args.types[k] != XLA_FFI_ArgType_BUFFER) return 0;
  for (int64_t k = 0; k < rets; k++)
    if (frame->rets.types[k] != XLA_FFI_RetType_BUFFER) return 0;
  return 1;
}

/* Whether two buffers have one dtype and one shape. */
static inline int same_shape(const XLA_FFI_Buffer *a, const XLA_FFI_Buffer *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int64_t d = 0; d < a->rank; d++)
    if (a->dims[d] != b->dims[d]) return 0;
  return 1;
}

static void store(void *out, int64_t i, double value, int itemsize) {
  if (itemsize == 4) ((float *)out)[i] = (float)value;
  else ((double *)out)[i] = value;
}

#endif /* JAXLOGREG_NATIVE_COMMON_H */
