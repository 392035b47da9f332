"""Registry of datasets: where their files live (:func:`candidate_roots`, :func:`locate`) and how each split is
read (math §7.1).  Nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import formats

__all__ = ["DatasetSpec", "DATASETS", "SYSTEM_ROOTS", "get_spec", "candidate_roots", "locate"]

SPLITS = ("train", "test")

#: System folders searched when neither ``data_root`` nor ``$NC_DATA_ROOT`` names the data.
SYSTEM_ROOTS: tuple[str, ...] = (
    "/usr/share/datasets",
    "/usr/local/share/datasets",
    "~/.cache/nc_mse_toolkit/datasets",
    "~/.cache/datasets",
    "~/.cache",
    "~/datasets",
    "~/data",
)


#: Reads a split from its files, in the order of ``DatasetSpec.files[split]`` (the loader checks that the images
#: and labels agree in number).
Reader = Callable[[list[Path]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one dataset.

    Attributes:
        name: registry name.
        kind: ``"files"`` (read from disk), ``"builtin"`` (ships with a dependency) or
            ``"synthetic"`` (generated from a seed).
        num_classes: number of classes ``C``; labels are mapped to ``0..C-1``.
        default_size: side length returned when ``image_size=None`` (28x28 sets are padded
            to 32x32 as in the paper's protocol, math §7.1).
        pixel_scale: raw pixel maximum (255 for ``uint8`` images, 16 for sklearn digits).
        aliases: folder names of the dataset under a data root.
        inner_dirs: folder names that archives of the dataset extract to.
        files: per split, the logical files; each is a tuple of accepted file names.
        raw_label_range: inclusive range ``(lo, hi)`` of labels as stored in the files.
        label_map: maps stored labels to ``0..C-1``.
        how_to_get: instructions shown when the files are missing.
        paper_per_class: balanced subset size ``N`` of the PNAS 2020 protocol that the paper
            follows (5000 for MNIST, Fashion-MNIST, CIFAR-10; 4600 SVHN; 500 STL-10; math §7.1,
            reconstructed [REC]); ``None`` where the paper has no such number.
    """

    name: str
    kind: str
    num_classes: int
    default_size: int | None
    pixel_scale: float = 255.0
    aliases: tuple[str, ...] = ()
    inner_dirs: tuple[str, ...] = ()
    files: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    reader: Reader | None = None
    raw_label_range: tuple[int, int] = (0, 9)
    label_map: Callable[[np.ndarray], np.ndarray] = np.asarray
    how_to_get: str = ""
    paper_per_class: int | None = None


# --------------------------------------------------------------------------- readers


