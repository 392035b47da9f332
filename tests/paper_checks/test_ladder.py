"""The calibration ladder (math §6.5, §7.4): compare validated on the exact flow, the training clock derived from
the optimiser, and the free flow on the central path."""

from __future__ import annotations

import numpy as np
import pytest

import simulate
import theory
from paper_checks.claims import empirical_claims
from paper_checks.compare import compare_records, read_log


@pytest.fixture(scope="module")
def rung_a(tmp_path_factory):
    """Rung (a): the exact projected flow (reduced ODE), C = 10 as the paper, written as a run directory."""
    traj = simulate.simulate(
        "reduced", num_classes=10, per_class=20, dim=16, t_max=2e5, num_times=30, seed=3, mean_scale=3.0
    )
    return simulate.write_run_dir(traj, tmp_path_factory.mktemp("rung_a"))


def test_compare_recovers_the_exact_flow_and_every_theory_claim_passes(rung_a):
    """On rung (a) the same compare code finds the closed form exactly: fit R^2 >= 0.999 and forward error <= 1e-3
    (the issue's acceptance numbers; measured ~1e-13, the ODE solver's tolerance being 1e-8), the derived clock
    s N / kappa = 1 (math §6.5), and every theory-against-training claim passes."""
    records, config = read_log(rung_a)
    cmp = compare_records(records, config=config)
    assert cmp.clock.axis == "flow_time" and "flow_time logged" in cmp.clock.how
    assert cmp.fit.to_dict()["r2_log_omega_min"] >= 0.999
    assert cmp.forward.snr_rel_error.max <= 1e-3
    assert cmp.forward_derived.snr_rel_error.max <= 1e-3  # no fitted time parameter at all
    assert cmp.clock_ratio() == pytest.approx(1.0, rel=1e-3)
    assert cmp.fits["power"].beta == pytest.approx(1.0, rel=1e-3)
    by = {c.id: c for c in empirical_claims(records, cmp, config=config)}
    theory_claims = ("snr_follows_closed_form", "snr_ratio_toward_1", "central_path_closed_forms",
                     "decomposition_tracks_theory", "forward_prediction", "l_perp_negligible",
                     "decomposition_identity")
    assert {k: by[f"empirical.{k}"].status for k in theory_claims} == {k: "pass" for k in theory_claims}


def test_sgd_steps_follow_the_free_flow_at_the_derived_clock():
    """Math §6.5 items 1-2: PyTorch SGD (momentum 0.9, weight decay) on nn.MSELoss() of the UFM from an initial
    (W, b, H) lands where the free gradient flow of the paper's loss does (simulate.integrate_free from the same
    point, lambda = C wd / 2 on W, b and lam_H = n lambda on H) at t = (2/C)/(1 - mu) * sum(lr).  The gap is first
    order in the step: halving lr (twice the steps) must roughly halve it; a wrong factor (e.g. no 1/(1-mu), or 2/C
    dropped) leaves an O(1) gap instead."""
    torch = pytest.importorskip("torch")
    C, N, p, wd, mu, t_end = 4, 5, 6, 5e-3, 0.9, 4.0
    n = C * N
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(C), N)
    H0, W0, b0 = rng.normal(size=(n, p)), rng.normal(size=(C, p)) * 0.3, rng.normal(size=C) * 0.1
    lam = theory.lam_from_weight_decay(wd, reduction="mean", num_classes=C)
    factor = theory.flow_time_per_lr(reduction="mean", num_classes=C, momentum=mu)
    assert factor == pytest.approx(2 / C / (1 - mu))
    Wt, bt, Ht = simulate.integrate_free(H0, labels, np.array([0.0, t_end]), C, W0, b0, lam=lam, lam_h=n * lam)
    flow_H = np.asarray(Ht[-1])

    def sgd(lr):
        H = torch.tensor(H0, requires_grad=True)
        lin = torch.nn.Linear(p, C).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W0))
            lin.bias.copy_(torch.tensor(b0))
        opt = torch.optim.SGD([H, *lin.parameters()], lr=lr, momentum=mu, weight_decay=wd)
        y = torch.nn.functional.one_hot(torch.tensor(labels), C).double()
        for _ in range(round(t_end / (factor * lr))):
            opt.zero_grad()
            torch.nn.functional.mse_loss(lin(H), y).backward()
            opt.step()
        return H.detach().numpy()

    gaps = [np.linalg.norm(sgd(lr) - flow_H) / np.linalg.norm(flow_H - H0) for lr in (0.02, 0.01)]
    assert gaps[1] < 0.1  # within 10% of the distance travelled
    assert 1.5 < gaps[0] / gaps[1] < 2.6  # first order in the step


