"""Bad input gives clear ValueErrors; the CLI writes npz, JSON and figures."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import simulate
from simulate.__main__ import main

from .conftest import C, N, P


def test_dimension_below_c_minus_1():
    with pytest.raises(ValueError, match=r"p=2 < C-1=3"):
        simulate.run("reduced", classes=4, per_class=6, dim=2, t_max=10.0)


def test_too_few_per_class():
    with pytest.raises(ValueError, match=r"N >= 2"):
        simulate.run("features", classes=4, per_class=1, dim=3, t_max=10.0)
    with pytest.raises(ValueError, match=r"N >= 2"):
        simulate.random_initial_features(jax.random.PRNGKey(0), 4, 1, 3)


def test_singular_sigma_w():
    labels = simulate.class_labels(C, N)
    X0 = np.asarray(simulate.random_initial_features(jax.random.PRNGKey(0), C, N, P)).copy()
    X0[:, 5:] = np.repeat(np.arange(C), N)[:, None] * 1.0  # within-class deviations live in 5 of 9 dims
    with pytest.raises(ValueError, match="singular Sigma_W"):
        simulate.integrate_features(X0, labels, jnp.array([0.0, 1.0]), C)
    with pytest.raises(ValueError, match="Sigma_W would be singular"):
        simulate.run("features", classes=4, per_class=2, dim=9, t_max=10.0)


@pytest.mark.parametrize(
    "times, match",
    [([0.0, np.nan, 2.0], "non-finite"), ([0.0, np.inf], "non-finite"), ([0.0, 2.0, 1.0], "strictly increasing"),
     ([0.0, 0.0], "strictly increasing"), ([1.0], "at least 2")],
)
def test_bad_times(times, match):
    w0 = jnp.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=match):
        simulate.integrate_reduced(w0, jnp.array(times), N, C)
    with pytest.raises(ValueError, match=match):
        simulate.closed_form_omega(w0, jnp.array(times), N, C)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="unknown flow"):
        simulate.run("sideways", classes=4, per_class=6, dim=9, t_max=10.0)
    with pytest.raises(ValueError, match="time-scale convention"):
        simulate.integrate_reduced(jnp.ones(3), jnp.array([0.0, 1.0]), N, C, kappa="fast")
    with pytest.raises(ValueError, match="omega0"):
        simulate.integrate_reduced(jnp.array([1.0, -1.0, 2.0]), jnp.array([0.0, 1.0]), N, C)
    with pytest.raises(ValueError, match="t_max"):
        simulate.run("reduced", classes=4, per_class=6, dim=9, t_max=float("nan"))
    with pytest.raises(ValueError, match="unknown flow options"):
        simulate.run("reduced", classes=4, per_class=6, dim=9, t_max=1.0, stepsize=3)
    labels = simulate.class_labels(C, N)
    X0 = np.asarray(simulate.random_initial_features(jax.random.PRNGKey(0), C, N, P)).copy()
    X0[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):  # theory.class_stats' check
        simulate.integrate_features(X0, labels, jnp.array([0.0, 1.0]), C)


def _check_outdir(out):
    data = np.load(out / "trajectory.npz")
    for key in ("times", "omega", "closed_form_omega", "nc1", "l_nc1", "gram_etf_distance", "omega_ratio"):
        assert key in data.files
    summary = json.loads((out / "summary.json").read_text())
    assert summary["closed_form_max_rel_error"] < 1e-6
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == ["decomposition.png", "gram_start_end.png", "max_min_ratio.png", "nc_metrics.png",
                    "omega_vs_closed_form.png"]
    return data, summary


def test_cli_in_process(tmp_path):
    out = tmp_path / "sim"
    rc = main(["--classes", "4", "--per-class", "6", "--dim", "9", "--t-max", "1000", "--flow", "features",
               "--seed", "1", "--num-times", "25", "--ensemble", "2", "--out", str(out)])
    assert rc == 0
    data, summary = _check_outdir(out)
    assert data["omega"].shape == (2, 25, 3)
    assert summary["ensemble_size"] == 2


@pytest.mark.slow
def test_cli_subprocess(tmp_path):
    out = tmp_path / "sim"
    subprocess.run([sys.executable, "-m", "simulate", "--classes", "3", "--per-class", "4", "--dim", "3",
                    "--t-max", "1e4", "--flow", "reduced", "--kappa", "sum", "--out", str(out)], check=True)
    data, summary = _check_outdir(out)
    assert data["omega"].shape == (60, 2)
    assert summary["params"]["kappa_value"] == 12.0


def test_simulate_imports_no_torch():
    code = "import sys, simulate; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
