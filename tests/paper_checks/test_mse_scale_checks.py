"""Checks on runs trained with Hui & Belkin's rescaled MSE (math §3.6): the claims that rest on the plain-MSE
theory are n/a with the reason (NC1-NC4 and the decomposition identity still apply); the grid passes the option on."""

from __future__ import annotations

import json

import pytest

from paper_checks.claims import empirical_claims
from paper_checks.claims.grid import GridEvidence, GridRun
from paper_checks.synthetic import synthetic_metrics_log

#: The claims that call RunEvidence.need_mse (directly or through the comparison).
MSE_THEORY = ("empirical.l_perp_negligible", "empirical.snr_follows_closed_form", "empirical.snr_ratio_toward_1",
              "empirical.decomposition_tracks_theory", "empirical.forward_prediction")


@pytest.fixture(scope="module")
def log():
    return synthetic_metrics_log(C=6, epochs=40, scale=20.0, noise=0.0, zero_error_epoch=5, seed=4)[0]


def _claims(records, mse_scale):
    """The claims without the comparison (slow to fit): the comparison claims check the loss first
    (``need_comparison`` calls ``need_mse``), so their reason says which of the two made them n/a."""
    config = {"config": {"loss": "mse", **({"mse_scale": mse_scale} if mse_scale is not None else {})}}
    return {c.id: c for c in empirical_claims(records, None, config=config)}


def test_plain_scale_keeps_the_mse_claims(log):
    for scale in (None, [1.0, 1.0]):
        by = _claims(log, scale)
        assert by["empirical.l_perp_negligible"].status == "pass", scale
        for cid in MSE_THEORY[1:]:  # n/a only for want of the comparison, not for the loss
            assert by[cid].status == "n/a" and "no comparison" in by[cid].measured["reason"], (scale, cid)


@pytest.mark.parametrize("scale, words", [([3.0, 1.0], "k = 3"), ([15.0, 30.0], "k = 15"), ([1.0, 5.0], "M = 5")])
def test_rescaled_mse_makes_the_plain_mse_claims_not_applicable(log, scale, words):
    by = _claims(log, scale)
    for cid in MSE_THEORY:
        assert by[cid].status == "n/a", cid
        reason = by[cid].measured["reason"]
        assert words in reason and "math §3.6" in reason, reason
    assert by["empirical.nc1_decreases"].status == "pass"  # NC1-NC4 still apply
    assert by["empirical.decomposition_identity"].status == "pass"  # an identity of the logged terms


def test_grid_perp_claim_leaves_rescaled_runs_out(log):
    from paper_checks.claims.grid import _perp_across

    ev = GridEvidence([GridRun("g", "mlp", "mse", log), GridRun("g", "mlp2", "mse", log, (2.0, 1.0))])
    ok, measured = _perp_across(ev)
    assert ok and list(measured["per_run"]) == ["g-mlp-mse"]
    assert "rescaled MSE" in measured["left_out"]["g-mlp2-mse"]


def test_grid_passes_mse_scale_to_its_mse_runs_only(tmp_path):
    from paper_checks.grid import GridOptions, plan_grid

    opts = GridOptions(datasets=["digits"], models=["mlp"], losses=["mse", "ce"], out=str(tmp_path / "g"),
                       epochs=2, mse_scale=[2.0, 3.0])
    configs = {p.loss: p.config for p in plan_grid(opts)}
    assert configs["mse"].mse_scale == (2.0, 3.0) and configs["ce"].mse_scale == (1.0, 1.0)


@pytest.mark.parametrize("text, words", [("2", "cannot parse --mse-scale"), ("0,1", "k must be"),
                                         ("1,-1", "M must be")])
def test_grid_bad_mse_scale_one_line_exit_2(tmp_path, capsys, text, words):
    from paper_checks.grid import main

    assert main(["--datasets", "digits", "--models", "mlp", f"--mse-scale={text}", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_flow_time_and_ladder_are_not_applicable_on_a_rescaled_run(log, tmp_path):
    """The flow time of math §6.5 (alpha / (1 - mu) * lr_weighted_steps) is the plain MSE's: a rescaled run gets
    none, with the reason, and no ladder (its rungs train the plain MSE)."""
    from paper_checks.compare import resolve_clock
    from paper_checks.ladder import ladder_beside

    records = [{**r, "lr_weighted_steps": 0.1 * r["epoch"]} for r in log]
    plain = {"config": {"loss": "mse", "momentum": 0.9, "loss_reduction": "mean"}}
    assert resolve_clock(records, plain, "auto", 6, 10.0).flow is not None
    scaled = {"config": {**plain["config"], "mse_scale": [1.0, 4.0]}}
    clock = resolve_clock(records, scaled, "auto", 6, 10.0)
    assert clock.flow is None and "mse_scale 1,4" in clock.flow_how and clock.axis == "lr_weighted_steps"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(scaled))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": r["epoch"]}) + "\n" for r in records))
    said: list[str] = []
    assert ladder_beside(run, tmp_path / "ladder", log=said.append) is None
    assert "rescaled" in said[0] and not (tmp_path / "ladder").exists()
