/* The binary duality gap's passes over the rows (plain C, called through ctypes by
 * jaxlogreg.kernels.native_cd, which checks every length and dtype before a call): the same
 * mathematics as jaxlogreg.training.certificate's JAX functions (intercept_shift,
 * _dual_residual, _gap), in float64, sums in a fixed order (blocks of GAP_BLOCK rows, then the
 * blocks' sums).
 *
 * jaxlogreg_cd_gap_dual_point: δ with Σ s σ(z + δ) = Σ s y (Newton from 0, at most `steps`
 *   steps, stopping once a step moves δ by at most sqrt(eps)(1 + |δ|); 0 when steps is 0 or y
 *   has one class only), p = σ(z + δ), u = s (y - p), out = (Σ s softplus((1 - 2y) z), δ).
 *   One pass per Newton step, then one.
 * jaxlogreg_cd_gap_bound: out = (J, gap) with J = loss + l1 ||w||₁ + l2/2 ||w||², t = min(1,
 *   l1 / max|v|) when l2 = 0 (else 1), a = (1 - t) y + t p, the dual D = -Σ s [a log a +
 *   (1 - a) log(1 - a)] - Σ (|t v| - l1)₊² / 2 l2 (0 when l2 = 0) and gap = max(J - D, 0);
 *   NaN in v gives a NaN gap.
 */
#include <float.h>
#include <stdint.h>

#include "native_math.h"

#define GAP_BLOCK 4096 /* rows summed on their own before their sum joins the total */

/* x log x, 0 at x = 0 (the dual's entropy; NaN below 0, as xlogy). */
static double gap_xlogx(double x) { return x == 0.0 ? 0.0 : x * log(x); }

/* Σ s σ(z + d) and Σ s σ(z + d)(1 - σ(z + d)) over rows [lo, hi). */
static void gap_moments(int64_t lo, int64_t hi, const double *z, const double *s, double d,
                        double *mass, double *slope) {
    double a = 0.0, b = 0.0;
    for (int64_t i = lo; i < hi; i++) {
        const double p = jl_sigmoid(z[i] + d);
        a += s[i] * p;
        b += s[i] * p * (1.0 - p);
    }
    *mass += a;
    *slope += b;
}

/* Σ s y, Σ s over rows [lo, hi). */
static void gap_masses(int64_t lo, int64_t hi, const double *y, const double *s, double *target,
                       double *total) {
    double a = 0.0, b = 0.0;
    for (int64_t i = lo; i < hi; i++) {
        a += s[i] * y[i];
        b += s[i];
    }
    *target += a;
    *total += b;
}

/* p, u over rows [lo, hi); returns their Σ s softplus((1 - 2y) z). */
static double gap_residual(int64_t lo, int64_t hi, const double *z, const double *y,
                           const double *s, double d, double *p, double *u) {
    double loss = 0.0;
    for (int64_t i = lo; i < hi; i++) {
        const double x = (1.0 - 2.0 * y[i]) * z[i];
        loss += s[i] * jl_softplus(x);
        p[i] = jl_sigmoid(z[i] + d);
        u[i] = s[i] * (y[i] - p[i]);
    }
    return loss;
}

/* δ of the module comment: Newton from 0, one pass over the rows per step. */
static double gap_shift(int64_t m, const double *z, const double *y, const double *s,
                        int64_t steps) {
    double target = 0.0, total = 0.0, delta = 0.0;
    for (int64_t lo = 0; lo < m; lo += GAP_BLOCK)
        gap_masses(lo, lo + GAP_BLOCK < m ? lo + GAP_BLOCK : m, y, s, &target, &total);
    if (!(target > 0 && target < total)) return 0.0;
    const double close = sqrt(DBL_EPSILON);
    for (int64_t n = 0; n < steps; n++) {
        double mass = 0.0, slope = 0.0;
        for (int64_t lo = 0; lo < m; lo += GAP_BLOCK)
            gap_moments(lo, lo + GAP_BLOCK < m ? lo + GAP_BLOCK : m, z, s, delta, &mass, &slope);
        const double move = slope > 0 ? (mass - target) / slope : 0.0;
        delta -= move;
        if (fabs(move) <= close * (1.0 + fabs(delta))) break;
    }
    return delta;
}

void jaxlogreg_cd_gap_dual_point(int64_t m, const double *z, const double *y, const double *s,
                                 int64_t steps, double *p, double *u, double *out) {
    const double delta = gap_shift(m, z, y, s, steps);
    double loss = 0.0;
    for (int64_t lo = 0; lo < m; lo += GAP_BLOCK)
        loss += gap_residual(lo, lo + GAP_BLOCK < m ? lo + GAP_BLOCK : m, z, y, s, delta, p, u);
    out[0] = loss;
    out[1] = delta;
}

/* Σ s [a log a + (1 - a) log(1 - a)], a = (1 - t) y + t p, over rows [lo, hi). */
static double gap_entropy(int64_t lo, int64_t hi, const double *y, const double *s,
                          const double *p, double t) {
    double sum = 0.0;
    for (int64_t i = lo; i < hi; i++) {
        const double a = (1.0 - t) * y[i] + t * p[i];
        sum += s[i] * (gap_xlogx(a) + gap_xlogx(1.0 - a));
    }
    return sum;
}

void jaxlogreg_cd_gap_bound(int64_t m, int64_t n, const double *y, const double *s,
                            const double *p, const double *w, const double *v, double loss,
                            double l1, double l2, double *out) {
    double top = 0.0, norm1 = 0.0, norm2 = 0.0, conjugate = 0.0, entropy = 0.0;
    int64_t nan = 0;
    for (int64_t j = 0; j < n; j++) {
        const double a = fabs(v[j]);
        top = a > top ? a : top;
        norm1 += fabs(w[j]);
        norm2 += w[j] * w[j];
        nan += v[j] != v[j];
    }
    const double t = (l2 == 0 && top > l1) ? l1 / top : 1.0;
    if (l2 > 0) {
        for (int64_t j = 0; j < n; j++) {
            const double excess = fabs(t * v[j]) - l1;
            conjugate += excess > 0 ? excess * excess : 0.0;
        }
        conjugate /= 2 * l2;
    }
    for (int64_t lo = 0; lo < m; lo += GAP_BLOCK)
        entropy += gap_entropy(lo, lo + GAP_BLOCK < m ? lo + GAP_BLOCK : m, y, s, p, t);
    const double primal = loss + (l1 == 0 ? 0.0 : l1 * norm1) + (l2 == 0 ? 0.0 : 0.5 * l2 * norm2);
    const double gap = primal - (-entropy - conjugate);
    out[0] = primal;
    out[1] = nan ? NAN : (gap < 0 ? 0.0 : gap); /* NaN stays NaN */
}