def _idx_reader(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = paths
    images = formats.read_idx(images_path)
    labels = formats.read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected 1-d labels, got shape {labels.shape}")
    return images[:, None, :, :], labels.astype(np.int64)


def _cifar_reader(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    parts = [formats.read_cifar_batch(p) for p in paths]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _idx_files() -> dict[str, tuple[tuple[str, ...], ...]]:
    def alts(stem: str) -> tuple[str, ...]:
        # Accept the canonical name, its .gz, and the dotted variant some mirrors use.
        dotted = stem.replace("-idx", ".idx")
        return (stem, stem + ".gz", dotted, dotted + ".gz")

    return {
        "train": (alts("train-images-idx3-ubyte"), alts("train-labels-idx1-ubyte")),
        "test": (alts("t10k-images-idx3-ubyte"), alts("t10k-labels-idx1-ubyte")),
    }


def _idx_spec(name: str, aliases: tuple[str, ...], how: str, paper_n: int | None) -> DatasetSpec:
    return DatasetSpec(
        name=name, kind="files", num_classes=10, default_size=32,
        aliases=aliases, files=_idx_files(), reader=_idx_reader, how_to_get=how, paper_per_class=paper_n,
    )


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": _idx_spec(
        "fashion-mnist", ("fashion-mnist", "fashion_mnist", "FashionMNIST", "fashionmnist"),
        "On Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (installs "
        "/usr/share/datasets/fashion-mnist); or download the four *-ubyte.gz files from "
        "https://github.com/zalandoresearch/fashion-mnist into <data_root>/fashion-mnist/.",
        5000,
    ),
    "mnist": _idx_spec(
        "mnist", ("mnist", "MNIST"),
        "Download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
        "and t10k-labels-idx1-ubyte.gz from https://yann.lecun.com/exdb/mnist/ (mirror: "
        "https://ossci-datasets.s3.amazonaws.com/mnist/) into <data_root>/mnist/.",
        5000,
    ),
    "kmnist": _idx_spec(
        "kmnist", ("kmnist", "KMNIST"),
        "Download the IDX files (train-images-idx3-ubyte.gz, ...) of Kuzushiji-MNIST from "
        "https://github.com/rois-codh/kmnist into <data_root>/kmnist/.",
        None,
    ),
    "cifar10": DatasetSpec(
        name="cifar10", kind="files", num_classes=10, default_size=32,
        aliases=("cifar10", "cifar-10", "CIFAR10"), inner_dirs=("cifar-10-batches-py",),
        files={
            "train": tuple((f"data_batch_{i}",) for i in range(1, 6)),
            "test": (("test_batch",),),
        },
        reader=_cifar_reader,
        how_to_get="Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
        "and extract it in <data_root> (it creates cifar-10-batches-py/).",
        paper_per_class=5000,
    ),
    "svhn": DatasetSpec(
        name="svhn", kind="files", num_classes=10, default_size=32,
        aliases=("svhn", "SVHN"),
        files={"train": (("train_32x32.mat",),), "test": (("test_32x32.mat",),)},
        reader=lambda paths: formats.read_svhn_mat(paths[0]),
        raw_label_range=(1, 10), label_map=lambda y: np.where(y == 10, 0, y),
        how_to_get="Download train_32x32.mat and test_32x32.mat (format 2, cropped digits) from "
        "http://ufldl.stanford.edu/housenumbers/ into <data_root>/svhn/.",
        paper_per_class=4600,
    ),
    "stl10": DatasetSpec(
        name="stl10", kind="files", num_classes=10, default_size=96,
        aliases=("stl10", "stl-10", "STL10"), inner_dirs=("stl10_binary",),
        files={
            "train": (("train_X.bin",), ("train_y.bin",)),
            "test": (("test_X.bin",), ("test_y.bin",)),
        },
        reader=lambda paths: (formats.read_stl10_images(paths[0]), formats.read_stl10_labels(paths[1])),
        raw_label_range=(1, 10), label_map=lambda y: y - 1,
        how_to_get="Download stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/ and "
        "extract it in <data_root> (it creates stl10_binary/).",
        paper_per_class=500,
    ),
    "digits": DatasetSpec(
        name="digits", kind="builtin", num_classes=10, default_size=8,
        pixel_scale=16.0, how_to_get="Ships with scikit-learn (sklearn.datasets.load_digits).",
    ),
    "gaussian": DatasetSpec(
        name="gaussian", kind="synthetic", num_classes=10, default_size=None, pixel_scale=1.0,
        how_to_get="Generated from a seed.",
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """Return the registry entry for ``name`` (case-insensitive; ``_`` and ``-`` equivalent)."""
    def norm(text: str) -> str:
        return str(text).lower().replace("_", "").replace("-", "")

    lookup = {norm(alias): spec for spec in DATASETS.values() for alias in (spec.name, *spec.aliases)}
    spec = lookup.get(norm(name))
    if spec is None:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return spec


def candidate_roots(data_root: str | os.PathLike | None) -> tuple[list[Path], bool]:
    """Data roots to search, and whether the roots themselves may hold the files.

    An explicit ``data_root`` must exist and is the only root searched (the files may lie
    directly in it).  Otherwise ``$NC_DATA_ROOT`` (which must exist when set) comes first,
    then :data:`SYSTEM_ROOTS`; there only named sub-folders are searched, so that a folder
    of one IDX dataset is never mistaken for another.
    """
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"data_root {str(root)!r} does not exist or is not a directory")
        return [root], True
    roots: list[Path] = []
    env = os.environ.get("NC_DATA_ROOT")
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"$NC_DATA_ROOT={env!r} does not exist or is not a directory")
        roots.append(root)
    roots.extend(Path(r).expanduser() for r in SYSTEM_ROOTS)
    return roots, False


def _subfolders(spec: DatasetSpec, include_root: bool) -> list[str]:
    subs = [""] if include_root else []
    subs += list(spec.inner_dirs)
    for alias in spec.aliases:
        subs += [alias, f"{alias}/raw"] + [f"{alias}/{inner}" for inner in spec.inner_dirs]
    return subs


def locate(spec: DatasetSpec, split: str, data_root: str | os.PathLike | None) -> dict[str, Path]:
    """Find the files of ``split``: ``{file name: path}`` in the order of ``spec.files[split]``, keyed by the first
    accepted name of each file.  Searched: under each root (:func:`candidate_roots`), the folders ``<alias>``,
    ``<alias>/raw`` and the archives' inner folders; the first directory holding every file wins.

    Raises:
        FileNotFoundError: listing the file names and directories searched, and how to get them.
    """
    if split not in spec.files:
        raise ValueError(f"unknown split {split!r} for {spec.name}; available: {', '.join(spec.files)}")
    roots, include_root = candidate_roots(data_root)
    dirs = dict.fromkeys(root / sub for root in roots for sub in _subfolders(spec, include_root))
    wanted = spec.files[split]
    for d in dirs:
        if not d.is_dir():
            continue
        found: dict[str, Path] = {}
        for alternatives in wanted:
            hit = next((d / a for a in alternatives if (d / a).is_file()), None)
            if hit is None:
                break
            found[alternatives[0]] = hit
        if len(found) == len(wanted):
            return found
    names = ", ".join(" | ".join(alts) for alts in wanted)
    subs = ", ".join(s or "." for s in _subfolders(spec, include_root))
    where = ", ".join(str(r) for r in roots)
    raise FileNotFoundError(
        f"dataset {spec.name!r} (split {split!r}) not found.\n"
        f"Looked for the files: {names}\n"
        f"in these sub-folders: {subs}\nof the data roots: {where}\n"
        f"How to get it: {spec.how_to_get}\n"
        f"Then pass data_root=<folder> (CLI: --data-root) or set $NC_DATA_ROOT."
    )

