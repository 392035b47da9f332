"""Datasets that need no files: scikit-learn's digits and synthetic Gaussian mixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_digits_split", "gaussian_mixture", "DIGITS_TEST_EVERY"]

#: Every ``DIGITS_TEST_EVERY``-th sample of each class (by index order) is in the test split.
DIGITS_TEST_EVERY = 4


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """scikit-learn's bundled handwritten digits (1797 images, 8x8, values 0..16, 10 classes).

    The data has no official split; this one is fixed and stratified: within each class, the
    samples of rank ``r`` (in file order) with ``r % 4 == 3`` form the test split (about 25%),
    the rest the train split.  It does not depend on any seed, so train and test never overlap.

    Returns:
        images ``uint8 (n, 1, 8, 8)``, labels ``int64 (n,)``, and the path of the data file.
    """
    import sklearn.datasets as skd  # local import: only this loader needs sklearn

    bunch = skd.load_digits()
    images = np.asarray(bunch.images).astype(np.uint8)[:, None, :, :]
    labels = np.asarray(bunch.target, dtype=np.int64)
    rank = np.empty_like(labels)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(idx.size)
    is_test = rank % DIGITS_TEST_EVERY == DIGITS_TEST_EVERY - 1
    keep = is_test if split == "test" else ~is_test
    source = Path(skd.__file__).parent / "data" / "digits.csv.gz"
    return images[keep], labels[keep], (str(source),)


def gaussian_mixture(
    split: str,
    *,
    num_classes: int = 10,
    dim: int = 32,
    per_class: int = 100,
    separation: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced Gaussian class mixture in ``R^d``: ``x = mu_c + z``.

    ``mu_c = separation * g_c`` with ``g_c ~ N(0, I_d / d)`` (so ``||mu_c|| ~ separation``) and
    ``z ~ N(0, I_d / d)`` (so ``||z|| ~ 1``).  The class means depend on ``seed`` only; the
    train and test samples are independent draws from the same mixture.  Labels are sorted,
    ``per_class`` per class.

    Returns:
        ``float32 (C * per_class, d)`` features and ``int64`` labels.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if dim < 1 or per_class < 1:
        raise ValueError(f"dim and per_class must be >= 1, got dim={dim}, per_class={per_class}")
    scale = 1.0 / np.sqrt(dim)
    means = separation * scale * np.random.default_rng([seed, 0]).standard_normal((num_classes, dim))
    stream = {"train": 1, "test": 2}[split]
    rng = np.random.default_rng([seed, stream])
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    x = means[labels] + scale * rng.standard_normal((labels.size, dim))
    return x.astype(np.float32), labels
