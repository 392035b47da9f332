"""ResNet-18/34/50 for small images (He et al. 2016), as in the authors' notebook (math §8).

The notebook takes torchvision's ImageNet ResNet-18 and replaces the 7x7 stride-2 stem by a
3x3 stride-1 bias-free convolution and the max-pool by the identity.  This module builds that
network directly: stem ``conv3x3(c -> 64) - BN - ReLU``, four stages of basic (18, 34) or
bottleneck (50) blocks with 64/128/256/512 base widths and strides 1/2/2/2 (stride on the 3x3
convolution), global average pooling, ``p = 512 * expansion`` (512 or 2048).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import FeatureClassifier, GlobalAvgPool, init_conv_bn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "RESNET_CONFIGS"]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """``relu(x' + BN(conv(relu(BN(conv(x))))))`` with a projected shortcut ``x'`` when needed."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = _conv3x3(cin, width, stride), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv3x3(width, cout), nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a projected shortcut when needed."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv3x3(width, width, stride), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


RESNET_CONFIGS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(FeatureClassifier):
    """CIFAR-style ResNet (3x3 stem, no max-pool); ``p = 8 * base_width * expansion``."""

    def __init__(
        self,
        depth: int,
        input_shape: Sequence[int],
        num_classes: int,
        base_width: int = 64,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if depth not in RESNET_CONFIGS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_CONFIGS)}, got {depth}")
        block, counts = RESNET_CONFIGS[depth]
        in_channels = int(input_shape[0])
        self.stem = nn.Sequential(
            _conv3x3(in_channels, base_width), nn.BatchNorm2d(base_width), nn.ReLU(inplace=True)
        )
        stages: list[nn.Module] = []
        cin = base_width
        for i, n_blocks in enumerate(counts):
            width = base_width * 2**i
            blocks = []
            for j in range(n_blocks):
                blocks.append(block(cin, width, stride=2 if (i > 0 and j == 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = GlobalAvgPool()
        init_conv_bn(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)
        self._init_classifier(cin, num_classes, tuple(input_shape))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))
