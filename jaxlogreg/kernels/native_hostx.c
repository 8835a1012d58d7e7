/* Products and working-set columns of a CSR X (m, n; indptr int64, indices int32, data float32
 * or float64) for jaxlogreg.kernels.native_cd.HostX, which checks every shape, dtype, index and
 * bound before a call (plain C, through ctypes):
 *
 * jaxlogreg_cd_csr_{matvec,rmatvec}_{f32,f64}: X w + b and Xᵀu with float64 vectors, in float64;
 * jaxlogreg_cd_csr_columns_{f32,f64}: the CSC copy of the columns in a working set W;
 * jaxlogreg_cd_copy_columns_{f32,f64}: columns copied from an earlier working set's CSC;
 * jaxlogreg_cd_column_counts: the entries per column.
 */
#include <stdint.h>
#include <string.h>

#define HOSTX_DEFINE(T, SUFFIX)                                                                \
void jaxlogreg_cd_csr_matvec_##SUFFIX(int64_t m, const int64_t *indptr,                       \
                                      const int32_t *indices, const T *data, const double *w,  \
                                      double b, double *z) {                                   \
    for (int64_t i = 0; i < m; i++) {                                                          \
        double acc = b;                                                                        \
        for (int64_t p = indptr[i]; p < indptr[i + 1]; p++)                                    \
            acc += (double)data[p] * w[indices[p]];                                            \
        z[i] = acc;                                                                            \
    }                                                                                          \
}                                                                                              \
                                                                                               \
void jaxlogreg_cd_csr_rmatvec_##SUFFIX(int64_t m, int64_t n, const int64_t *indptr,           \
                                       const int32_t *indices, const T *data, const double *u, \
                                       double *out) {                                          \
    memset(out, 0, (size_t)n * sizeof(double));                                                \
    for (int64_t i = 0; i < m; i++) {                                                          \
        const double ui = u[i];                                                                \
        for (int64_t p = indptr[i]; p < indptr[i + 1]; p++)                                    \
            out[indices[p]] += (double)data[p] * ui;                                           \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* position[j]: the column of X in W, read where bit j of `in_ws` (n bits, little-endian bytes) \
 * is set (the bit test is in L1 cache, a position table of 8n bytes is not); next: a copy of  \
 * colptr[:k] (consumed). */                                                                   \
void jaxlogreg_cd_csr_columns_##SUFFIX(int64_t m, const int64_t *indptr,                       \
                                       const int32_t *indices, const T *data,                  \
                                       const uint8_t *in_ws, const int64_t *position,          \
                                       int64_t *next, int32_t *rowind, T *vals) {              \
    for (int64_t i = 0; i < m; i++) {                                                          \
        for (int64_t p = indptr[i]; p < indptr[i + 1]; p++) {                                  \
            const int32_t j = indices[p];                                                      \
            if (!((in_ws[j >> 3] >> (j & 7)) & 1)) continue;                                   \
            const int64_t c = position[j];                                                     \
            rowind[next[c]] = (int32_t)i;                                                      \
            vals[next[c]++] = data[p];                                                         \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* Column c of the destination CSC (dst_colptr) copied from column src[c] of an earlier CSC,  \
 * for each of its k columns with src[c] >= 0 (the others are left as they are). */           \
void jaxlogreg_cd_copy_columns_##SUFFIX(int64_t k, const int64_t *src,                         \
                                        const int64_t *src_colptr, const int32_t *src_rowind,  \
                                        const T *src_vals, const int64_t *dst_colptr,          \
                                        int32_t *dst_rowind, T *dst_vals) {                    \
    for (int64_t c = 0; c < k; c++) {                                                          \
        if (src[c] < 0) continue;                                                              \
        const int64_t from = src_colptr[src[c]], count = src_colptr[src[c] + 1] - from;        \
        memcpy(dst_rowind + dst_colptr[c], src_rowind + from, (size_t)count * sizeof(int32_t)); \
        memcpy(dst_vals + dst_colptr[c], src_vals + from, (size_t)count * sizeof(T));          \
    }                                                                                          \
}

/* counts[j] (n, zeroed here): the stored entries of column j (< 2^31: rows are int32); indices
 * in [0, n). */
void jaxlogreg_cd_column_counts(int64_t nnz, int64_t n, const int32_t *indices, int32_t *counts) {
    memset(counts, 0, (size_t)n * sizeof(int32_t));
    for (int64_t p = 0; p < nnz; p++) counts[indices[p]]++;
}

HOSTX_DEFINE(float, f32)
HOSTX_DEFINE(double, f64)
