/* Coordinate descent on columns for binary L1 / elastic-net logistic regression (plain C, called
 * through ctypes by jaxlogreg.training.working_set, which checks every shape, dtype, index and
 * bound before a call; nothing here reads an index it has not been given checked).
 *
 * jaxlogreg_cd_solve_{f32,f64}: proximal Newton on a working set W of k columns, v = (w_W, b):
 *   J(v) = Σ_i s_i (softplus(z_i) - y_i z_i) + l1 Σ_{j<k} |v_j| + ½ l2 Σ_{j<k} v_j²,
 *   z = X_W w_W + b (+ whatever the caller put in z beforehand; it is kept up to date).
 *   Each Newton step: D_i = s_i σ(z_i)(1 - σ(z_i)), g = ∇ of J's smooth part; the direction d
 *   minimises gᵀd + ½ dᵀ(X̃ᵀ D X̃ + l2 I_W)d + l1 Σ_{j<k} |v_j + d_j| (X̃ = [X_W 1]) by cyclic
 *   coordinate descent keeping r = X̃ d up to date (soft-thresholding per column, the intercept one
 *   more coordinate), until no coordinate moves its gradient by more than cd_tol (forcing times the
 *   step's KKT violation, at least cd_floor times max |g|: inexact Newton; the forcing quartered
 *   after a direction no sweep of which moved that much, as liblinear's newGLMNET); then a
 *   backtracking (Armijo) line search on the true J. Steps stop when the largest KKT violation on W
 *   (cd_violation) is at most tol, when a step does not lower J (rounding), or after max_newton
 *   steps. Every `anderson` + 1 sweeps over one active set, the direction moves to the Anderson
 *   extrapolation of those iterates when that lowers the model (0: never; at most CD_MAX_ANDERSON):
 *   Bertrand and Massias's (2021) accelerated coordinate descent. X_W: CSC (colptr int64 (k+1),
 *   rowind int32, vals of the dtype) or, colptr NULL, a dense column-major block (m, k). Sums in
 *   float64. work: (2 + max(anderson - 1, 0))m + (6 + anderson)(k + 1) + anderson² doubles.
 *   Returns the steps.
 * The products and column copies of a CSR X that the solver's caller needs: native_hostx.c.
 */
#include <stdint.h>
#include <string.h>

#include "native_math.h"

#define CD_MAX_ANDERSON 16 /* the largest K of Anderson extrapolation */

static double cd_soft_threshold(double x, double t) {
    return x > t ? x - t : (x < -t ? x + t : 0.0);
}

