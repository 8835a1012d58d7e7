"""Gradient kernels: implementations of one contract, ``(params, Xt, y, s, l2) -> (J, ∇J)``."""
