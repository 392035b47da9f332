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


def test_monitor_tile_reaches_theory_and_records_agree_across_tiles(tmp_path, monkeypatch):
    """The monitor's tile is the one theory's pair passes run with, at the last layer and at a measured layer (a
    recording wrapper around theory.tiling.upper_pairs, which every tiled C x C pass calls, the decomposition's
    means_residual and the samples' pass theory.sample_totals); tiles of 2 rows (four tiles for
    C = 7, every block path taken) give the untiled record to rounding: the tiled sums merge pairwise
    (Chan's update), so only the summation order differs (relative 1e-12)."""
    import theory.decomposition
    import theory.field_metrics
    import theory.metrics

    seen: list[int] = []
    original = theory.metrics.upper_pairs

    def recording(rows, tile, xp, visit):
        seen.append(tile)
        return original(rows, tile, xp, visit)

    monkeypatch.setattr(theory.metrics, "upper_pairs", recording)
    monkeypatch.setattr(theory.field_metrics, "upper_pairs", recording)
    residual = theory.decomposition.means_residual  # the decomposition's C x C-free tiled pass over the means

    def recording_residual(stats, W, b, *, tile):
        seen.append(tile)
        return residual(stats, W, b, tile=tile)

    monkeypatch.setattr(theory.decomposition, "means_residual", recording_residual)
    totals = theory.sample_totals  # the nearest-class-centre / loss pass over the samples (2C x block temporaries)

    def recording_totals(*args, tile, **kwargs):
        seen.append(tile)
        return totals(*args, tile=tile, **kwargs)

    monkeypatch.setattr(theory, "sample_totals", recording_totals)
    net, x, y = _net_and_data()
    recs = {}
    for tile in (2, 1024):
        seen.clear()
        mon = NCMonitor(net, net[-1], num_classes=7, out=tmp_path / str(tile), weight_decay=5e-4, loss="mse",
                        tile=tile, layers=["0"])
        recs[tile] = mon.measure(0, (x, y))
        assert seen and set(seen) == {tile}, (tile, seen)
    for key in ("nc2_equiangular_means", "nc2_maxangle_means", "nc2_equiangular_classifiers", "nc3", "l_nc1", "l_nc23",
                "l_perp"):
        assert recs[2][key] == pytest.approx(recs[1024][key], rel=1e-12, abs=1e-15), key
    for key in ("nc2_equiangular_means", "cdnv", "l_nc1", "ncc_error"):
        assert recs[2]["layers"]["0"][key] == pytest.approx(recs[1024]["layers"]["0"][key], rel=1e-12), key


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
