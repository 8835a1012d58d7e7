"""jaxlogreg: logistic regression in JAX, from the lecture's computation graph to sharded training.

The package is layered; each layer uses only the ones above it:

- :mod:`jaxlogreg.core`: the lecture's math (model, loss, hand-written gradients, references,
  gradient check);
- :mod:`jaxlogreg.training`: settings, solvers, the on-device loop and the one fit pipeline;
- :mod:`jaxlogreg.data`: data sets, file loaders, feature scaling, model files;
- :mod:`jaxlogreg.scale`: sharding, multi-process training, streaming from disk, checkpoints;
- :mod:`jaxlogreg.estimator`, :mod:`jaxlogreg.estimator_cv`, :mod:`jaxlogreg.metrics`,
  :mod:`jaxlogreg.plots`: the scikit-learn estimators (C chosen by cross-validation in one
  program for the second) and reporting;
- :mod:`jaxlogreg.cli`: the ``jaxlogreg`` command and its TOML configs.

Importing the package turns on JAX's persistent compilation cache (:mod:`jaxlogreg.cache`;
``JAXLOGREG_NO_CACHE=1`` opts out); the training programs are saved lowered beside it, so a
new process neither traces nor compiles them again (:mod:`jaxlogreg.saved`).

The public API, one name per line:
"""

from jaxlogreg import cache as _cache
from jaxlogreg.core.gradcheck import GradientCheck as GradientCheck
from jaxlogreg.core.gradcheck import check_gradients as check_gradients
from jaxlogreg.core.gradients import backward as backward
from jaxlogreg.core.loss import binary_cross_entropy as binary_cross_entropy
from jaxlogreg.core.loss import objective as objective
from jaxlogreg.core.loss import softmax_cross_entropy as softmax_cross_entropy
from jaxlogreg.core.model import Params as Params
from jaxlogreg.core.model import init_params as init_params
from jaxlogreg.core.model import logits as logits
from jaxlogreg.core.model import predict as predict
from jaxlogreg.core.model import predict_proba as predict_proba
from jaxlogreg.data.datasets import make_classification as make_classification
from jaxlogreg.data.loaders import load_catvnoncat as load_catvnoncat
from jaxlogreg.data.loaders import load_dataset as load_dataset
from jaxlogreg.data.model_io import load_model as load_model
from jaxlogreg.data.model_io import save_model as save_model
from jaxlogreg.estimator import DivergenceError as DivergenceError
from jaxlogreg.estimator import LogisticRegression as LogisticRegression
from jaxlogreg.estimator_cv import LogisticRegressionCV as LogisticRegressionCV
from jaxlogreg.scale.checkpoint import Checkpointer as Checkpointer
from jaxlogreg.scale.distributed import fit_distributed as fit_distributed
from jaxlogreg.scale.sharding import make_mesh as make_mesh
from jaxlogreg.scale.sparse_rows import save_sparse_hdf5 as save_sparse_hdf5
from jaxlogreg.scale.streaming import fit_streaming as fit_streaming
from jaxlogreg.training.path import PathResult as PathResult
from jaxlogreg.training.path import fit_path as fit_path
from jaxlogreg.training.pipeline import FitResult as FitResult
from jaxlogreg.training.pipeline import fit as fit
from jaxlogreg.training.settings import TrainConfig as TrainConfig
from jaxlogreg.training.solvers import gradient_descent as gradient_descent
from jaxlogreg.training.solvers import make_optimizer as make_optimizer

__version__ = "0.1.0"

_cache.enable()

__all__ = [
    "Checkpointer",
    "DivergenceError",
    "FitResult",
    "GradientCheck",
    "LogisticRegression",
    "LogisticRegressionCV",
    "Params",
    "PathResult",
    "TrainConfig",
    "backward",
    "binary_cross_entropy",
    "check_gradients",
    "fit",
    "fit_distributed",
    "fit_path",
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
    "save_sparse_hdf5",
    "softmax_cross_entropy",
]