/* J at logits z and coefficients v (k + 1, the intercept last, unpenalised). */
static double cd_objective(int64_t m, int64_t k, const double *z, const double *v,
                           const double *y, const double *s, double l1, double l2) {
    double loss = 0.0, penalty = 0.0;
    for (int64_t i = 0; i < m; i++) loss += s[i] * (jl_softplus(z[i]) - y[i] * z[i]);
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

/* Anderson extrapolation (Bertrand and Massias 2021, as skglm's) of the iterates x_0 .. x_K
 * (hist, K + 1 rows of n): out (n, may be w) = Σ_i c_i x_{i+1} = x_K - Σ_{i<K-1} coef_i (x_{i+2}
 * - x_{i+1}) (differences: little rounding), coef (K) the partial sums of c = z / Σ z, U W Uᵀ z
 * = 1, U's rows x_{i+1} - x_i, W = diag(w), w the coordinates' curvatures h (unweighted, the
 * least squares would follow the columns of few entries, which move far at little cost). gram:
 * K² doubles. 0 (out untouched) when the system is singular to working precision. */
static int cd_anderson(int64_t K, int64_t n, const double *hist, const double *w, double *gram,
                       double *coef, double *out) {
    double scale = 0.0, total = 0.0;
    for (int64_t a = 0; a < K; a++) {
        for (int64_t b = 0; b <= a; b++) {
            double acc = 0.0;
            const double *xa = hist + a * n, *xb = hist + b * n;
            for (int64_t j = 0; j < n; j++) acc += w[j] * (xa[n + j] - xa[j]) * (xb[n + j] - xb[j]);
            gram[a * K + b] = acc;
        }
        scale = gram[a * K + a] > scale ? gram[a * K + a] : scale;
    }
    for (int64_t a = 0; a < K; a++) { /* Cholesky, in place below the diagonal; L y = 1 */
        for (int64_t b = 0; b <= a; b++) {
            double acc = gram[a * K + b];
            for (int64_t c = 0; c < b; c++) acc -= gram[a * K + c] * gram[b * K + c];
            if (a > b) gram[a * K + b] = acc / gram[b * K + b];
            else if (!(acc > 1e-14 * scale)) return 0;
            else gram[a * K + a] = sqrt(acc);
        }
        coef[a] = 1.0;
        for (int64_t c = 0; c < a; c++) coef[a] -= gram[a * K + c] * coef[c];
        coef[a] /= gram[a * K + a];
    }
    for (int64_t a = K - 1; a >= 0; a--) { /* Lᵀ z = y */
        for (int64_t c = a + 1; c < K; c++) coef[a] -= gram[c * K + a] * coef[c];
        coef[a] /= gram[a * K + a], total += coef[a];
    }
    if (!(fabs(total) > 0) || !isfinite(total)) return 0;
    for (int64_t a = 0; a < K; a++) coef[a] = coef[a] / total + (a > 0 ? coef[a - 1] : 0.0);
    for (int64_t j = 0; j < n; j++) out[j] = hist[K * n + j]; /* w is read: out may be w */
    for (int64_t a = 1; a < K; a++)
        for (int64_t j = 0; j < n; j++)
            out[j] -= coef[a - 1] * (hist[(a + 1) * n + j] - hist[a * n + j]);
    return 1;
}

/* The Newton model's terms but the quadratic that `active` and the intercept change, d on them
 * (dw[a] for coordinate active[a], db): Σ_a (g_j d_j + l2/2 d_j² + l1 |v_j + d_j|) + g_b db. */
static double cd_linear(int64_t n_active, const int64_t *active, const double *dw, double db,
                        const double *v, const double *grad, double gb, double l1, double l2) {
    double linear = gb * db;
    for (int64_t a = 0; a < n_active; a++)
        linear += (grad[active[a]] + 0.5 * l2 * dw[a]) * dw[a] + l1 * fabs(v[active[a]] + dw[a]);
    return linear;
}

/* Row i of r's extrapolation, as out in cd_anderson: r_K - Σ_{a=1}^{K-1} coef_{a-1} (r_{a+1} -
 * r_a), r_K DDr's r (the last iterate), r_1 .. r_{K-1} the rows of rhist (r_0 is not used). */
static double cd_r_extrapolated(int64_t m, int64_t K, int64_t i, const double *rhist,
                                const double *coef, const double *DDr) {
    double r = DDr[2 * i + 1];
    for (int64_t a = 1; a < K; a++) {
        const double next = a + 1 < K ? rhist[a * m + i] : DDr[2 * i + 1];
        r -= coef[a - 1] * (next - rhist[(a - 1) * m + i]);
    }
    return r;
}

/* Moves the coordinates in `active` (and the intercept) of the direction d, DDr's r and S =
 * Σ_i D_i r_i to the Anderson extrapolation of the last K + 1 iterates (hist: d on `active`
 * and db, K + 1 rows; rhist: r's iterates 1 .. K - 1, K - 1 rows of m, the last being DDr's r;
 * r is linear in d, so its extrapolation is the same combination of its iterates) when that
 * lowers the model (a pass that writes nothing, then one that moves r): 1; else 0, as is. */
static int cd_extrapolate(int64_t m, int64_t K, int64_t n_active, const int64_t *active,
                          const double *hist, const double *rhist, double *gram, double *acc,
                          double *DDr, double *d, double *db, double *S, const double *v,
                          const double *grad, const double *h, int64_t k, double l1, double l2) {
    double coef[CD_MAX_ANDERSON], total = 0.0, before = 0.0, after = 0.0;
    for (int64_t a = 0; a < n_active; a++) acc[a] = h[active[a]];
    acc[n_active] = h[k];
    if (!cd_anderson(K, n_active + 1, hist, acc, gram, coef, acc)) return 0;
    const double *now = hist + K * (n_active + 1), db_now = now[n_active], db_new = acc[n_active];
    for (int64_t i = 0; i < m; i++) {
        const double r = DDr[2 * i + 1] + db_now;
        const double r_new = cd_r_extrapolated(m, K, i, rhist, coef, DDr) + db_new;
        before += DDr[2 * i] * r * r, after += DDr[2 * i] * r_new * r_new;
    }
    before = 0.5 * before + cd_linear(n_active, active, now, db_now, v, grad, grad[k], l1, l2);
    after = 0.5 * after + cd_linear(n_active, active, acc, db_new, v, grad, grad[k], l1, l2);
    if (!(after < before)) return 0;
    for (int64_t i = 0; i < m; i++) {
        DDr[2 * i + 1] = cd_r_extrapolated(m, K, i, rhist, coef, DDr);
        total += DDr[2 * i] * DDr[2 * i + 1];
    }
    for (int64_t a = 0; a < n_active; a++) d[active[a]] = acc[a];
    *db = db_new, *S = total;
    return 1;
}

#define CD_COLUMN_LOOP(body)                                                             \
    if (colptr) {                                                                        \
        for (int64_t p = colptr[j]; p < colptr[j + 1]; p++) {                             \
            const int64_t i = rowind[p];                                                  \
            const double x = (double)vals[p];                                             \
            body;                                                                         \
        }                                                                                 \
    } else {                                                                              \
        for (int64_t i = 0; i < m; i++) {                                                 \
            const double x = (double)vals[j * m + i];                                     \
            body;                                                                         \
        }                                                                                 \
    }

/* GCC's gathers cost more than scalar loads on a CSC column's few entries: its sweeps over CSC
 * columns are left scalar, over dense ones not. CD_TERM: entry p's term of a column's x_jᵀ D r. */
#define CD_TERM(p) \
    ((double)vals[p] * (DDr[2 * (int64_t)rowind[p]] * DDr[2 * (int64_t)rowind[p] + 1]))
#define CD_DX(p) ((double)vals[p] * DDr[2 * (int64_t)rowind[p]]) /* entry p's term of c_j */
#if defined(__GNUC__) && !defined(__clang__)
#define CD_SCALAR __attribute__((optimize("no-tree-vectorize")))
#else
#define CD_SCALAR
#endif

#define CD_SWEEP(T, NAME, ATTRIBUTE)                                                           \
/* One sweep of cd_direction over `count` coordinates (active[a], or a when active is NULL): d, \
 * DDr's r and S (+= Σ Δd_j c_j, c_j = Σ_i x_ij D_i summed with x_jᵀ D r) updated; returns the  \
 * largest move of a gradient, |Δd_j| h_j. */                                                  \
static ATTRIBUTE double NAME(int64_t m, int64_t count, const int64_t *active,                  \
    const int64_t *colptr, const int32_t *rowind, const T *vals, const double *v,              \
    const double *grad, const double *h, double l1, double l2, double db,                      \
    double *d, double *DDr, double *S) {                                                       \
    double change = 0.0, sum = *S;                                                             \
    for (int64_t a = 0; a < count; a++) {                                                      \
        const int64_t j = active ? active[a] : a;                                              \
        if (!(h[j] > 0)) continue;                                                             \
        double q = 0.0, q1 = 0.0, cj = 0.0;                                                    \
        if (colptr) { /* two sums: the latency of their additions bounds each */               \
            int64_t p = colptr[j];                                                             \
            for (; p + 1 < colptr[j + 1]; p += 2)                                              \
                q += CD_TERM(p), q1 += CD_TERM(p + 1), cj += CD_DX(p) + CD_DX(p + 1);          \
            if (p < colptr[j + 1]) q += CD_TERM(p), cj += CD_DX(p);                            \
            q += q1;                                                                           \
        } else {                                                                               \
            const T *cv = vals + j * m;                                                        \
            for (int64_t i = 0; i < m; i++)                                                    \
                q += cv[i] * (DDr[2 * i] * DDr[2 * i + 1]), cj += cv[i] * DDr[2 * i];          \
        }                                                                                      \
        q += grad[j] + l2 * d[j] + db * cj;                                                    \
        const double u = v[j] + d[j], delta = cd_soft_threshold(u - q / h[j], l1 / h[j]) - u;  \
        if (delta == 0) continue;                                                              \
        d[j] += delta, sum += delta * cj;                                                      \
        CD_COLUMN_LOOP({ DDr[2 * i + 1] += delta * x; })                                       \
        change = fabs(delta) * h[j] > change ? fabs(delta) * h[j] : change;                    \
    }                                                                                          \
    *S = sum; return change;                                                                   \
}

#define CD_DEFINE(T, SUFFIX)                                                                  \
/* g and h = diag(X̃ᵀ D X̃) (+ l2) from DR: (D_i, s_i (σ(z_i) - y_i)) pairs. */                 \
static void cd_gradient_##SUFFIX(int64_t m, int64_t k, const int64_t *colptr,                 \
    const int32_t *rowind, const T *vals, const double *DR, const double *v, double l2,        \
    int32_t fit_intercept, double *grad, double *h) {                                          \
    for (int64_t j = 0; j < k; j++) {                                                          \
        double gj = 0.0, hj = 0.0;                                                             \
        CD_COLUMN_LOOP({ gj += x * DR[2 * i + 1]; hj += x * x * DR[2 * i]; })                  \
        grad[j] = gj + l2 * v[j];                                                              \
        h[j] = hj + l2;                                                                        \
    }                                                                                          \
    double gb = 0.0, hb = 0.0;                                                                 \
    for (int64_t i = 0; i < m; i++) { gb += DR[2 * i + 1]; hb += DR[2 * i]; }                  \
    grad[k] = fit_intercept ? gb : 0.0;                                                        \
    h[k] = fit_intercept ? hb : 0.0;                                                           \
}                                                                                              \
                                                                                               \
