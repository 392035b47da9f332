"""Multilayer perceptron with configurable hidden widths."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from .base import FeatureClassifier

__all__ = ["MLP"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(FeatureClassifier):
    """``h(x) = s(A_L ... s(A_1 vec(x) + a_1) ... + a_L)``, ``p = widths[-1]``.

    Args:
        input_shape: shape of one sample, flattened to ``d = prod(input_shape)``.
        num_classes: ``C``.
        widths: hidden widths; empty gives ``h(x) = vec(x)`` (a linear model).
        activation: ``"relu"``, ``"tanh"`` or ``"gelu"``.
        batch_norm: BatchNorm1d after each hidden linear layer (before the activation).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        widths: Sequence[int] = (256, 256, 256),
        activation: str = "relu",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(int(s) for s in input_shape)
        for w in widths:
            layers.append(nn.Linear(width, int(w), bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(w)))
            layers.append(_ACTIVATIONS[activation]())
            width = int(w)
        self.body = nn.Sequential(*layers)
        self._init_classifier(width, num_classes, tuple(input_shape))
