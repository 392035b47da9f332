"""The unconstrained-features model (UFM): one free feature vector per training sample (math §6.1).

The features are parameters, not outputs of a network; trained by the same optimiser, loss, schedule and batches
as a network (``empirical train --model ufm``), a run differs from a network run only in how the features are
parametrised: the rung of the ladder between the exact flow of math §6 and a real network.  Its input is the
sample index (:func:`empirical.data.index_dataset`); a feature vector exists only for a training sample, so the
model has no test set.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import FeatureClassifier

__all__ = ["UFM", "DEFAULT_DIM", "DEFAULT_INIT_SCALE", "NO_TEST_SET_NOTE"]

#: ``p`` when ``dim`` is not given.
DEFAULT_DIM = 64
#: Standard deviation of the initial features when ``init_scale`` is not given: ``H_ij ~ N(0, 1)``,
#: ``nn.Embedding``'s own initialisation (``||h_i|| ~ sqrt(p)``).
DEFAULT_INIT_SCALE = 1.0
#: What a UFM run records and prints once about its test set.
NO_TEST_SET_NOTE = ("model 'ufm' has one free feature vector per training sample and no features for unseen "
                    "samples: there is no test set, test metrics are absent")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ufm {name} must be a positive integer, got {value!r}")
    return int(value)


class UFM(FeatureClassifier):
    """``x = i -> W H[i] + b``: features ``H (n, p)`` initialised ``N(0, init_scale^2)``,
    classifier ``nn.Linear(p, C)``.

    Args:
        num_samples: ``n``, the number of training samples (rows of ``H``).
        num_classes: ``C``.
        dim: ``p``, the feature dimension (default :data:`DEFAULT_DIM`).
        init_scale: standard deviation of the initial features (default :data:`DEFAULT_INIT_SCALE`).

    Raises:
        ValueError: ``dim`` or ``num_samples`` not a positive integer, ``init_scale`` not positive and finite.
    """

    def __init__(self, num_samples: int, num_classes: int, dim: int = DEFAULT_DIM,
                 init_scale: float = DEFAULT_INIT_SCALE) -> None:
        super().__init__()
        n, p = _positive_int(num_samples, "num_samples"), _positive_int(dim, "dim")
        if isinstance(init_scale, bool) or not isinstance(init_scale, (int, float)) \
                or not (init_scale > 0 and math.isfinite(init_scale)):
            raise ValueError(f"ufm init_scale must be a positive finite number, got {init_scale!r}")
        self.num_samples = n
        self.init_scale = float(init_scale)
        self.embedding = nn.Embedding(n, p)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=self.init_scale)
        self._init_classifier(p, num_classes, ())  # one input is a scalar sample index

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The features ``H[x]`` of the samples with indices ``x`` (``int64 (b,)``), shape ``(b, p)``."""
        return self.embedding(x)
