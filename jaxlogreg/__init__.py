"""jaxlogreg: logistic regression in JAX, from the lecture's computation graph to sharded training.

The public API, one name per line (modules hold the rest):

- the math: :class:`Params`, :func:`init_params`, :func:`logits`, :func:`predict_proba`,
  :func:`predict`, :func:`binary_cross_entropy`, :func:`softmax_cross_entropy`,
  :func:`objective`, :func:`backward` (the hand-written gradient), :func:`check_gradients`;
- training: :func:`fit`, :class:`TrainConfig`, :class:`FitResult`, :func:`gradient_descent`,
  :func:`make_optimizer`;
- the scikit-learn estimator: :class:`LogisticRegression`, :class:`DivergenceError`;
- data and files: :func:`make_classification`, :func:`load_catvnoncat`, :func:`load_dataset`,
  :func:`save_model`, :func:`load_model`;
- scale: :func:`make_mesh`, :func:`fit_distributed`, :func:`fit_streaming`, :class:`Checkpointer`.
"""

from jaxlogreg.checkpoint import Checkpointer as Checkpointer
from jaxlogreg.data import load_catvnoncat as load_catvnoncat
from jaxlogreg.data import load_dataset as load_dataset
from jaxlogreg.data import make_classification as make_classification
from jaxlogreg.distributed import fit_distributed as fit_distributed
from jaxlogreg.estimator import DivergenceError as DivergenceError
from jaxlogreg.estimator import LogisticRegression as LogisticRegression
from jaxlogreg.gradcheck import GradientCheck as GradientCheck
from jaxlogreg.gradcheck import check_gradients as check_gradients
from jaxlogreg.gradients import backward as backward
from jaxlogreg.loss import binary_cross_entropy as binary_cross_entropy
from jaxlogreg.loss import objective as objective
from jaxlogreg.loss import softmax_cross_entropy as softmax_cross_entropy
from jaxlogreg.model import Params as Params
from jaxlogreg.model import init_params as init_params
from jaxlogreg.model import logits as logits
from jaxlogreg.model import predict as predict
from jaxlogreg.model import predict_proba as predict_proba
from jaxlogreg.model_io import load_model as load_model
from jaxlogreg.model_io import save_model as save_model
from jaxlogreg.sharding import make_mesh as make_mesh
from jaxlogreg.solvers import gradient_descent as gradient_descent
from jaxlogreg.solvers import make_optimizer as make_optimizer
from jaxlogreg.streaming import fit_streaming as fit_streaming
from jaxlogreg.train import FitResult as FitResult
from jaxlogreg.train import TrainConfig as TrainConfig
from jaxlogreg.train import fit as fit

__version__ = "0.1.0"

__all__ = [
    "Checkpointer",
    "DivergenceError",
    "FitResult",
    "GradientCheck",
    "LogisticRegression",
    "Params",
    "TrainConfig",
    "backward",
    "binary_cross_entropy",
    "check_gradients",
    "fit",
    "fit_distributed",
    "fit_streaming",
    "gradient_descent",
    "init_params",
    "load_catvnoncat",
    "load_dataset",
    "load_model",
    "logits",
    "make_classification",
    "make_mesh",
    "make_optimizer",
    "objective",
    "predict",
    "predict_proba",
    "save_model",
    "softmax_cross_entropy",
]
