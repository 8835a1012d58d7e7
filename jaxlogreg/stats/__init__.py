"""What the Hessian at the optimum answers: standard errors and tests (:mod:`~.inference`),
the influence of each training example (:mod:`~.influence`), and the derivatives of the
solution with respect to C, the weights and the data (:mod:`~.solve`)."""
