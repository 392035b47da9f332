"""Tests of empirical.data: every file format round-trips, subsets, standardisation, errors."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from empirical.data import DATASETS, batches, formats, get_spec, load_dataset, load_train_test
from empirical.data.transforms import balanced_subset_indices

torch.set_num_threads(1)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- writers


def write_idx(path: Path, arr: np.ndarray, *, gz: bool, code: int = 0x08) -> Path:
    """Write ``arr`` as an IDX file (big-endian header and payload)."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
    payload = header + np.asarray(arr, dtype=dtype).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def make_idx_dataset(folder: Path, *, per_class=(3, 3, 3, 3, 3, 3, 3, 3, 3, 3), gz=True, seed=0):
    """Write a tiny MNIST-format dataset; return (train images, train labels)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.repeat(np.arange(len(per_class)), per_class).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 256, size=(labels.size, 28, 28), dtype=np.uint8)
    write_idx(folder / "train-images-idx3-ubyte", images, gz=gz)
    write_idx(folder / "train-labels-idx1-ubyte", labels, gz=gz)
    test_labels = np.arange(10, dtype=np.uint8)
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), gz=gz)
    write_idx(folder / "t10k-labels-idx1-ubyte", test_labels, gz=gz)
    return images, labels.astype(np.int64)


def to_bytes(x: torch.Tensor) -> np.ndarray:
    """Undo the [0, 1] scaling of unstandardised images."""
    return np.rint(x.numpy() * 255).astype(np.int64)


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip_pixels_labels_and_padding(tmp_path, gz):
    images, labels = make_idx_dataset(tmp_path / "mnist", gz=gz)
    raw = load_dataset("mnist", data_root=tmp_path, image_size=28, standardize=False)
    assert raw.x.shape == (30, 1, 28, 28) and raw.x.dtype == torch.float32
    np.testing.assert_array_equal(to_bytes(raw.x[:, 0]), images)
    np.testing.assert_array_equal(raw.y.numpy(), labels)
    assert raw.y.dtype == torch.int64 and raw.channels == 1 and raw.num_classes == 10
    assert all(Path(f).parent == tmp_path / "mnist" for f in raw.files)

    padded = load_dataset("mnist", data_root=tmp_path / "mnist", standardize=False)  # default 32
    assert padded.x.shape == (30, 1, 32, 32) and padded.input_shape == (1, 32, 32)
    np.testing.assert_array_equal(to_bytes(padded.x[:, 0, 2:30, 2:30]), images)
    border = padded.x.clone()
    border[:, :, 2:30, 2:30] = 0
    assert float(border.abs().max()) == 0.0


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_dtypes(tmp_path, code):
    arr = (np.arange(24).reshape(2, 3, 4) - 5) if code != 0x08 else np.arange(24).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a-idx3", arr, gz=False, code=code)
    out = formats.read_idx(path)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_read_idx_rejects_bad_files(tmp_path):
    good = write_idx(tmp_path / "g", np.zeros((4, 2, 2), np.uint8), gz=False).read_bytes()
    cases = {
        "magic": b"\x01\x02" + good[2:],
        "type code": good[:2] + b"\x42" + good[3:],
        "truncated IDX payload": good[:-3],
        "trailing": good + b"\x00",
        "truncated IDX header": good[:6],
    }
    for what, content in cases.items():
        p = tmp_path / f"bad_{what.replace(' ', '_')}"
        p.write_bytes(content)
        with pytest.raises(ValueError, match=what):
            formats.read_idx(p)
    p = tmp_path / "bad.gz"
    p.write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(ValueError, match="gzip"):
        formats.read_idx(p)


def test_bad_idx_file_inside_dataset_is_reported(tmp_path):
    make_idx_dataset(tmp_path / "kmnist", gz=False)
    path = tmp_path / "kmnist" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated IDX payload"):
        load_dataset("kmnist", data_root=tmp_path)


def test_images_and_labels_count_mismatch(tmp_path):
    make_idx_dataset(tmp_path / "mnist", gz=False)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", np.zeros(7, np.uint8), gz=False)
    with pytest.raises(ValueError, match="30 images but .* 7 labels"):
        load_dataset("mnist", data_root=tmp_path)


def test_label_out_of_range(tmp_path):
    make_idx_dataset(tmp_path / "mnist", gz=True)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", np.full(30, 11, np.uint8), gz=True)
    with pytest.raises(ValueError, match=r"label out of range.*\[0, 9\].*11"):
        load_dataset("mnist", data_root=tmp_path)


# ----------------------------------------------------------------------------- CIFAR-10


def write_cifar(folder: Path, per_batch: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    all_data, all_labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, fh, protocol=2)
        if name != "test_batch":
            all_data.append(data)
            all_labels += labels
    return np.concatenate(all_data), np.asarray(all_labels)


def test_cifar_roundtrip(tmp_path):
    data, labels = write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_root=tmp_path, standardize=False)
    assert ds.x.shape == (20, 3, 32, 32) and ds.channels == 3
    got = to_bytes(ds.x)
    # data row = R plane (1024, row-major) then G then B.
    np.testing.assert_array_equal(got.reshape(20, 3072), data)
    np.testing.assert_array_equal(got[:, 1, 0, 5], data[:, 1024 + 5])
    np.testing.assert_array_equal(ds.y.numpy(), labels)
    assert len(ds.files) == 5
    # batches pickled before NumPy 2 name numpy.core.multiarray (the official files do)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    torch.testing.assert_close(load_dataset("cifar10", data_root=tmp_path, standardize=False).x, ds.x)


def test_cifar_refuses_code_in_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(ValueError, match="refusing to load global"):
        load_dataset("cifar10", data_root=tmp_path)


def test_standardisation_train_stats_applied_to_test(tmp_path):
    write_cifar(tmp_path / "cifar10" / "cifar-10-batches-py", per_batch=8)
    train, test = load_train_test("cifar10", data_root=tmp_path)
    dims = (0, 2, 3)
    torch.testing.assert_close(train.x.mean(dim=dims), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.x.std(dim=dims, unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    raw_test = load_dataset("cifar10", split="test", data_root=tmp_path, standardize=False)
    expected = (raw_test.x - train.mean.view(1, 3, 1, 1)) / train.std.view(1, 3, 1, 1)
    torch.testing.assert_close(test.x, expected)
    torch.testing.assert_close(test.mean, train.mean)
    # the same through an explicit Dataset argument
    again = load_dataset("cifar10", split="test", data_root=tmp_path, standardize_with=train)
    torch.testing.assert_close(again.x, test.x)
    with pytest.raises(ValueError, match="3 channels"):
        load_dataset("cifar10", split="test", data_root=tmp_path, standardize_with=([0.0], [1.0]))


# ----------------------------------------------------------------------------- SVHN


def test_svhn_roundtrip_and_label_10_is_zero(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(1)
    folder = tmp_path / "svhn"
    folder.mkdir()
    x = rng.integers(0, 256, size=(32, 32, 3, 12), dtype=np.uint8)
    y = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 3], dtype=np.uint8).reshape(-1, 1)
    scipy_io.savemat(folder / "train_32x32.mat", {"X": x, "y": y})
    scipy_io.savemat(folder / "test_32x32.mat", {"X": x[..., :2], "y": y[:2]})
    ds = load_dataset("svhn", data_root=tmp_path, standardize=False)
    assert ds.x.shape == (12, 3, 32, 32)
    np.testing.assert_array_equal(to_bytes(ds.x), x.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(ds.y.numpy(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 3])
    y_bad = y.copy()
    y_bad[0] = 0  # SVHN labels are 1..10
    scipy_io.savemat(folder / "train_32x32.mat", {"X": x, "y": y_bad})
    with pytest.raises(ValueError, match=r"label out of range.*\[1, 10\]"):
        load_dataset("svhn", data_root=tmp_path)


# ----------------------------------------------------------------------------- STL-10


def test_stl10_column_major_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    imgs = rng.integers(0, 256, size=(10, 3, 96, 96), dtype=np.uint8)
    labels = np.arange(1, 11, dtype=np.uint8)
    # STL-10 stores each channel plane column-major.
    (folder / "train_X.bin").write_bytes(np.ascontiguousarray(imgs.transpose(0, 1, 3, 2)).tobytes())
    (folder / "train_y.bin").write_bytes(labels.tobytes())
    ds = load_dataset("stl10", data_root=tmp_path, standardize=False)
    assert ds.x.shape == (10, 3, 96, 96)
    np.testing.assert_array_equal(to_bytes(ds.x), imgs)
    np.testing.assert_array_equal(ds.y.numpy(), np.arange(10))
    small = load_dataset("stl10", data_root=tmp_path, image_size=32)
    assert small.x.shape == (10, 3, 32, 32)
    (folder / "train_X.bin").write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match="multiple of 27648"):
        load_dataset("stl10", data_root=tmp_path)
    with pytest.raises(FileNotFoundError, match="test_X.bin"):
        load_dataset("stl10", split="test", data_root=tmp_path)


# ----------------------------------------------------------------------------- subsets


def test_balanced_subset_is_balanced_and_deterministic(tmp_path):
    per_class = tuple(range(3, 13))  # imbalanced: 3..12 per class
    images, labels = make_idx_dataset(tmp_path / "mnist", per_class=per_class)
    a = load_dataset("mnist", data_root=tmp_path, per_class=3, seed=5)
    b = load_dataset("mnist", data_root=tmp_path, per_class=3, seed=5)
    c = load_dataset("mnist", data_root=tmp_path, per_class=3, seed=6)
    assert a.class_counts().tolist() == [3] * 10 and len(a) == 30
    assert torch.equal(a.indices, b.indices) and torch.equal(a.x, b.x)
    assert not torch.equal(a.indices, c.indices)
    np.testing.assert_array_equal(a.y.numpy(), labels[a.indices.numpy()])
    full = load_dataset("mnist", data_root=tmp_path)
    assert full.class_counts().tolist() == list(per_class)
    with pytest.raises(ValueError, match=r"per_class=4.*\{0: 3\}.*\[3, 4, 5"):
        load_dataset("mnist", data_root=tmp_path, per_class=4)


def test_balanced_subset_indices_function():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    idx = balanced_subset_indices(labels, 4, 7, seed=0)
    assert np.bincount(labels[idx]).tolist() == [7, 7, 7, 7]
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, balanced_subset_indices(labels, 4, 7, seed=0))
    with pytest.raises(ValueError, match=">= 1"):
        balanced_subset_indices(labels, 4, 0, seed=0)


# ----------------------------------------------------------------------------- errors


def test_unknown_dataset_lists_available():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*fashion-mnist.*cifar10"):
        load_dataset("imagenet")
    assert get_spec("FashionMNIST").name == "fashion-mnist"
    assert set(DATASETS) >= {"fashion-mnist", "mnist", "kmnist", "cifar10", "svhn", "stl10", "digits", "gaussian"}
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", split="val")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("digits", image_size=0)
    assert DATASETS["svhn"].paper_per_class == 4600 and DATASETS["stl10"].paper_per_class == 500


def test_missing_data_messages(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("mnist", data_root=tmp_path / "nope")
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("fashion-mnist", data_root=tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path) in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    with pytest.raises(FileNotFoundError, match="cs.toronto.edu"):
        load_dataset("cifar10", data_root=tmp_path)
    monkeypatch.setenv("NC_DATA_ROOT", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="NC_DATA_ROOT"):
        load_dataset("mnist")


def test_env_data_root(tmp_path, monkeypatch):
    images, _ = make_idx_dataset(tmp_path / "MNIST" / "raw", gz=False)
    monkeypatch.setenv("NC_DATA_ROOT", str(tmp_path))
    ds = load_dataset("mnist", image_size=28, standardize=False)
    np.testing.assert_array_equal(to_bytes(ds.x[:, 0]), images)


# ----------------------------------------------------------------------------- batches


def test_batches_cover_shuffle_and_drop_last():
    x = torch.arange(10, dtype=torch.float32).view(10, 1)
    y = torch.arange(10)
    plain = list(batches((x, y), 4, shuffle=False))
    assert [len(b[1]) for b in plain] == [4, 4, 2]
    assert torch.equal(torch.cat([b[1] for b in plain]), y)
    it = batches((x, y), 4, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=True)
    assert len(it) == 2
    epoch1, epoch2 = [torch.cat([b[1] for b in it]) for _ in range(2)]
    assert len(epoch1) == 8 and len(set(epoch1.tolist())) == 8
    assert not torch.equal(epoch1, epoch2)  # a fresh permutation per pass
    again = batches((x, y), 4, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=True)
    assert torch.equal(torch.cat([b[1] for b in again]), epoch1)
    full = torch.cat([b[1] for b in batches((x, y), 3, shuffle=True)])
    assert sorted(full.tolist()) == list(range(10))
    for xb, yb in batches((x, y), 3, shuffle=True):
        assert torch.equal(xb[:, 0].long(), yb)  # pairs stay aligned
    with pytest.raises(ValueError, match="batch_size"):
        batches((x, y), 0, shuffle=False)
    with pytest.raises(ValueError, match="batch_size must be an integer, got 4.0"):  # at construction, not mid-pass
        batches((x, y), 4.0, shuffle=False)  # type: ignore[arg-type]
    assert len(batches((x, y), torch.tensor(4), shuffle=False)) == 3  # any integer type


# ----------------------------------------------------------------------------- builtin data


def test_digits_default_and_resized():
    train, test = load_train_test("digits")
    assert train.x.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    assert train.num_classes == 10
    assert int(train.class_counts().min()) >= 130
    sub = load_dataset("digits", per_class=20, seed=3, image_size=32)
    assert sub.x.shape == (200, 1, 32, 32) and sub.class_counts().tolist() == [20] * 10
    torch.testing.assert_close(sub.x.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(sub.x.std(unbiased=False), torch.tensor(1.0), atol=1e-5, rtol=0)
    assert sub.files[0].endswith("digits.csv.gz")


def test_gaussian_mixture():
    train, test = load_train_test("gaussian", per_class=50, num_classes=4, dim=6, separation=3.0, seed=1)
    assert train.x.shape == (200, 6) and test.x.shape == (200, 6) and train.input_shape == (6,)
    assert train.num_classes == 4 and train.class_counts().tolist() == [50] * 4
    assert not torch.equal(train.x, test.x)
    # same class means in both splits (up to sampling noise of ~1/sqrt(d * 50))
    m_train = torch.stack([train.x[train.y == c].mean(0) for c in range(4)])
    m_test = torch.stack([test.x[test.y == c].mean(0) for c in range(4)])
    assert float((m_train - m_test).norm(dim=1).max()) < 0.3
    again = load_dataset("gaussian", per_class=50, num_classes=4, dim=6, separation=3.0, seed=1)
    assert torch.equal(again.x, train.x)
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("gaussian", image_size=32)
    with pytest.raises(ValueError, match="unexpected options"):
        load_dataset("digits", dim=3)


# ----------------------------------------------------------------------------- real Fashion-MNIST


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_full_path():
    counts_train = np.bincount(formats.read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz"))
    counts_test = np.bincount(formats.read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz"))
    assert counts_train.tolist() == [6000] * 10 and counts_test.tolist() == [1000] * 10

    train, test = load_train_test("fashion-mnist", per_class=100, seed=0)
    assert train.x.shape == (1000, 1, 32, 32) and test.x.shape == (10000, 1, 32, 32)
    assert train.class_counts().tolist() == [100] * 10
    assert len(test) == 10000 and test.class_counts().tolist() == [1000] * 10
    torch.testing.assert_close(train.x.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.x.std(unbiased=False), torch.tensor(1.0), atol=1e-5, rtol=0)
    assert abs(float(test.x.mean())) < 0.1  # train statistics applied to test
    # padded border holds the standardised value of a black pixel
    border = train.x[:, 0, 0, :]
    torch.testing.assert_close(border, torch.full_like(border, float(-train.mean[0] / train.std[0])))
    assert train.files[0].startswith(str(FASHION_DIR))


def test_channel_stats_chunked_matches_direct():
    from empirical.data.transforms import channel_stats

    x = torch.rand(37, 3, 5, 4, dtype=torch.float32) * 5 + 2
    mean, std = channel_stats(x, chunk=6)
    xd = x.double()
    torch.testing.assert_close(mean.double(), xd.mean(dim=(0, 2, 3)), atol=1e-6, rtol=0)
    torch.testing.assert_close(std.double(), xd.std(dim=(0, 2, 3), unbiased=False), atol=1e-6, rtol=0)
    const = torch.ones(4, 2)
    assert channel_stats(const)[1].tolist() == [1.0, 1.0]  # constant channel: std replaced by 1
