"""Whole-tensor preprocessing: balanced subsets, resizing, per-channel standardisation (math §7.1).

Everything acts on the whole dataset at once (no per-sample Python transforms), so it runs
unchanged on the training device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "class_counts",
    "balanced_subset_indices",
    "resize_images",
    "channel_stats",
    "standardize",
]


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Measured number of samples per class, ``n_c = #{i : y_i = c}`` for ``c < C``."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]


def balanced_subset_indices(
    labels: np.ndarray, num_classes: int, per_class: int, seed: int
) -> np.ndarray:
    """Sorted indices of a balanced subset, ``N = per_class`` samples of every class (math §7.1): the first ``N``
    of each class in one permutation drawn from ``seed``, so ``(labels, N, seed)`` always gives the same subset.

    Raises:
        ValueError: ``N < 1`` or a class with fewer than ``N`` samples (the counts are reported).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    counts = class_counts(labels, num_classes)
    short = {c: int(n) for c, n in enumerate(counts) if n < per_class}
    if short:
        raise ValueError(
            f"per_class={per_class} but some classes have fewer samples: {short} "
            f"(measured counts per class: {counts.tolist()})"
        )
    perm = np.random.default_rng(seed).permutation(labels.shape[0])
    grouped = perm[np.argsort(labels[perm], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = np.concatenate([grouped[s : s + per_class] for s in starts])
    return np.sort(chosen)


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bring images ``(n, c, h, w)`` to ``size x size``.

    28x28 -> 32x32 is a zero pad of 2 pixels on every side (the paper's protocol, as the
    authors' ``Pad(2)``, math §7.1 / 8); any other change is bilinear interpolation of the whole
    tensor (antialiased when shrinking).  Pixel values are expected in ``[0, 1]`` so that the
    padding is black, as in the original pipeline.
    """
    if x.ndim != 4:
        raise ValueError(f"resize_images expects (n, c, h, w), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if (h, w, size) == (28, 28, 32):
        return F.pad(x, (2, 2, 2, 2))
    shrink = size < min(h, w)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def channel_stats(x: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over all other axes, accumulated in float64.

    For images ``(n, c, h, w)``: ``m_k = mean_{i,u,v} x[i,k,u,v]`` and
    ``s_k = sqrt(mean_{i,u,v} (x[i,k,u,v] - m_k)^2)`` (population std; two passes over chunks
    of ``chunk`` samples with float64 accumulation, so no float64 copy of the dataset is made).  For feature
    vectors ``(n, d)`` each coordinate is a channel.  A zero standard deviation (constant
    channel) is replaced by 1.  Returned as float32 tensors on ``x.device``.
    """
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"channel_stats needs a non-empty (n, c, ...) tensor, got {tuple(x.shape)}")
    spatial = list(range(2, x.ndim))
    count = x.numel() // x.shape[1]

    def per_channel_sum(t: torch.Tensor) -> torch.Tensor:
        # Per-sample sums over the (small) spatial axes in x.dtype, then over samples in
        # float64: as accurate as a float64 sum for images, and much faster on CPU.
        if spatial:
            t = t.sum(dim=spatial)
        return t.to(torch.float64).sum(dim=0)

    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for part in x.split(chunk):
        total += per_channel_sum(part)
    mean = total / count
    # Centre with the mean rounded to x.dtype and correct exactly for the rounding:
    # mean (x - m')^2 = var + (m - m')^2.
    mean_x = mean.to(x.dtype)
    shape = [1, -1] + [1] * len(spatial)
    sq = torch.zeros_like(total)
    for part in x.split(chunk):
        sq += per_channel_sum((part - mean_x.view(shape)).square())
    std = (sq / count - (mean - mean_x.to(torch.float64)).square()).clamp_min(0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.to(torch.float32), std.to(torch.float32)


def standardize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Return ``(x - m_k) / s_k`` per channel ``k`` (channel axis 1), in place on ``x``."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(shape)
    return x.sub_(mean).div_(std)
