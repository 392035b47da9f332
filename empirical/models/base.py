"""Common interface of every network: features ``h(x) in R^p`` then the classifier ``W h + b``.

The paper studies the last-layer features ``h`` (the input of the final linear layer) and the
classifier ``(W, b)`` (math §1, math §7.1 "features"); every model here exposes them directly.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FeatureClassifier", "GlobalAvgPool", "count_parameters"]


class FeatureClassifier(nn.Module):
    """Base class: ``forward(x) = fc(features(x)) = W h(x) + b``.

    Subclasses build their feature layers (``self.body``, or their own :meth:`features`), then call
    :meth:`_init_classifier` so that ``self.fc = nn.Linear(p, C)`` (with bias) is the last module.

    Attributes:
        feature_dim: ``p``, the width of the penultimate layer.
        num_classes: ``C``.
        input_shape: shape of one input sample, ``(c, h, w)`` or ``(d,)``.
    """

    feature_dim: int
    num_classes: int
    input_shape: tuple[int, ...]
    body: nn.Module
    fc: nn.Linear

    def _init_classifier(self, feature_dim: int, num_classes: int, input_shape: tuple[int, ...]) -> None:
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.fc = nn.Linear(self.feature_dim, self.num_classes, bias=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``h(x)``, shape ``(n, p)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``W h(x) + b``, shape ``(n, C)``."""
        return self.fc(self.features(x))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W h(x) + b, h(x))`` from one pass: logits ``(n, C)`` and features ``(n, p)``."""
        h = self.features(x)
        return self.fc(h), h


class GlobalAvgPool(nn.Module):
    """``(n, c, h, w) -> (n, c)``, the mean over the spatial axes.

    Written as a mean rather than ``nn.AdaptiveAvgPool2d(1)``, whose CUDA backward has no
    deterministic implementation (it raises under ``torch.use_deterministic_algorithms``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def init_conv_bn(module: nn.Module) -> None:
    """He (fan-out) initialisation of convolutions, BatchNorm ``gamma = 1, beta = 0``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