/* The Newton direction d (k + 1) and r = X̃ d (m) by coordinate descent on the model: sweeps  \
 * over the coordinates non-zero in v + d (at first: in v, or with |g_j| > l1) between full    \
 * ones, until a full sweep moves no gradient by more than cd_tol; returns the sweeps that did. \
 * DDr: (D_i, r_W,i = (X_W d_W)_i) pairs, one cache line a row (D given, r written over its   \
 * second half at the end); S = Σ D r_W, so the intercept costs O(1) (c_j = Σ_i D_i x_ij). Every \
 * K + 1 sweeps over one active set, cd_extrapolate (K = 0: never; rhist: (K - 1) m). */        \
static int64_t cd_direction_##SUFFIX(int64_t m, int64_t k, const int64_t *colptr,              \
    const int32_t *rowind, const T *vals, const double *v, const double *grad, const double *h, \
    double l1, double l2, double cd_tol, int64_t max_epochs, int64_t K, double *d, double *DDr, \
    int64_t *active, double *hist, double *gram, double *acc, double *rhist) {                 \
    memset(d, 0, (size_t)(k + 1) * sizeof(double));                                            \
    for (int64_t i = 0; i < m; i++) DDr[2 * i + 1] = 0.0;                                      \
    double S = 0.0, db = 0.0;                                                                  \
    int64_t n_active = 0, full = 0, epoch = 0, kept = 0, moved = 0, extrapolated = 0;          \
    for (int64_t j = 0; j < k; j++)                                                            \
        if (v[j] != 0 || fabs(grad[j]) > l1) active[n_active++] = j;                           \
    while (epoch++ < max_epochs) {                                                             \
        double change = (colptr ? cd_sweep_sparse_##SUFFIX : cd_sweep_##SUFFIX)(               \
            m, full ? k : n_active, full ? NULL : active, colptr, rowind, vals, v, grad, h,    \
            l1, l2, db, d, DDr, &S);                                                           \
        const double delta = h[k] > 0 ? -(grad[k] + S + db * h[k]) / h[k] : 0.0;               \
        db += delta;                                                                           \
        change = fabs(delta) * h[k] > change ? fabs(delta) * h[k] : change;                    \
        if (full) { /* the active set anew; Anderson's iterates go on while it stays */        \
            int64_t count = 0, same = 1;                                                       \
            for (int64_t j = 0; j < k; j++) {                                                  \
                if (v[j] + d[j] == 0) continue;                                                \
                same = same && count < n_active && active[count] == j;                         \
                active[count++] = j;                                                           \
            }                                                                                  \
            kept = same && count == n_active ? kept : 0;                                       \
            n_active = count;                                                                  \
        }                                                                                      \
        if (K > 0 && !(change <= cd_tol && full)) { /* not after the last sweep */             \
            double *x = hist + kept * (n_active + 1);                                          \
            for (int64_t a = 0; a < n_active; a++) x[a] = d[active[a]];                        \
            x[n_active] = db;                                                                  \
            for (int64_t i = 0; kept > 0 && kept < K && i < m; i++) /* r_1 .. r_{K-1} */      \
                rhist[(kept - 1) * m + i] = DDr[2 * i + 1];                                    \
            if (++kept == K + 1) {                                                             \
                extrapolated |= cd_extrapolate(m, K, n_active, active, hist, rhist, gram, acc, \
                                               DDr, d, &db, &S, v, grad, h, k, l1, l2);        \
                kept = 0;                                                                      \
            }                                                                                  \
        }                                                                                      \
        if (change <= cd_tol && full) break;                                                   \
        full = change <= cd_tol, moved += !full;                                               \
    }                                                                                          \
    d[k] = db; /* r anew from d after an extrapolation, whose rounding would grow in z: */     \
    for (int64_t i = 0; i < m && extrapolated; i++) DDr[2 * i + 1] = 0.0;                      \
    for (int64_t j = 0; j < k && extrapolated; j++)                                            \
        if (d[j] != 0) { CD_COLUMN_LOOP({ DDr[2 * i + 1] += d[j] * x; }) }                     \
    double *r = DDr + m; /* backwards: r[i] = DDr[m + i] is written after DDr[2i + 1] is read */ \
    for (int64_t i = m - 1; i >= 0; i--) r[i] = DDr[2 * i + 1] + db;                           \
    return moved;                                                                              \
}                                                                                              \
                                                                                               \
