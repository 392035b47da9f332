"""VGG-11/13/16/19 with BatchNorm for small images (Simonyan & Zisserman 2015; math §7.1).

Adaptation to 32x32 inputs (1 or 3 channels): the convolutional stack of the ImageNet
configurations, each 3x3 convolution followed by BatchNorm and ReLU; a 2x2 max-pool is applied
only while the feature map is at least 2x2 (so 8x8 digits work too); then global average
pooling gives ``p = 512`` features (for 32x32 inputs the map is already 1x1).  Optional
hidden classifier layers (``classifier_widths``) sit between the pooling and ``fc``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .base import FeatureClassifier, GlobalAvgPool, init_conv_bn

__all__ = ["VGG", "VGG_CONFIGS"]

VGG_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}


class VGG(FeatureClassifier):
    """VGG with BatchNorm; ``p = 512 * width_mult`` (or the last of ``classifier_widths``)."""

    def __init__(
        self,
        depth: int,
        input_shape: Sequence[int],
        num_classes: int,
        batch_norm: bool = True,
        width_mult: float = 1.0,
        classifier_widths: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if depth not in VGG_CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}, got {depth}")
        c, h, w = (int(s) for s in input_shape)
        size = min(h, w)
        layers: list[nn.Module] = []
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2, 2))
                    size //= 2
                continue
            out = max(1, int(round(int(item) * width_mult)))
            layers.append(nn.Conv2d(c, out, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            c = out
        layers.append(GlobalAvgPool())
        for width in classifier_widths:
            layers += [nn.Linear(c, int(width)), nn.ReLU(inplace=True)]
            c = int(width)
        self.body = nn.Sequential(*layers)
        init_conv_bn(self.body)
        self._init_classifier(c, num_classes, tuple(input_shape))
