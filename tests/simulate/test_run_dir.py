"""Flows written as run directories (issue 15, ladder rungs (a) and (b)): read by ``empirical.read_run_log`` and
held against the math §3.4 / §6.3 closed forms; bad input gives one line (CLI, exit 2) or a ValueError naming it."""

import json

import numpy as np
import pytest

import simulate
import theory
from empirical import read_run_log
from empirical.schema import SCHEMA_VERSION
from simulate.__main__ import main
from simulate.run import log_times

from .conftest import ROUTES_TOL, C, N, P

KAPPA = 2.0  # a non-default kappa: the logged flow time is in this convention (math §6.3 table)
NUM_TIMES = 25  # with ROUTES_TOL: the programs the session's `routes` fixture compiled (kappa is traced)


@pytest.fixture(scope="module")
def rung_a(tmp_path_factory):
    """The reduced flow (rung (a)) at C=4, N=6, p=9, 25 saved times to t = 2000, as a run directory."""
    traj = simulate.simulate("reduced", num_classes=C, per_class=N, dim=P, t_max=2000.0, seed=3, num_times=NUM_TIMES,
                             kappa=KAPPA, options=ROUTES_TOL)
    out = simulate.write_run_dir(traj, tmp_path_factory.mktemp("rung_a"))
    return traj, read_run_log(out)


def test_rung_a_is_a_run_in_the_run_format(rung_a):
    traj, log = rung_a
    assert log.format == "run_dir" and log.schema_version == SCHEMA_VERSION
    cfg = log.config["config"]
    assert cfg["model"] == "flow:reduced" and cfg["ladder_rung"] == "a" and cfg["loss"] == "mse"
    assert (cfg["num_classes"], cfg["per_class"], cfg["dim"], cfg["kappa"], cfg["lam"]) == (C, N, P, KAPPA, 0.0)
    assert [r["epoch"] for r in log.records] == list(range(NUM_TIMES))
    expected_t = np.asarray(log_times(2000.0, NUM_TIMES))
    for key in ("flow_time", "lr_weighted_steps"):
        np.testing.assert_array_equal([r[key] for r in log.records], expected_t)  # exactly the requested times
    for r in log.records:
        assert set(theory.RECORD_KEYS) <= set(r) and "warnings" not in r
        assert r["lam"] == 0.0 and r["class_counts"] == [N] * C and r["snr_support"] == "full"
        # the least-squares classifier at lambda = 0: on the central path (math §4)
        assert r["l_perp_lam0"] <= 1e-12 * r["loss"]
        assert r["tr_sigma_w"] == pytest.approx(P, rel=1e-9)  # Sigma_W = I_p on X_set (math §5.2)


def test_rung_a_terms_equal_the_closed_forms_at_the_logged_snr(rung_a):
    """l_nc1_lam0, l_nc23_lam0, l_central_lam0 = the math §3.4 sums at the logged omega_j, to 1e-9 relative
    (the identity is exact; the two sides are computed along different float64 routes, ~1e-15 apart)."""
    _, log = rung_a
    for r in log.records:
        w = np.asarray(r["snr_singular_values"])
        for key, law in (("l_nc1_lam0", "l_nc1"), ("l_nc23_lam0", "l_nc23"), ("l_central_lam0", "l_central")):
            closed = float(np.sum(theory.laws.numeric(law)(w, C)))
            assert r[key] == pytest.approx(closed, rel=1e-9), key


def test_rung_a_snr_follows_the_section_6_3_closed_form(rung_a):
    """The closed form's left side G(w) - t (theory.laws "closed_form_lhs") is constant along the flow.  Its drift
    divided by w dG/dw = w / omega_rhs(w) is the relative error of omega to first order; measured 3.9e-12 (the
    solver runs at rtol 1e-12), bound 1e-9."""
    _, log = rung_a
    t = np.array([r["flow_time"] for r in log.records])
    w = np.array([r["snr_singular_values"] for r in log.records])
    G = theory.laws.numeric("closed_form_lhs")(w, N, C, KAPPA) - t[:, None]
    rel = np.abs(G - G[0]) * theory.laws.numeric("omega_rhs")(w, N, C, KAPPA) / w  # dG/dw = 1 / omega_rhs
    assert rel.max() < 1e-9
    assert w[-1, -1] > 2 * w[0, -1]  # the flow moved: the check is not on a standing point


def test_every_central_path_flow_writes_its_own_snr(routes, tmp_path):
    """reduced (features reconstructed from omega), matrix (from S) and features: the record's SNR singular values
    are the trajectory's, L_perp at lambda = 0 vanishes, and the three flows agree (the shared fixture)."""
    logs = {}
    for flow, traj in routes.items():
        logs[flow] = read_run_log(simulate.write_run_dir(traj, tmp_path / flow))
        snr = np.array([r["snr_singular_values"] for r in logs[flow].records])
        np.testing.assert_allclose(snr, traj.omega, rtol=1e-9)
        assert max(r["l_perp_lam0"] / r["loss"] for r in logs[flow].records) < 1e-12
        assert logs[flow].config["config"]["ladder_rung"] == "a"
    for key in ("l_central_lam0", "nc1", "nc3"):
        a = [r[key] for r in logs["reduced"].records]
        for flow in ("matrix", "features"):
            np.testing.assert_allclose([r[key] for r in logs[flow].records], a, rtol=1e-6, err_msg=f"{flow} {key}")


