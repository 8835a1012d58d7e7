/* The elementwise math every C source of jaxlogreg shares: glibc's SIMD declarations and the
 * stable logistic functions, in float64. */
#ifndef JAXLOGREG_NATIVE_MATH_H
#define JAXLOGREG_NATIVE_MATH_H

#include <math.h>

#if defined(JAXLOGREG_LIBMVEC)
/* glibc's vector math library (libmvec) has SIMD versions of these; declaring them lets the
 * compiler vectorize the elementwise passes without -ffast-math (which would let it assume
 * there is no NaN or inf, and, when linking, switch the process's floating point to flush
 * denormals to zero). */
__attribute__((__simd__("notinbranch"))) float expf(float);
__attribute__((__simd__("notinbranch"))) float log1pf(float);
__attribute__((__simd__("notinbranch"))) float logf(float);
__attribute__((__simd__("notinbranch"))) double exp(double);
__attribute__((__simd__("notinbranch"))) double log1p(double);
__attribute__((__simd__("notinbranch"))) double log(double);
#endif

/* σ(z) = 1 / (1 + e^-z), from e^-|z| (no overflow). */
static inline double jl_sigmoid(double z) {
    const double e = exp(-fabs(z));
    return (z >= 0 ? 1.0 : e) / (1.0 + e);
}

/* softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|). */
static inline double jl_softplus(double z) { return (z > 0 ? z : 0.0) + log1p(exp(-fabs(z))); }

#endif
