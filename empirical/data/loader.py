"""Load a dataset split into device-resident tensors (math §7.1 preprocessing).

Pipeline for image datasets, all on whole tensors:

1. read the stored ``uint8`` images and labels, check labels against the stored range and
   map them to ``0..C-1``;
2. optionally keep a balanced subset of ``N = per_class`` samples per class chosen by ``seed``;
3. move to ``device``, scale pixels to ``[0, 1]``;
4. bring to ``image_size`` (28x28 sets are zero-padded to 32x32 by default, as in the paper);
5. standardise each channel, ``x <- (x - m_k) / s_k``, with ``(m_k, s_k)`` measured on this
   (training) subset after step 4, or taken from ``standardize_with`` (use the training
   split's statistics for the test split).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from . import builtin, sources, transforms

__all__ = ["Dataset", "load_dataset", "load_train_test", "index_dataset"]


@dataclass
class Dataset:
    """A dataset split held as tensors.

    Attributes:
        x: ``float32 (n, c, h, w)`` images, or ``(n, d)`` feature vectors (``gaussian``), or ``int64 (n,)``
            sample indices ``0..n-1`` (:func:`index_dataset`, the input of the UFM).
        y: ``int64 (n,)`` labels in ``[0, num_classes)``.
        num_classes: ``C``.
        name: registry name.
        channels: ``c`` for images; ``d`` for feature vectors.
        mean, std: ``float32 (channels,)`` standardisation statistics that were applied
            (zeros and ones when not standardised); pass ``(mean, std)`` or the dataset itself
            as ``standardize_with`` when loading the matching test split.
        files: paths that were read.
        split: ``"train"`` or ``"test"``.
        indices: ``int64`` positions of the kept samples in the full stored split (CPU).
    """

    x: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)
    num_classes: int
    name: str
    channels: int
    mean: torch.Tensor
    std: torch.Tensor
    files: tuple[str, ...] = ()
    split: str = "train"
    indices: torch.Tensor | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes}, device={self.device})"
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(c, h, w)`` or ``(d,)`` (``()`` for sample indices); pass to ``build_model``."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.x.device

    def class_counts(self) -> torch.Tensor:
        """Measured ``n_c`` per class, ``int64 (C,)``."""
        return torch.bincount(self.y, minlength=self.num_classes)

    def to(self, device: str | torch.device) -> Dataset:
        """Copy of this dataset with every tensor (but ``indices``) on ``device``."""
        return replace(
            self, x=self.x.to(device), y=self.y.to(device),
            mean=self.mean.to(device), std=self.std.to(device),
        )


StandardizeWith = Dataset | tuple[Sequence[float] | torch.Tensor, Sequence[float] | torch.Tensor]


def _stats_from(standardize_with: StandardizeWith, channels: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(mean, std)`` of a training :class:`Dataset` or a ``(mean, std)`` pair: one of each per channel,
    the means finite and the deviations positive."""
    pair = ((standardize_with.mean, standardize_with.std) if isinstance(standardize_with, Dataset)
            else standardize_with)
    try:
        mean, std = (torch.as_tensor(t, dtype=torch.float32, device=device).reshape(-1) for t in pair)
    except (TypeError, ValueError) as err:
        raise ValueError("standardize_with must be a Dataset or a (mean, std) pair") from err
    if mean.numel() != channels or std.numel() != channels:
        raise ValueError(
            f"standardize_with has {mean.numel()} means / {std.numel()} stds but the data has "
            f"{channels} channels"
        )
    if not bool(torch.all(std > 0)) or not bool(torch.all(torch.isfinite(mean))):
        raise ValueError("standardize_with needs finite means and positive standard deviations")
    return mean, std


def _check_labels(raw: np.ndarray, spec: sources.DatasetSpec, files: Sequence[str]) -> np.ndarray:
    lo, hi = spec.raw_label_range
    if raw.size and (raw.min() < lo or raw.max() > hi):
        bad = raw[(raw < lo) | (raw > hi)]
        raise ValueError(
            f"{spec.name}: label out of range: stored labels must lie in [{lo}, {hi}], found "
            f"{sorted(set(bad.tolist()))[:10]} in {', '.join(files)}"
        )
    return spec.label_map(raw).astype(np.int64)


def load_dataset(
    name: str,
    *,
    split: str = "train",
    data_root: str | os.PathLike | None = None,
    per_class: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    standardize_with: StandardizeWith | None = None,
    standardize: bool | None = None,
    **options: Any,
) -> Dataset:
    """Load one split (``"train"`` or ``"test"``) of a dataset of ``DATASETS`` as tensors on ``device``.

    Args:
        data_root: folder holding the data (else ``$NC_DATA_ROOT``, else system folders).
        per_class: keep a balanced subset of ``N`` per class chosen by ``seed`` (``None``: all).
            For ``gaussian`` it is the number of samples generated per class (default 100).
        seed: subset seed; for ``gaussian`` the mixture seed (means and samples).
        image_size: output side length; ``None`` means the dataset's default (28x28 sets are
            padded to 32, others kept native).  ``digits`` is 8x8 by default; pass 32 for
            conv nets (bilinear interpolation).
        standardize_with: a training ``Dataset`` or ``(mean, std)`` whose per-channel
            statistics are applied instead of measuring this split's own.
        standardize: apply per-channel standardisation (default: True for images, False for
            ``gaussian``).
        **options: ``gaussian`` only: ``num_classes`` (10), ``dim`` (32), ``separation`` (1.0).

    Raises:
        ValueError: unknown dataset or split, bad file, labels out of range, a class with
            fewer than ``per_class`` samples, inconsistent ``standardize_with``.
        FileNotFoundError: missing data (the message lists what was looked for where).
    """
    spec = sources.get_spec(name)
    if split not in sources.SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {sources.SPLITS}")
    unexpected = set(options) - ({"num_classes", "dim", "separation"} if spec.kind == "synthetic" else set())
    if unexpected:
        raise ValueError(f"unexpected options for {spec.name}: {sorted(unexpected)}")
    device = torch.device(device)
    if standardize is None:
        standardize = spec.kind != "synthetic"
    if spec.kind == "synthetic":
        x, labels, num_classes, files, indices = _synthetic_split(spec, split, per_class, seed, image_size, device,
                                                                  options)
    else:
        x, labels, num_classes, files, indices = _image_split(spec, split, data_root, per_class, seed, image_size,
                                                              device)
    x, mean, std = _standardized(x, standardize_with, standardize)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    return Dataset(
        x=x, y=y, num_classes=num_classes, name=spec.name, channels=int(x.shape[1]),
        mean=mean, std=std, files=files, split=split, indices=indices,
    )


