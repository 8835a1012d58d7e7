/* Coordinate descent on columns for binary L1 / elastic-net logistic regression (plain C, called
 * through ctypes by jaxlogreg.training.working_set, which checks every shape, dtype, index and
 * bound before a call; nothing here reads an index it has not been given checked).
 *
 * jaxlogreg_cd_solve_{f32,f64}: proximal Newton on a working set W of k columns, v = (w_W, b):
 *   J(v) = Σ_i s_i (softplus(z_i) - y_i z_i) + l1 Σ_{j<k} |v_j| + ½ l2 Σ_{j<k} v_j²,
 *   z = X_W w_W + b (+ whatever the caller put in z beforehand; it is kept up to date).
 *   Each Newton step: D_i = s_i σ(z_i)(1 - σ(z_i)), g = ∇ of J's smooth part; the direction d
 *   minimises gᵀd + ½ dᵀ(X̃ᵀ D X̃ + l2 I_W)d + l1 Σ_{j<k} |v_j + d_j| (X̃ = [X_W 1]) by cyclic
 *   coordinate descent keeping r = X̃ d up to date (soft-thresholding per column, the intercept
 *   one more coordinate), until no coordinate moves its gradient by more than cd_tol (forcing
 *   times the step's KKT violation, at least cd_floor times max |g|: inexact Newton; the
 *   forcing quartered after a direction that took one sweep, as liblinear's newGLMNET); then a
 *   backtracking (Armijo) line search on the true J. Steps stop when the largest KKT violation
 *   on W (cd_violation) is at most tol, when a step does not lower J (rounding), or after
 *   max_newton steps.
 *   X_W: CSC (colptr int64 (k+1), rowind int32, vals of the dtype) or, colptr NULL, a dense
 *   column-major block (m, k). Sums in float64. work: 3m + 5(k+1) doubles. Returns the steps.
 *
 * jaxlogreg_cd_csr_{matvec,rmatvec,columns}_{f32,f64}: products of a CSR X (m, n; indptr int64,
 *   indices int32) with float64 vectors, in float64, and the CSC copy of the columns in W;
 *   jaxlogreg_cd_column_counts: the entries per column.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

static double cd_sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

static double cd_softplus(double z) { return (z > 0 ? z : 0.0) + log1p(exp(-fabs(z))); }

static double cd_soft_threshold(double x, double t) {
    return x > t ? x - t : (x < -t ? x + t : 0.0);
}

/* J at logits z and coefficients v (k + 1, the intercept last, unpenalised). */
static double cd_objective(int64_t m, int64_t k, const double *z, const double *v,
                           const double *y, const double *s, double l1, double l2) {
    double loss = 0.0, penalty = 0.0;
    for (int64_t i = 0; i < m; i++) loss += s[i] * (cd_softplus(z[i]) - y[i] * z[i]);
    for (int64_t j = 0; j < k; j++) penalty += l1 * fabs(v[j]) + 0.5 * l2 * v[j] * v[j];
    return loss + penalty;
}

/* |v + d| - |v| without cancellation when v + d keeps v's sign. */
static double cd_abs_change(double v, double d) {
    double u = v + d;
    if ((u > 0 && v > 0) || (u < 0 && v < 0)) return v > 0 ? d : -d;
    return fabs(u) - fabs(v);
}

/* The KKT violation of coordinate j as coordinate descent sees it: the move of one exact
 * coordinate step times its curvature h, |prox(v - g/h) - v| h (skglm's fixed-point distance).
 * It is the distance of g to -l1 ∂|v| except where v is within a step of 0 (then less: the
 * step stops at 0), so it agrees with the sweeps' stopping test. */
static double cd_violation(double v, double g, double h, double l1) {
    if (!(h > 0)) return 0.0; /* an empty column without l2: g = 0, nothing moves */
    return fabs(cd_soft_threshold(v - g / h, l1 / h) - v) * h;
}

#define CD_COLUMN_LOOP(T, body)                                                          \
    if (colptr) {                                                                        \
        const T *cv = vals;                                                              \
        for (int64_t p = colptr[j]; p < colptr[j + 1]; p++) {                             \
            const int64_t i = rowind[p];                                                  \
            const double x = (double)cv[p];                                               \
            body;                                                                         \
        }                                                                                 \
    } else {                                                                              \
        const T *cv = vals + j * m;                                                       \
        for (int64_t i = 0; i < m; i++) {                                                 \
            const double x = (double)cv[i];                                               \
            body;                                                                         \
        }                                                                                 \
    }

