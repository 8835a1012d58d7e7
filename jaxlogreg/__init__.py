"""jaxlogreg: logistic regression in JAX, from the lecture's computation graph to sharded training."""

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

__version__ = "0.1.0"

__all__ = [
    "GradientCheck",
    "Params",
    "backward",
    "binary_cross_entropy",
    "check_gradients",
    "init_params",
    "logits",
    "objective",
    "predict",
    "predict_proba",
    "softmax_cross_entropy",
]