int64_t jaxlogreg_cd_solve_##SUFFIX(                                                           \
    int64_t m, int64_t k, const int64_t *colptr, const int32_t *rowind, const T *vals,         \
    const double *y, const double *s, double l1, double l2, int32_t fit_intercept, double tol, \
    int64_t max_newton, int64_t max_epochs, double forcing, double cd_floor, double armijo,    \
    double slack, int64_t max_halvings, int64_t max_flat, int64_t anderson, double *v, double *z, \
    double *work) {                                                                            \
    double *DDr = work, *trial = work, *r = work + m; /* trial z, r: after CD, over its DDr */  \
    double *grad = work + 2 * m, *h = grad + (k + 1), *d = h + (k + 1), *acc = d + (k + 1);    \
    if (anderson < 0 || anderson > CD_MAX_ANDERSON) anderson = 0; /* checked by the caller */  \
    double *hist = acc + (k + 1), *gram = hist + (anderson + 1) * (k + 1);                     \
    double *rhist = gram + anderson * anderson; /* (anderson - 1) m */                         \
    int64_t *active = (int64_t *)(rhist + (anderson > 1 ? anderson - 1 : 0) * m);              \
    int64_t steps = 0, flat = 0;                                                               \
    double force = forcing; /* quartered after a direction no sweep moved (newGLMNET) */       \
    double J = cd_objective(m, k, z, v, y, s, l1, l2); /* then each accepted step's */         \
    for (; steps < max_newton; steps++) {                                                      \
        for (int64_t i = 0; i < m; i++) {                                                      \
            const double p = jl_sigmoid(z[i]);                                                 \
            DDr[2 * i] = s[i] * p * (1.0 - p);                                                 \
            DDr[2 * i + 1] = s[i] * (p - y[i]);                                                \
        }                                                                                      \
        cd_gradient_##SUFFIX(m, k, colptr, rowind, vals, DDr, v, l2, fit_intercept, grad, h);  \
        double worst = fabs(grad[k]), top = fabs(grad[k]);                                     \
        for (int64_t j = 0; j < k; j++) {                                                      \
            const double e = cd_violation(v[j], grad[j], h[j], l1);                            \
            worst = e > worst ? e : worst;                                                     \
            top = fabs(grad[j]) > top ? fabs(grad[j]) : top;                                   \
        }                                                                                      \
        if (worst <= tol || flat > max_flat) break;                                            \
        const double loose = force * worst, floor = cd_floor * top;                            \
        const double cd_tol = loose > floor ? loose : floor;                                   \
        if (cd_direction_##SUFFIX(m, k, colptr, rowind, vals, v, grad, h, l1, l2, cd_tol,      \
                                  max_epochs, anderson, d, DDr, active, hist, gram, acc,       \
                                  rhist) == 0)                                                 \
            force *= 0.25;                                                                     \
        double decrease = grad[k] * d[k];                                                      \
        for (int64_t j = 0; j < k; j++)                                                        \
            decrease += grad[j] * d[j] + l1 * cd_abs_change(v[j], d[j]);                       \
        if (!(decrease < 0)) break;                                                            \
        const double rounding = slack * 2.220446049250313e-16 * fabs(J);                       \
        double t = 1.0, J_new = J;                                                             \
        int64_t halvings = 0;                                                                  \
        /* trial points in trial (z + t r) and h (v + t d): both are recomputed next step */   \
        for (; halvings < max_halvings; halvings++, t *= 0.5) {                                \
            for (int64_t i = 0; i < m; i++) trial[i] = z[i] + t * r[i];                        \
            for (int64_t j = 0; j <= k; j++) h[j] = v[j] + t * d[j];                           \
            J_new = cd_objective(m, k, trial, h, y, s, l1, l2);                                \
            if (J_new <= J + armijo * t * decrease + rounding) break;                          \
        }                                                                                      \
        if (halvings == max_halvings) break;                                                   \
        memcpy(z, trial, (size_t)m * sizeof(double));                                         \
        memcpy(v, h, (size_t)(k + 1) * sizeof(double));                                        \
        flat = J_new >= J ? flat + 1 : 0;                                                      \
        J = J_new;                                                                             \
    }                                                                                          \
    return steps;                                                                              \
}

CD_SWEEP(float, cd_sweep_f32, )
CD_SWEEP(float, cd_sweep_sparse_f32, CD_SCALAR)
CD_SWEEP(double, cd_sweep_f64, )
CD_SWEEP(double, cd_sweep_sparse_f64, CD_SCALAR)
CD_DEFINE(float, f32)
CD_DEFINE(double, f64)
