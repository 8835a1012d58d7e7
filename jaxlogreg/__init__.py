"""jaxlogreg: logistic regression in JAX, from the lecture's computation graph to sharded training.

The package is layered; each layer imports only the layers before it in this order
(``tests/test_layers.py`` holds it; what each holds: docs/development.md): ``runtime``,
``core``, ``data``, ``kernels``, ``training``, ``scale``, ``stats``, ``estimators``, ``report``,
``cli``.

Importing the package changes no JAX setting and writes no file;
:func:`enable_compilation_cache` turns JAX's persistent compilation cache on, explicitly.

The public API, one name per line:
"""

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
from jaxlogreg.estimators.logistic import DivergenceError as DivergenceError
from jaxlogreg.estimators.logistic import LogisticRegression as LogisticRegression
from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV as LogisticRegressionCV
from jaxlogreg.report.environment import show_config as show_config
from jaxlogreg.runtime.cache import enable_compilation_cache as enable_compilation_cache
from jaxlogreg.runtime.version import __version__ as __version__
from jaxlogreg.scale.checkpoint import Checkpointer as Checkpointer
from jaxlogreg.scale.distributed import fit_distributed as fit_distributed
from jaxlogreg.scale.sparse_rows import save_sparse_hdf5 as save_sparse_hdf5
from jaxlogreg.scale.streaming import fit_streaming as fit_streaming
from jaxlogreg.stats.hypergradient import PenaltySearch as PenaltySearch
from jaxlogreg.stats.hypergradient import tune_penalty as tune_penalty
from jaxlogreg.stats.inference import Inference as Inference
from jaxlogreg.stats.inference import inference as inference
from jaxlogreg.stats.influence import Influence as Influence
from jaxlogreg.stats.influence import influence as influence
from jaxlogreg.stats.solve import SolveInfo as SolveInfo
from jaxlogreg.stats.solve import solve as solve
from jaxlogreg.training.mesh import make_mesh as make_mesh
from jaxlogreg.training.path import PathResult as PathResult
from jaxlogreg.training.path import fit_path as fit_path
from jaxlogreg.training.path_l1 import L1PathResult as L1PathResult
from jaxlogreg.training.pipeline import FitResult as FitResult
from jaxlogreg.training.pipeline import fit as fit
from jaxlogreg.training.settings import TrainConfig as TrainConfig
from jaxlogreg.training.solvers import gradient_descent as gradient_descent
from jaxlogreg.training.solvers import make_optimizer as make_optimizer

__all__ = [
    "Checkpointer",
    "DivergenceError",
    "FitResult",
    "GradientCheck",
    "Inference",
    "Influence",
    "L1PathResult",
    "LogisticRegression",
    "LogisticRegressionCV",
    "Params",
    "PathResult",
    "PenaltySearch",
    "SolveInfo",
    "TrainConfig",
    "backward",
    "binary_cross_entropy",
    "check_gradients",
    "enable_compilation_cache",
    "fit",
    "fit_distributed",
    "fit_path",
    "fit_streaming",
    "gradient_descent",
    "inference",
    "influence",
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
    "show_config",
    "softmax_cross_entropy",
    "solve",
    "tune_penalty",
]
