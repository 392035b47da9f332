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
        simulate.simulate("reduced", num_classes=4, per_class=6, dim=2, t_max=10.0)


def test_too_few_per_class():
    with pytest.raises(ValueError, match=r"N >= 2"):
        simulate.simulate("features", num_classes=4, per_class=1, dim=3, t_max=10.0)
    with pytest.raises(ValueError, match=r"N >= 2"):
        simulate.random_initial_features(jax.random.PRNGKey(0), 4, 1, 3)


def test_singular_sigma_w():
    labels = simulate.class_labels(C, N)
    X0 = np.asarray(simulate.random_initial_features(jax.random.PRNGKey(0), C, N, P)).copy()
    X0[:, 5:] = np.repeat(np.arange(C), N)[:, None] * 1.0  # within-class deviations live in 5 of 9 dims
    with pytest.raises(ValueError, match="singular Sigma_W"):
        simulate.integrate_features(X0, labels, jnp.array([0.0, 1.0]), C)
    with pytest.raises(ValueError, match="Sigma_W would be singular"):
        simulate.simulate("features", num_classes=4, per_class=2, dim=9, t_max=10.0)


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
        simulate.simulate("sideways", num_classes=4, per_class=6, dim=9, t_max=10.0)
    with pytest.raises(ValueError, match="time-scale convention"):
        simulate.integrate_reduced(jnp.ones(3), jnp.array([0.0, 1.0]), N, C, kappa="fast")
    with pytest.raises(ValueError, match="omega0"):
        simulate.integrate_reduced(jnp.array([1.0, -1.0, 2.0]), jnp.array([0.0, 1.0]), N, C)
    with pytest.raises(ValueError, match="t_max"):
        simulate.simulate("reduced", num_classes=4, per_class=6, dim=9, t_max=float("nan"))
    with pytest.raises(ValueError, match="unknown flow options"):
        simulate.simulate("reduced", num_classes=4, per_class=6, dim=9, t_max=1.0, stepsize=3)
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
    rc = main(["--num-classes", "4", "--per-class", "6", "--dim", "9", "--t-max", "1000", "--flow", "features",
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


VALID = ["--num-classes", "4", "--per-class", "6", "--dim", "9", "--t-max", "10"]


@pytest.mark.parametrize("change, message", [
    (["--classes", "1"], "argument --num-classes/--classes: must be >= 2, got 1"),
    (["--num-classes", "x"], "argument --num-classes/--classes: expected an integer, got 'x'"),
    (["--per-class", "0"], "argument --per-class: must be >= 2, got 0"),
    (["--per-class", "1"], "argument --per-class: must be >= 2, got 1"),
    (["--t-max", "-5"], "argument --t-max: must be a finite number > 0, got -5"),
    (["--t-max", "nan"], "argument --t-max: must be a finite number > 0, got nan"),
    (["--t-max", "soon"], "argument --t-max: expected a number, got 'soon'"),
    (["--dim", "1"], "argument --dim: must be >= C-1 = 3"),
    (["--dim", "0"], "argument --dim: must be >= 1, got 0"),
    (["--dim", "40"], "argument --dim: must be <= C(N-1) = 20"),
    (["--ensemble", "0"], "argument --ensemble: must be >= 1, got 0"),
    (["--num-times", "2"], "argument --num-times: must be >= 3, got 2"),
    (["--rtol", "0"], "argument --rtol: must be a finite number > 0, got 0"),
    (["--atol", "-1e-3"], "argument --atol: must be a finite number > 0"),
    (["--max-steps", "0"], "argument --max-steps: must be >= 1, got 0"),
    (["--kappa", "fast"], "argument --kappa: expected one of ['projected', 'sum', 'means'] or a finite number > 0"),
    (["--kappa", "-2"], "argument --kappa: expected one of"),
    (["--rank", "4"], "argument --rank: must be <= C-1 = 3, got 4"),
    (["--rank", "-1"], "argument --rank: must be >= 0, got -1"),
    (["--step", "0"], "argument --step: must be a finite number > 0, got 0"),
    (["--lam", "-1"], "argument --lam: must be a finite number >= 0, got -1"),
    (["--lam-h", "inf"], "argument --lam-h: must be a finite number >= 0, got inf"),
    (["--seed", "-3"], "argument --seed: must be >= 0, got -3"),
    (["--flow", "sideways"], "argument --flow: invalid choice: 'sideways'"),
    (["--solver", "euler"], "argument --solver: invalid choice: 'euler'"),
])
def test_cli_invalid_argument_one_line_exit_2(tmp_path, capsys, change, message):
    flags = dict(zip(VALID[::2], VALID[1::2]))
    name = "--num-classes" if change[0] == "--classes" else change[0]
    flags[name] = change[1]
    argv = [f"{change[0] if k == name else k}={v}" for k, v in flags.items()]  # "--atol=-1e-3": a value
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "o").exists()  # nothing written


def test_cli_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(SystemExit) as exc:
        main(VALID + ["--out", str(tmp_path / "f")])
    assert exc.value.code == 2
    assert "argument --out:" in capsys.readouterr().err
    assert (tmp_path / "f").read_text() == "keep"


def test_cli_subprocess_invalid_is_one_line():
    r = subprocess.run([sys.executable, "-m", "simulate", "--classes", "1", "--per-class", "0", "--dim", "1",
                        "--t-max", "-5", "--out", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_public_api_names():
    """``simulate.run`` is the module; the entry point is ``simulate.simulate``; one options object."""
    import importlib
    import inspect
    import types

    mod = importlib.import_module("simulate.run")
    assert isinstance(simulate.run, types.ModuleType) and mod is simulate.run
    assert simulate.simulate is mod.simulate
    for fn in (simulate.integrate_reduced, simulate.integrate_reduced_ensemble, simulate.integrate_matrix,
               simulate.integrate_features, simulate.integrate_free, simulate.simulate):
        params = inspect.signature(fn).parameters
        assert params["options"].kind is inspect.Parameter.KEYWORD_ONLY
        assert not {"rtol", "atol", "solver", "max_steps", "error_norm", "classes", "C", "N"} & set(params), fn
    assert inspect.signature(simulate.closed_form_omega).parameters["rtol"].kind is inspect.Parameter.KEYWORD_ONLY
    for fn in (simulate.random_initial_features, simulate.class_labels, simulate.simulate):
        assert "num_classes" in inspect.signature(fn).parameters


@pytest.mark.parametrize("kw, message", [
    (dict(rtol=0.0), "rtol must be a finite number > 0"),
    (dict(atol=float("nan")), "atol must be a finite number > 0"),
    (dict(solver="euler"), "unknown solver 'euler'"),
    (dict(max_steps=0), "max_steps must be a positive integer"),
    (dict(error_norm="l1"), "unknown error_norm 'l1'"),
])
def test_solver_options_validated(kw, message):
    with pytest.raises(ValueError, match=message):
        simulate.SolverOptions(**kw)


def test_solver_options_frozen_and_used():
    opts = simulate.SolverOptions(rtol=1e-6, atol=1e-8)
    with pytest.raises(AttributeError):
        opts.rtol = 1.0
    assert hash(opts) == hash(simulate.SolverOptions(rtol=1e-6, atol=1e-8))
    with pytest.raises(TypeError, match="options must be a simulate.SolverOptions"):
        simulate.integrate_reduced(jnp.ones(3), jnp.array([0.0, 1.0]), N, C, options={"rtol": 1e-6})
    with pytest.raises(ValueError, match=r"pass \['rtol'\] as options=simulate.SolverOptions"):
        simulate.simulate("reduced", num_classes=4, per_class=6, dim=9, t_max=1.0, rtol=1e-6)
    # the settings reach the solver: a looser tolerance takes fewer steps
    t = jnp.array([0.0, 1e4])
    _, loose = simulate.integrate_reduced(jnp.array([3.0, 1.0, 0.2]), t, N, C, options=opts, return_steps=True)
    _, tight = simulate.integrate_reduced(jnp.array([3.0, 1.0, 0.2]), t, N, C,
                                          options=opts.replace(rtol=1e-12, atol=1e-14), return_steps=True)
    assert int(loose) < int(tight)
