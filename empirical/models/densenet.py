"""DenseNet for small images (Huang et al. 2017), including the DenseNet-BC variant.

Stem ``conv3x3(c -> s)`` (``s = 16``, or ``2k`` for BC), dense blocks whose layers append ``k``
(growth rate) new channels to their input, ``BN-ReLU-[conv1x1(4k)-BN-ReLU]-conv3x3(k)`` (the
bracket only with ``bottleneck``), transitions ``BN-ReLU-conv1x1(floor(theta m))-avgpool2`` between
blocks (``theta`` = ``compression``), a final ``BN-ReLU`` and global average pooling.  The CIFAR
networks have 3 blocks of ``(depth - 4) / 3`` layers (``/ 6`` with bottleneck); ``block_layers``
gives any other arrangement (``(6, 12, 24, 16)`` with ``k = 32`` is DenseNet-121).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import FeatureClassifier, GlobalAvgPool, init_conv_bn

__all__ = ["DenseNet"]


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bottleneck: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        c = cin
        if bottleneck:
            layers += [nn.Conv2d(cin, 4 * growth, 1, bias=False), nn.BatchNorm2d(4 * growth), nn.ReLU(inplace=True)]
            c = 4 * growth
        layers.append(nn.Conv2d(c, growth, 3, padding=1, bias=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class DenseNet(FeatureClassifier):
    """DenseNet / DenseNet-BC; ``p`` = channels after the last dense block."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 40,
        growth_rate: int = 12,
        bottleneck: bool = True,
        compression: float = 0.5,
        block_layers: Sequence[int] | None = None,
        stem_channels: int | None = None,
    ) -> None:
        super().__init__()
        if not 0 < compression <= 1:
            raise ValueError(f"compression must lie in (0, 1], got {compression}")
        if block_layers is None:
            per = 6 if bottleneck else 3
            if depth < 4 + per or (depth - 4) % per:
                raise ValueError(
                    f"DenseNet depth must be 4 + {per} n (bottleneck={bottleneck}), got {depth}"
                )
            block_layers = (((depth - 4) // per),) * 3
        k = int(growth_rate)
        c = int(stem_channels) if stem_channels is not None else (2 * k if bottleneck else 16)
        layers: list[nn.Module] = [nn.Conv2d(int(input_shape[0]), c, 3, padding=1, bias=False)]
        for b, n_layers in enumerate(block_layers):
            for _ in range(int(n_layers)):
                layers.append(_DenseLayer(c, k, bottleneck))
                c += k
            if b < len(block_layers) - 1:
                out = int(c * compression)
                layers += [
                    nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                    nn.Conv2d(c, out, 1, bias=False), nn.AvgPool2d(2),
                ]
                c = out
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), GlobalAvgPool()]
        self.body = nn.Sequential(*layers)
        init_conv_bn(self.body)
        self._init_classifier(c, num_classes, tuple(input_shape))
