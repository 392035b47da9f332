"""The measurement's tile (math §2.3): the same record whatever the tile, a tile below 1 refused in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from empirical import NCMonitor
from empirical.config import TrainConfig


def _net_and_data(C=7, p=16, n=140):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, p, generator=g), torch.arange(n) % C
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(p, 12), nn.ReLU(), nn.Linear(12, C)), x, y


def test_monitor_records_agree_across_tiles(tmp_path):
    """Tiles of 2 rows (four tiles for C = 7, every block path taken) give the untiled record to rounding:
    the tiled sums merge pairwise (Chan's update), so only the summation order differs (relative 1e-12)."""
    net, x, y = _net_and_data()
    recs = {}
    for tile in (2, 1024):
        mon = NCMonitor(net, net[-1], num_classes=7, out=tmp_path / str(tile), weight_decay=5e-4, loss="mse",
                        tile=tile)
        recs[tile] = mon.measure(0, (x, y))
    for key in ("nc2_equiangular_means", "nc2_maxangle_means", "nc2_equiangular_classifiers", "nc3", "l_nc1", "l_nc23",
                "l_perp"):
        a, b = recs[2][key], recs[1024][key]
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), key


def test_tile_below_one_is_refused(tmp_path):
    net, _, _ = _net_and_data()
    with pytest.raises(ValueError, match="tile must be a positive integer"):
        NCMonitor(net, net[-1], num_classes=7, out=tmp_path / "m", tile=0)
    with pytest.raises(ValueError, match="tile must be a positive integer"):
        TrainConfig(dataset="gaussian", model="mlp", tile=0).resolved()
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "empirical", "train", "--dataset", "gaussian", "--model", "mlp",
                           "--epochs", "1", "--tile", "0", "--out", str(out)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "tile must be a positive integer" in lines[0], proc.stderr
    assert not out.exists()
