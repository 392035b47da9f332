"""Registry of networks and the one constructor ``build_model`` (math §7.1: VGG, ResNet, DenseNet; the
unconstrained-features model of math §6.1, ``ufm``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .base import FeatureClassifier
from .densenet import DenseNet
from .mlp import MLP
from .resnet import ResNet
from .ufm import DEFAULT_DIM, UFM
from .vgg import VGG

__all__ = ["ModelSpec", "MODELS", "build_model", "model_names", "takes_sample_indices"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered network: ``factory(input_shape, num_classes, **kwargs)``.

    ``needs_image`` is True for convolutional networks (input ``(c, h, w)``).  ``sample_indices`` is
    True for a model whose input is the training sample's index (``int64 (b,)``), not its data: the
    UFM, built as ``factory(num_samples, num_classes, **kwargs)``.
    """

    factory: Callable[..., FeatureClassifier]
    needs_image: bool
    description: str
    sample_indices: bool = False


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(MLP, False, "MLP, widths=(256, 256, 256) by default, p = widths[-1]"),
    **{f"vgg{d}": ModelSpec(partial(VGG, d), True, f"VGG-{d} with BatchNorm, p = 512") for d in (11, 13, 16, 19)},
    **{f"resnet{d}": ModelSpec(partial(ResNet, d), True, f"ResNet-{d}, 3x3 stem, no max-pool, p = {p}")
       for d, p in ((18, 512), (34, 512), (50, 2048))},
    "densenet": ModelSpec(
        partial(DenseNet, depth=40, growth_rate=12, bottleneck=True, compression=0.5), True,
        "DenseNet-BC, configurable depth/growth_rate (default depth 40, k = 12, p = 132)",
    ),
    "densenet40": ModelSpec(
        partial(DenseNet, depth=40, growth_rate=12, bottleneck=False, compression=1.0), True,
        "DenseNet-40 (k = 12, no bottleneck or compression; ~1.0M parameters, p = 448)",
    ),
    "densenet_bc100": ModelSpec(
        partial(DenseNet, depth=100, growth_rate=12, bottleneck=True, compression=0.5), True,
        "DenseNet-BC-100 (k = 12; ~0.8M parameters, p = 342)",
    ),
    "densenet121": ModelSpec(
        partial(DenseNet, block_layers=(6, 12, 24, 16), growth_rate=32, bottleneck=True, compression=0.5,
                stem_channels=64), True,
        "DenseNet-121 layout (k = 32) with a 3x3 stem, no max-pool; p = 1024",
    ),
    "ufm": ModelSpec(
        UFM, False, f"unconstrained features: one free vector per training sample (input: its index), "
        f"p = dim (default {DEFAULT_DIM}), init_scale (default 1); no test set", sample_indices=True,
    ),
}


#: How :func:`model_names` tells apart names that read alike (``densenet`` beside ``densenet40``).
_LISTED_AS = {"densenet": "densenet (DenseNet-BC; depth 40 unless depth=...)"}


def model_names() -> str:
    """The registered models for messages, comma-separated, one entry per network: ``densenet`` (DenseNet-BC, any
    depth) is marked so that it does not read as a second ``densenet40``."""
    return ", ".join(_LISTED_AS.get(name, name) for name in MODELS)


def _normalise(name: str) -> str:
    squash = str(name).lower().replace("-", "").replace("_", "")
    return next((k for k in MODELS if k.replace("_", "") == squash), str(name))


def check_model(name: str) -> str:
    """The registered key of model ``name`` (case, ``-`` and ``_`` ignored), else a one-line ``ValueError``."""
    key = _normalise(name)
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {model_names()}")
    return key


def takes_sample_indices(name: str) -> bool:
    """Whether model ``name``'s input is the training sample's index (the UFM); False for unknown names."""
    spec = MODELS.get(_normalise(name))
    return spec is not None and spec.sample_indices


def build_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int | None = None,
    input_shape: Sequence[int] | None = None,
    num_samples: int | None = None,
    **kwargs: Any,
) -> FeatureClassifier:
    """Build a registered network ``x -> W h(x) + b`` (the interface of :mod:`empirical.models`).

    Args:
        name: a key of ``MODELS`` (case-insensitive; ``-`` and ``_`` are ignored, so
            ``"ResNet-18"`` is ``resnet18``).
        in_channels: input channels; may be omitted when ``input_shape`` is given.
        input_shape: one sample's shape, ``(c, h, w)`` or ``(d,)`` (``Dataset.input_shape``).
            Required for the MLP; for conv nets it defaults to ``(in_channels, 32, 32)``.
            Ignored by ``ufm``, whose input is a sample index.
        num_samples: ``n``, the training samples: required by ``ufm`` (one feature vector each),
            ignored by the networks.
        **kwargs: passed to the network (e.g. ``widths`` for the MLP, ``depth`` and
            ``growth_rate`` for ``densenet``, ``base_width`` for ResNets).

    Raises:
        ValueError: unknown name (the message lists the models), inconsistent shapes.
    """
    key = check_model(name)
    spec = MODELS[key]
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if spec.sample_indices:
        if num_samples is None:
            raise ValueError(f"{key} needs num_samples, the number of training samples (one feature vector each)")
        return spec.factory(num_samples, int(num_classes), **kwargs)
    if input_shape is not None:
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) not in (1, 3) or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (c, h, w) or (d,) of positive sizes, got {input_shape}")
        if len(input_shape) == 3 and in_channels is not None and int(in_channels) != input_shape[0]:
            raise ValueError(f"in_channels={in_channels} disagrees with input_shape={input_shape}")
    if spec.needs_image:
        if input_shape is None:
            if in_channels is None:
                raise ValueError(f"{key} needs in_channels or input_shape=(c, h, w)")
            input_shape = (int(in_channels), 32, 32)
        if len(input_shape) != 3:
            raise ValueError(
                f"{key} is convolutional and needs image input (c, h, w); got input_shape={input_shape} "
                "(use 'mlp' for feature vectors)"
            )
    elif input_shape is None:
        raise ValueError(f"{key} needs input_shape, e.g. (c, h, w) or (d,)")
    return spec.factory(input_shape, int(num_classes), **kwargs)
