"""Readers of the image datasets' on-disk formats (math §7.1): IDX, CIFAR-10 pickles, SVHN ``.mat``, STL-10 binary.

Each returns images ``uint8 (N, C, H, W)`` and labels ``int64 (N,)`` as stored (the dataset specification maps
them to ``0..C-1``); a bad file raises a ``ValueError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np

__all__ = [
    "read_idx",
    "read_cifar_batch",
    "read_svhn_mat",
    "read_stl10_images",
    "read_stl10_labels",
]

# IDX element type codes -> big-endian NumPy dtypes.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently gunzipping it when it starts with the gzip magic."""
    raw = Path(path).read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:  # truncated or corrupt archive
            raise ValueError(f"{path}: corrupt or truncated gzip file ({err})") from err
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a native-endian NumPy array.

    Layout: bytes ``0..3`` are ``0x00 0x00 T D``; then ``D`` big-endian ``int32`` sizes
    ``d_1..d_D``; then ``prod(d_i)`` elements of type ``T``, big-endian.  The payload
    length must equal ``prod(d_i) * itemsize(T)`` exactly.

    Raises:
        ValueError: bad magic, unknown type code, truncated header or payload, trailing bytes.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: bad IDX magic {data[:4].hex()} (expected 0000TTDD with two zero bytes first)"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type code 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX file declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} < {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise ValueError(f"{path}: negative IDX dimension in {dims}")
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual < expected:
        raise ValueError(
            f"{path}: truncated IDX payload: dims {dims} need {expected} bytes, file has {actual}"
        )
    if actual > expected:
        raise ValueError(
            f"{path}: {actual - expected} unexpected trailing bytes after IDX payload of dims {dims}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only reconstructs NumPy arrays and builtin containers.

    CIFAR batches are pickles; refusing every other global keeps a tampered file from
    running code at load time.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol-2 pickles of bytes written by Python 3
    }

    def find_class(self, module: str, name: str):  # pickle protocol
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a data file")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch -> (images ``uint8 (N, 3, 32, 32)``, labels ``(N,)``).

    The batch is a pickled dict with ``b'data'`` (``uint8 (N, 3072)``: the R, G and B
    planes of a 32x32 image, each row-major) and ``b'labels'`` (``N`` ints).
    """
    path = Path(path)
    try:
        with io.BytesIO(_read_bytes(path)) as fh:
            batch = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: not a readable CIFAR python batch ({err})") from err
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: CIFAR batch should be a dict, got {type(batch).__name__}")
    batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: CIFAR batch lacks 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{path}: CIFAR 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}"
        )
    if data.shape[0] != labels.shape[0]:
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    return data.reshape(-1, 3, 32, 32), labels


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN ``*_32x32.mat`` file -> (images ``uint8 (N, 3, 32, 32)``, labels ``(N,)``).

    ``X`` is stored as ``(32, 32, 3, N)`` (height, width, channel, sample); ``y`` is
    ``(N, 1)`` with the file's labels ``1..10`` returned unchanged.
    """
    import scipy.io  # local import: scipy is only needed for this format

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for bad files
        raise ValueError(f"{path}: not a readable MATLAB file ({err})") from err
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path}: SVHN .mat must contain 'X' and 'y'")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise ValueError(f"{path}: SVHN 'X' must be (32, 32, 3, N), got {x.shape}")
    if x.shape[3] != y.shape[0]:
        raise ValueError(f"{path}: {x.shape[3]} images but {y.shape[0]} labels")
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False)
    return images, y


_STL_SHAPE = (3, 96, 96)


def read_stl10_images(path: str | Path) -> np.ndarray:
    """Read an STL-10 ``*_X.bin`` file -> ``uint8 (N, 3, 96, 96)``.

    Each image is ``3*96*96`` bytes, channel planes stored column-major, so the plane read
    row-major is the transpose of the image: ``img[c] = raw[c].T``.
    """
    path = Path(path)
    raw = np.frombuffer(_read_bytes(path), dtype=np.uint8)
    per_image = int(np.prod(_STL_SHAPE))
    if raw.size == 0 or raw.size % per_image:
        raise ValueError(
            f"{path}: size {raw.size} bytes is not a positive multiple of {per_image} (3x96x96)"
        )
    return np.ascontiguousarray(raw.reshape(-1, *_STL_SHAPE).transpose(0, 1, 3, 2))


def read_stl10_labels(path: str | Path) -> np.ndarray:
    """Read an STL-10 ``*_y.bin`` file -> ``int64 (N,)`` labels as stored (``1..10``)."""
    path = Path(path)
    raw = np.frombuffer(_read_bytes(path), dtype=np.uint8)
    if raw.size == 0:
        raise ValueError(f"{path}: empty STL-10 label file")
    return raw.astype(np.int64)