#define CD_DEFINE(T, SUFFIX)                                                                  \
static void cd_gradient_##SUFFIX(int64_t m, int64_t k, const int64_t *colptr,                 \
                                 const int32_t *rowind, const T *vals, const double *resid,    \
                                 const double *D, const double *v, double l2,                  \
                                 int32_t fit_intercept, double *grad, double *h, double *c) {  \
    for (int64_t j = 0; j < k; j++) {                                                          \
        double gj = 0.0, hj = 0.0, cj = 0.0;                                                   \
        CD_COLUMN_LOOP(T, { gj += x * resid[i]; hj += x * x * D[i]; cj += x * D[i]; })         \
        grad[j] = gj + l2 * v[j];                                                              \
        h[j] = hj + l2;                                                                        \
        c[j] = fit_intercept ? cj : 0.0;                                                       \
    }                                                                                          \
    double gb = 0.0, hb = 0.0;                                                                 \
    for (int64_t i = 0; i < m; i++) { gb += resid[i]; hb += D[i]; }                            \
    grad[k] = fit_intercept ? gb : 0.0;                                                        \
    h[k] = fit_intercept ? hb : 0.0;                                                           \
}                                                                                              \
                                                                                               \
/* The Newton direction d (k + 1) and r = X̃ d (m): coordinate descent on the model, sweeps    \
 * over the coordinates that are non-zero in v + d between full sweeps, done when a full sweep   \
 * moves no gradient by more than cd_tol. It keeps Dr = D ⊙ X_W d_W beside D (DDr: (D_i, Dr_i) \
 * pairs, one cache line a row; r is formed at the end, in DDr's second half) and S = Σ Dr, so  \
 * the intercept costs O(1): c_j = Σ_i D_i x_ij. */                                            \
static int64_t cd_direction_##SUFFIX(int64_t m, int64_t k, const int64_t *colptr,             \
                                  const int32_t *rowind, const T *vals, const double *D,       \
                                  const double *v, const double *grad, const double *h,        \
                                  const double *c, double l1, double l2,                       \
                                  double cd_tol, int64_t max_epochs, double *d, double *r,     \
                                  double *DDr, int64_t *active) {                              \
    memset(d, 0, (size_t)(k + 1) * sizeof(double));                                            \
    for (int64_t i = 0; i < m; i++) { DDr[2 * i] = D[i]; DDr[2 * i + 1] = 0.0; }               \
    double S = 0.0, db = 0.0;                                                                  \
    int64_t n_active = 0, full = 1, epoch = 0;                                                 \
    while (epoch++ < max_epochs) {                                                             \
        double change = 0.0;                                                                   \
        const int64_t count = full ? k : n_active;                                             \
        for (int64_t a = 0; a < count; a++) {                                                  \
            const int64_t j = full ? a : active[a];                                            \
            if (!(h[j] > 0)) continue;                                                         \
            double q = 0.0;                                                                    \
            CD_COLUMN_LOOP(T, { q += x * DDr[2 * i + 1]; })                                    \
            q += grad[j] + l2 * d[j] + db * c[j];                                              \
            const double u = v[j] + d[j];                                                      \
            const double delta = cd_soft_threshold(u - q / h[j], l1 / h[j]) - u;               \
            if (delta == 0) continue;                                                          \
            d[j] += delta;                                                                     \
            S += delta * c[j];                                                                 \
            CD_COLUMN_LOOP(T, { DDr[2 * i + 1] += delta * x * DDr[2 * i]; })                   \
            const double moved = fabs(delta) * h[j];                                           \
            change = moved > change ? moved : change;                                          \
        }                                                                                      \
        if (h[k] > 0) {                                                                        \
            const double delta = -(grad[k] + S + db * h[k]) / h[k];                            \
            db += delta;                                                                       \
            const double moved = fabs(delta) * h[k];                                           \
            change = moved > change ? moved : change;                                          \
        }                                                                                      \
        if (full) {                                                                            \
            n_active = 0;                                                                      \
            for (int64_t j = 0; j < k; j++)                                                    \
                if (v[j] + d[j] != 0) active[n_active++] = j;                                  \
        }                                                                                      \
        if (change <= cd_tol && full) break;                                                   \
        full = change <= cd_tol;                                                               \
    }                                                                                          \
    d[k] = db;                                                                                 \
    for (int64_t i = 0; i < m; i++) r[i] = db;                                                 \
    for (int64_t j = 0; j < k; j++) {                                                          \
        const double dj = d[j];                                                                \
        if (dj != 0) { CD_COLUMN_LOOP(T, { r[i] += dj * x; }) }                                \
    }                                                                                          \
    return epoch;                                                                              \
}                                                                                              \
                                                                                               \