#: What a split's loader returns: ``(x, labels, num_classes, files, indices)``.
_Split = tuple[torch.Tensor, np.ndarray, int, tuple[str, ...], torch.Tensor]


def _synthetic_split(spec: sources.DatasetSpec, split: str, per_class: int | None, seed: int,
                     image_size: int | None, device: torch.device, options: dict[str, Any]) -> _Split:
    """The ``gaussian`` mixture's split (``per_class`` samples per class, default 100), generated from ``seed``."""
    if image_size is not None:
        raise ValueError("the gaussian dataset holds feature vectors; image_size must be None")
    feats, labels = builtin.gaussian_mixture(
        split, per_class=100 if per_class is None else per_class, seed=seed, **options
    )
    num_classes = int(options.get("num_classes", spec.num_classes))
    return torch.from_numpy(feats).to(device), labels, num_classes, (), torch.arange(labels.size)


def _image_split(spec: sources.DatasetSpec, split: str, data_root: str | os.PathLike | None, per_class: int | None,
                 seed: int, image_size: int | None, device: torch.device) -> _Split:
    """An image dataset's split, steps 1-4 of the module's pipeline."""
    files: tuple[str, ...]
    if spec.kind == "builtin":
        images, labels, files = builtin.load_digits_split(split)
    else:
        if spec.reader is None:
            raise ValueError(f"dataset {spec.name} has no file reader")
        found = sources.locate(spec, split, data_root)
        files = tuple(str(p) for p in found.values())
        images, raw = spec.reader(list(found.values()))
        if images.shape[0] != raw.shape[0]:
            raise ValueError(f"{files[0]} has {images.shape[0]} images but {files[-1]} has {raw.shape[0]} labels")
        labels = _check_labels(raw, spec, files)
    indices = np.arange(labels.size, dtype=np.int64)
    if per_class is not None:
        indices = transforms.balanced_subset_indices(labels, spec.num_classes, per_class, seed)
        images, labels = images[indices], labels[indices]
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).to(torch.float32).div_(spec.pixel_scale)
    size = image_size if image_size is not None else spec.default_size
    if size is None or int(size) < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    return transforms.resize_images(x, int(size)), labels, spec.num_classes, files, torch.from_numpy(indices)


def _standardized(x: torch.Tensor, standardize_with: StandardizeWith | None,
                  standardize: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, mean, std)``: ``x`` standardised per channel with ``standardize_with``'s statistics, else its own
    (when ``standardize``), else as it is (mean 0, std 1 recorded)."""
    channels = int(x.shape[1])
    if standardize_with is not None:
        mean, std = _stats_from(standardize_with, channels, x.device)
    elif standardize:
        mean, std = transforms.channel_stats(x)
    else:
        return x, torch.zeros(channels, device=x.device), torch.ones(channels, device=x.device)
    return transforms.standardize(x, mean, std), mean, std


def load_train_test(
    name: str,
    *,
    data_root: str | os.PathLike | None = None,
    per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    standardize: bool | None = None,
    with_test: bool = True,
    **options: Any,
) -> tuple[Dataset, Dataset | None]:
    """Load the train split and the test split standardised with the train statistics.

    The training split may be a balanced subset (``per_class``); the test split is whole
    unless ``test_per_class`` is given (``gaussian``: ``test_per_class`` defaults to
    ``per_class``).  ``with_test=False`` returns ``(train, None)``.
    """
    common = dict(data_root=data_root, seed=seed, device=device, image_size=image_size, standardize=standardize,
                  **options)
    train = load_dataset(name, split="train", per_class=per_class, **common)
    if not with_test:
        return train, None
    if sources.get_spec(name).kind == "synthetic" and test_per_class is None:
        test_per_class = per_class
    test = load_dataset(name, split="test", per_class=test_per_class, standardize_with=(train.mean, train.std),
                        **common)
    return train, test


def index_dataset(dataset: Dataset) -> Dataset:
    """The same samples with their indices as input: ``x = torch.arange(n)`` (``int64 (n,)``, on the data's device).

    The input of the unconstrained-features model (``empirical.models.UFM``), which keeps one free
    feature vector per training sample: labels, class counts, balanced subset and everything else of
    ``dataset`` stay, so batches drawn from it are those of the same run with the data (the batch
    generator permutes positions, not values).
    """
    x = torch.arange(len(dataset), dtype=torch.int64, device=dataset.y.device)
    return replace(dataset, x=x)
