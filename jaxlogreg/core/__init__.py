"""The lecture's math: pure JAX functions of ``(params, X, y)``, no settings, files or loops.

- :mod:`~jaxlogreg.core.model`: ``Params``, the forward pass ``z = Xw + b``, ``a = σ(z)``;
- :mod:`~jaxlogreg.core.loss`: the loss from logits and the objective J;
- :mod:`~jaxlogreg.core.gradients`: the hand-written backward pass ``dz = a - y``;
- :mod:`~jaxlogreg.core.reference`: the lectures' own loops, as test references;
- :mod:`~jaxlogreg.kernels.fused`: the same gradient as one Pallas kernel that reads X once (GPUs),
  with its tiling in :mod:`~jaxlogreg.kernels.fused_tiling`;
- :mod:`~jaxlogreg.core.gradcheck`: hand-written vs ``jax.grad`` vs finite differences;
- :mod:`~jaxlogreg.core.checks`: input checks with messages that name the argument.
"""