def test_free_flow_on_the_central_path_grows_the_snr_exponentially():
    """Math §6.5 item 3: features moved by -grad L with W = W_LS recomputed every step (lambda = 0, Sigma_W = I at
    the start) keep K_j = s_j (C + omega_j^2) and grow omega_j = omega_j(0) exp(t / (n K_j)); explicit Euler with
    dt = 0.01 to t = 60, so the errors are O(dt) (measured 2e-6)."""
    C, N, p, dt, steps = 4, 6, 9, 1e-2, 6000
    n = C * N
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(C), N)
    Y = np.eye(C)[y]
    H = rng.normal(size=(n, p))
    mu = np.stack([H[y == c].mean(0) for c in range(C)])
    Z = H - mu[y]
    e, V = np.linalg.eigh(Z.T @ Z / n)
    H = Z @ V @ np.diag(e ** -0.5) @ V.T + 2.0 * (mu - mu.mean(0))[y]

    def snr_and_s(H):
        stats = theory.class_stats(H, y, C)
        w = np.asarray(theory.snr_singular_values(stats))
        Sw = np.asarray(stats.sigma_w)
        e, V = np.linalg.eigh(Sw)
        U = np.linalg.svd(V @ np.diag(e ** -0.5) @ V.T @ np.asarray(stats.centered_means).T)[0][:, : C - 1]
        return w, np.einsum("pj,pq,qj->j", U, Sw, U)

    w0, s0 = snr_and_s(H)
    K = s0 * (C + w0**2)
    for _ in range(steps):
        W, b = (np.asarray(a) for a in theory.least_squares_classifier(theory.class_stats(H, y, C), lam=0.0))
        H = H - dt * ((H @ W.T + b - Y) @ W) / n
    w, s = snr_and_s(H)
    t = dt * steps
    np.testing.assert_allclose(s * (C + w**2), K, rtol=1e-4)
    np.testing.assert_allclose(w, w0 * np.exp(t / (n * K)), rtol=1e-4)
    assert np.all(w > 1.15 * w0)  # it really grew (by 1.2x to 1.5x here)


def _run_config(**over):
    cfg = {"dataset": "digits", "lr": 0.4, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 128, "epochs": 10,
           "lr_milestones": [4, 8], "lr_gamma": 0.1, "per_class": 130, "loss": "mse", "seed": 0, "drop_last": True}
    return {"config": {**cfg, **over}}


def test_plan_copies_the_run_and_scales_large_runs():
    """The plan copies the run's optimiser and schedule; its flow time is (2/C)/(1-mu) * sum of the run's learning
    rates over its steps (math §6.5); a run above MAX_SAMPLES is scaled down (class proportions kept) and says so;
    a log without a trainer's config (NCMonitor, another tool) is refused with the keys it lacks."""
    from paper_checks.ladder import MAX_SAMPLES, plan_ladder

    records = [{"epoch": e, "class_counts": [130] * 10} for e in (0, 1, 2, 5, 9)]
    plan = plan_ladder(_run_config(), records)
    assert (plan.num_samples, plan.batch_size, plan.momentum, plan.scaled) == (1300, 128, 0.9, None)
    lr_sum = 10 * (4 * 0.4 + 4 * 0.04 + 2 * 0.004)  # 10 steps per epoch, two decays
    assert plan.flow_t_max == pytest.approx(2 / 10 / (1 - 0.9) * lr_sum)
    assert plan.lam == pytest.approx(10 * 5e-4 / 2) and plan.measure_epochs == [0, 1, 2, 5, 9]
    big = plan_ladder(_run_config(per_class=5000), [{"epoch": 0, "class_counts": [5000] * 10}])
    assert big.num_samples <= MAX_SAMPLES and "samples per class" in big.scaled
    with pytest.raises(ValueError, match="lacks dataset, lr, momentum"):
        plan_ladder({"config": {"loss": "mse"}}, records)


