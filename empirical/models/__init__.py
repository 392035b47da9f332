"""Networks for the experiments of math §7 (written here; no torchvision), built by name with :func:`build_model`.

Every model maps ``x -> W h(x) + b`` and exposes ``features(x)`` (``h``, shape ``(n, p)``),
``forward_with_features(x) -> (logits, features)``, ``fc = nn.Linear(p, C)`` and ``feature_dim = p``.
"""

from .base import FeatureClassifier, count_parameters
from .densenet import DenseNet
from .mlp import MLP
from .registry import MODELS, ModelSpec, build_model, check_model, takes_sample_indices
from .resnet import ResNet
from .ufm import UFM
from .vgg import VGG

__all__ = [
    "DenseNet",
    "FeatureClassifier",
    "MLP",
    "MODELS",
    "ModelSpec",
    "ResNet",
    "UFM",
    "VGG",
    "build_model",
    "check_model",
    "count_parameters",
    "takes_sample_indices",
]