def test_free_flow_run_dir_and_collapse_through_the_cli(tmp_path, capsys):
    """Rung (b) with a strong feature decay: the within-class deviations collapse (Sigma_W -> 0), so the SNR becomes
    undefined.  The CLI exits 0, prints 'undefined' where it cannot give a number and one note saying why; the run
    directory holds the flow's own (W, b) and lam, null SNR keys with a warning, and is read without error."""
    out = tmp_path / "free"
    rc = main(["--num-classes", str(C), "--per-class", str(N), "--dim", str(P), "--t-max", "1000", "--flow", "free",
               "--lam", "1e-3", "--lam-h", "1", "--num-times", "25", "--no-figures", "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "omega=undefined" in captured.out
    notes = captured.err.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith("note: the SNR singular values are undefined from t = ")
    log = read_run_log(out)
    cfg = log.config["config"]
    assert (cfg["model"], cfg["ladder_rung"], cfg["lam"], cfg["lam_h"]) == ("flow:free", "b", 1e-3, 1.0)
    first, last = log.records[0], log.records[-1]
    assert first["lam"] == 1e-3 and first["central_path_distance"] > 0  # the flow's own classifier
    assert first["snr_support"] == "full" and last["snr_singular_values"] is None and last["snr_rank"] is None
    assert any("Sigma_W is zero" in w for w in last["warnings"])
    assert last["loss"] is not None and last["l_nc1_lam0"] is not None  # what is defined is still there
    data = np.load(out / "trajectory.npz")
    assert np.isnan(data["omega"][-1]).all() and np.isfinite(data["omega"][0]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_omega"] == [None] * (C - 1) and len(summary["notes"]) == 1


@pytest.mark.parametrize("kw, message", [
    (dict(dim=40), r"dim=40 > C\(N-1\) = 20: Sigma_W would be singular"),
    (dict(class_counts=[6, 6, 5, 6]), "class_counts .* are unequal"),
    (dict(class_counts=[6, 6, 6]), "class_counts must be a list of num_classes = 4 integers"),
    (dict(class_counts=[5, 5, 5, 5]), "per_class=6 disagrees with class_counts"),
])
def test_bad_sizes_raise_naming_the_argument(kw, message):
    args = dict(num_classes=C, per_class=N, dim=P, t_max=10.0, num_times=3) | kw
    with pytest.raises(ValueError, match=message):
        simulate.simulate("features", **args)


def test_equal_class_counts_are_per_class(rung_a):
    traj, log = rung_a
    a = simulate.simulate("reduced", num_classes=C, class_counts=[N] * C, dim=P, t_max=2000.0, seed=3,
                          num_times=NUM_TIMES, kappa=KAPPA, options=ROUTES_TOL)
    np.testing.assert_array_equal(a.omega, traj.omega)
    assert log.config["config"]["class_counts"] == [N] * C


@pytest.mark.parametrize("argv, message", [
    (["--per-class", "6", "--dim", "40"], "argument --dim: must be <= C(N-1) = 20, got 40: every flow starts on X_set"),
    (["--class-counts", "6,6,5,6", "--dim", "9"], "argument --class-counts: class_counts [6, 6, 5, 6] are unequal"),
    (["--class-counts", "6,x", "--dim", "9"], "argument --class-counts: expected comma-separated integers"),
    (["--dim", "9"], "one of the arguments --per-class --class-counts is required"),
    # equal counts are per_class: the balanced bound C(N-1), not n - C's wording
    (["--class-counts", "2,2,2,2", "--dim", "9"], "argument --dim: must be <= C(N-1) = 4, got 9"),
])
def test_cli_bad_sizes_one_line_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["--num-classes", "4", "--t-max", "10", "--out", str(tmp_path / "o")] + argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_ensemble_has_no_run_dir(tmp_path):
    # the ensemble of tests/simulate/test_inputs_cli.py::test_cli_in_process (its compiled program)
    traj = simulate.simulate("features", num_classes=C, per_class=N, dim=P, t_max=1000.0, seed=1, num_times=25,
                             ensemble=2)
    with pytest.raises(ValueError, match="traj: a run directory holds one trajectory"):
        simulate.write_run_dir(traj, tmp_path / "e")
    assert not (tmp_path / "e").exists()
    assert traj.metrics["nc1"].shape == (2, 25)
    one = simulate.simulate("features", num_classes=C, per_class=N, dim=P, t_max=10.0, num_times=3)
    assert list(traj.metrics) == list(one.metrics)  # an ensemble's metrics in a single run's order


def test_a_whole_float_per_class_is_an_integer_count(tmp_path):
    traj = simulate.simulate("reduced", num_classes=3, per_class=4.0, dim=2, t_max=10.0, num_times=3)
    config = json.loads((simulate.write_run_dir(traj, tmp_path / "r") / "config.json").read_text())["config"]
    assert config["class_counts"] == [4, 4, 4] and all(type(c) is int for c in traj.params["class_counts"])


def test_free_flow_takes_unequal_class_counts(tmp_path):
    """A real run's unequal class counts: the free flow (rung (b)) starts on X_set with the count-weighted global
    mean (Sigma_W = I_p, mu_G = 0, math §3.3b, §5.2) and writes the counts; per_class is then null."""
    counts = [5, 7, 6, 6]  # n = C N = 24 and 25 saved times: the free-flow program test_contrast.py compiled
    traj = simulate.simulate("free", num_classes=C, class_counts=counts, dim=P, t_max=1.0, num_times=25)
    log = read_run_log(simulate.write_run_dir(traj, tmp_path / "imb"))
    cfg = log.config["config"]
    assert cfg["class_counts"] == counts and cfg["per_class"] is None and cfg["ladder_rung"] == "b"
    first = log.records[0]
    assert first["class_counts"] == counts and first["train_count"] == sum(counts)
    assert first["tr_sigma_w"] == pytest.approx(P, rel=1e-9)
    X0 = traj.states.features[0]
    assert np.abs(X0.mean(axis=0)).max() < 1e-12  # mu_G = 0: the sample mean, weighted by the counts