def test_ladder_beside_a_real_run_fills_the_report(tmp_path):
    """A tiny real run (gaussian MLP, 4 classes): the four rungs run as run directories, the rows carry the verdicts
    of the same compare, and the report puts the table and the sentence beside the run's claims."""
    from empirical.config import PRESETS, TrainConfig
    from empirical.training import train
    from paper_checks.ladder import ladder_beside
    from paper_checks.report import write_report

    run = train(TrainConfig(**{**PRESETS["gaussian-mlp"], "out": str(tmp_path / "run"), "epochs": 12,
                               "progress": False, "device": "cpu"}))
    ladder = ladder_beside(run, tmp_path / "ladder")
    # a flow rung may be reported as not run (bounded by FLOW_TIMEOUT_S on a slow machine), never lost silently
    ran = [r["rung"] for r in ladder["rows"]]
    assert ran[-3:] == ["c", "d", "e"] and set(ran) | set(ladder["skipped"]) == set("abcde"), (ran, ladder["skipped"])
    # rung (a), the reduced ODE, always runs (its deadlock is fixed; seconds); the free flow (b) is bounded in time
    for rung, why in ladder["skipped"].items():
        assert rung == "b" and "did not finish" in why and f"rung ({rung}) not run" in ladder["scaled"]
    for rung in ran[:-1]:
        assert read_log(tmp_path / "ladder" / rung)[0]  # each rung is a run directory in the run format
    # rung (a) spans this short run's flow time only (its SNR moves ~1e-3): the forward prediction is still exact;
    # R^2 and the clock ratio need a flow that moves (test_compare_recovers_the_exact_flow...)
    rows = {r["rung"]: r for r in ladder["rows"]}
    assert rows["a"]["forward_fitted"] <= 1e-3 and rows["a"]["forward_derived"] <= 1e-3
    assert "on this network the forward prediction misses by" in ladder["sentence"]
    # the caller's own comparison of the run (here on the epoch axis) is row (e), not a second one on "auto"
    assert rows["e"]["clock"] != "epoch"
    records, config = read_log(run)
    mine = compare_records(records, time="epoch", config=config)
    again = ladder_beside(run, tmp_path / "ladder",
                          checked=(records, config, mine, empirical_claims(records, mine, config=config)))
    assert again["rows"][-1]["rung"] == "e" and again["rows"][-1]["clock"] == "epoch"
    assert again["rows"][:-1] == ladder["rows"][:-1]  # rungs (a)-(d) reused, the same verdicts
    paths = write_report(tmp_path / "rep", [], ladder=ladder)
    assert "Theory against training, calibrated" in paths["html"].read_text()
    assert ladder["table_md"] in paths["md"].read_text()
    again = ladder_beside(run, tmp_path / "ladder")  # reused: same plan, same numbers
    first, second = ({r["rung"]: r for r in lad["rows"]} for lad in (ladder, again))
    assert second["c"]["forward_fitted"] == first["c"]["forward_fitted"]


def test_row_e_keeps_the_run_own_claims_when_its_comparison_failed(tmp_path):
    """When the run's own comparison raised (checked with comparison None), row (e) shows the run's own claim statuses
    and says that its numbers come from a comparison at default options, never silently a different verdict."""
    from paper_checks.claims import Claim
    from paper_checks.ladder import rung_row
    from paper_checks.synthetic import synthetic_metrics_log

    recs, _ = synthetic_metrics_log(C=4, epochs=30, scale=10.0, noise=0.0, zero_error_epoch=4, seed=1)
    own = [Claim(id="empirical.forward_prediction", statement="s", source="p", check="c", tolerance="-", status="n/a")]
    row = rung_row("e", tmp_path, checked=(recs, {}, None, own))
    assert row["claims"] == {"forward_prediction": "n/a"}
    assert "the run's own comparison failed" in row["clock"]
    mine = rung_row("e", tmp_path, checked=(recs, {}, compare_records(recs, time="epoch"), own))
    assert mine["clock"] == "epoch" and mine["claims"] == {"forward_prediction": "n/a"}