int64_t jaxlogreg_cd_solve_##SUFFIX(                                                           \
    int64_t m, int64_t k, const int64_t *colptr, const int32_t *rowind, const T *vals,         \
    const double *y, const double *s, double l1, double l2,                                    \
    int32_t fit_intercept, double tol, int64_t max_newton, int64_t max_epochs,                 \
    double forcing, double cd_floor, double armijo, double slack, int64_t max_halvings,        \
    int64_t max_flat,                                                                          \
    double *v, double *z, double *work) {                                                      \
    double *D = work, *resid = work + m, *r = work + 2 * m; /* resid, r: CD's DDr (2m) */      \
    double *grad = work + 3 * m, *h = grad + (k + 1), *d = h + (k + 1), *c = d + (k + 1);      \
    int64_t *active = (int64_t *)(c + (k + 1));                                                \
    int64_t steps = 0, flat = 0;                                                               \
    double force = forcing; /* quartered after a direction of one sweep (newGLMNET) */         \
    for (; steps < max_newton; steps++) {                                                      \
        for (int64_t i = 0; i < m; i++) {                                                      \
            const double p = cd_sigmoid(z[i]);                                                 \
            resid[i] = s[i] * (p - y[i]);                                                      \
            D[i] = s[i] * p * (1.0 - p);                                                       \
        }                                                                                      \
        cd_gradient_##SUFFIX(m, k, colptr, rowind, vals, resid, D, v, l2, fit_intercept,       \
                             grad, h, c);                                                      \
        double worst = fabs(grad[k]), top = fabs(grad[k]);                                     \
        for (int64_t j = 0; j < k; j++) {                                                      \
            const double e = cd_violation(v[j], grad[j], h[j], l1);                            \
            worst = e > worst ? e : worst;                                                     \
            top = fabs(grad[j]) > top ? fabs(grad[j]) : top;                                   \
        }                                                                                      \
        if (worst <= tol || flat > max_flat) break;                                            \
        const double loose = force * worst, floor = cd_floor * top;                            \
        const double cd_tol = loose > floor ? loose : floor;                                   \
        if (cd_direction_##SUFFIX(m, k, colptr, rowind, vals, D, v, grad, h, c, l1, l2,        \
                                  cd_tol, max_epochs, d, r, resid, active) == 1)               \
            force *= 0.25;                                                                     \
        double decrease = grad[k] * d[k];                                                      \
        for (int64_t j = 0; j < k; j++)                                                        \
            decrease += grad[j] * d[j] + l1 * cd_abs_change(v[j], d[j]);                       \
        if (!(decrease < 0)) break;                                                            \
        const double J = cd_objective(m, k, z, v, y, s, l1, l2);                               \
        const double rounding = slack * 2.220446049250313e-16 * fabs(J);                       \
        double t = 1.0, J_new = J;                                                             \
        int64_t halvings = 0;                                                                  \
        /* trial points in resid (z + t r) and h (v + t d): both are recomputed next step */   \
        for (; halvings < max_halvings; halvings++, t *= 0.5) {                                \
            for (int64_t i = 0; i < m; i++) resid[i] = z[i] + t * r[i];                        \
            for (int64_t j = 0; j <= k; j++) h[j] = v[j] + t * d[j];                           \
            J_new = cd_objective(m, k, resid, h, y, s, l1, l2);                                \
            if (J_new <= J + armijo * t * decrease + rounding) break;                          \
        }                                                                                      \
        if (halvings == max_halvings) break;                                                   \
        memcpy(z, resid, (size_t)m * sizeof(double));                                         \
        memcpy(v, h, (size_t)(k + 1) * sizeof(double));                                        \
        flat = J_new >= J ? flat + 1 : 0;                                                      \
    }                                                                                          \
    return steps;                                                                              \
}                                                                                              \
                                                                                               \
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
/* position[j]: the column of X in W (-1: not in W); next: a copy of colptr[:k] (consumed). */ \
void jaxlogreg_cd_csr_columns_##SUFFIX(int64_t m, const int64_t *indptr,                      \
                                       const int32_t *indices, const T *data,                  \
                                       const int64_t *position, int64_t *next,                 \
                                       int32_t *rowind, T *vals) {                             \
    for (int64_t i = 0; i < m; i++) {                                                          \
        for (int64_t p = indptr[i]; p < indptr[i + 1]; p++) {                                  \
            const int64_t c = position[indices[p]];                                            \
            if (c < 0) continue;                                                               \
            rowind[next[c]] = (int32_t)i;                                                      \
            vals[next[c]++] = data[p];                                                         \
        }                                                                                      \
    }                                                                                          \
}

/* counts[j] (n, zeroed here): the stored entries of column j; indices in [0, n). */
void jaxlogreg_cd_column_counts(int64_t nnz, int64_t n, const int32_t *indices, int64_t *counts) {
    memset(counts, 0, (size_t)n * sizeof(int64_t));
    for (int64_t p = 0; p < nnz; p++) counts[indices[p]]++;
}

CD_DEFINE(float, f32)
CD_DEFINE(double, f64)
