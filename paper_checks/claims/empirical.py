"""Empirical claims: the experimental statements of math §4 and §7.2 on one training run's log, and the
predicted-against-observed comparison of :mod:`paper_checks.compare`.

The terminal phase starts at the first measured epoch from which the training error stays at or below
``tpt_threshold`` (math §7.2; 0 = exactly zero, the paper's definition); a claim that needs it states the
threshold and the samples still misfit, and is ``n/a`` when the run never enters it.  Two claims are exact
identities on the run's numbers (``verification``): the decomposition (math §3.2, §3.3b) and the math §3.4
closed forms (balanced classes only; ``n/a`` on imbalanced ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np

from empirical.runs import TPT_THRESHOLD_DEFAULT, misfit_count, terminal_phase_start

from ..compare import Comparison, QuantityComparison, _spearman, balance, class_counts, column, run_loss, run_mse_scale
from .registry import Claim, NotApplicable, claim, evaluate
from .tolerances import TOLERANCES as tol

T = TypeVar("T")

__all__ = ["RunEvidence", "empirical_claims", "perp_ratios"]

#: The three readings of lambda under which the decomposition is logged (math §8 item 2): key suffix, label.
LAMBDAS = (("", "optimiser C*wd/2"), ("_notebook", "notebook wd/2"), ("_lam0", "lambda = 0"))


@dataclass
class RunEvidence:
    """One run's log (``metrics.jsonl`` records sorted by epoch), its config and its comparison with the theory.

    ``comparison`` is None when it could not be made; ``comparison_error`` then says why (the comparison
    claims are ``n/a`` with that reason).
    """

    records: Sequence[dict[str, Any]]
    comparison: Comparison | None = None
    config: dict[str, Any] | None = None
    tpt_threshold: float = TPT_THRESHOLD_DEFAULT
    comparison_error: str | None = None

    def column(self, key: str) -> np.ndarray:
        return column(self.records, key)

    @property
    def train_count(self) -> int | None:
        """Training-set size: the log's ``train_count``, else ``per_class * C`` from the config."""
        for r in self.records:
            if isinstance(r.get("train_count"), int):
                return int(r["train_count"])
        counts = class_counts(self.records)
        if counts is not None:
            return int(sum(counts))
        per_class, C = (self.config or {}).get("config", {}).get("per_class"), self.num_classes
        return int(per_class) * C if per_class and C else None

    @property
    def num_classes(self) -> int | None:
        for r in self.records:
            sv = r.get("snr_singular_values")
            if sv:
                return len(sv) + 1
        n = (self.config or {}).get("config", {}).get("num_classes")
        return int(n) if n else None

    def tpt(self) -> int | None:
        return terminal_phase_start(list(self.records), self.tpt_threshold)

    def tpt_slice(self) -> slice:
        """The records of the terminal phase; :class:`NotApplicable` when the run has none (or one epoch of it)."""
        k = self.tpt()
        err = self.column("train_error")
        if k is None:
            fin = err[np.isfinite(err)]
            raise NotApplicable(
                f"no terminal phase: the training error never stays <= {self.tpt_threshold:g} to the end of the run "
                f"(final {fin[-1]:.3g}, {self._misfit_words(-1)})" if fin.size else
                "no terminal phase: the log has no training error")
        if k >= len(self.records) - 1:
            words = "training error zero" if self.tpt_threshold == 0 else f"training error <= {self.tpt_threshold:g}"
            raise NotApplicable(f"{words} only at the last measured epoch: terminal phase too short")
        return slice(k, None)

    def misfit(self, i: int) -> int | None:
        return misfit_count(self.records[i], self.train_count)

    def _misfit_words(self, i: int) -> str:
        k = self.misfit(i)
        return "number of misfit samples unknown (no train_count)" if k is None else f"{k} samples misfit"

    def tpt_info(self) -> dict[str, Any]:
        """The threshold, the start epoch and the misfit training samples there and at the end."""
        sl = self.tpt_slice()
        ep = self.column("epoch")
        return {"tpt_threshold": self.tpt_threshold, "tpt_start_epoch": int(ep[sl][0]), "last_epoch": int(ep[-1]),
                "misfit_at_tpt_start": self.misfit(sl.start), "misfit_final": self.misfit(-1),
                "train_count": self.train_count}

    def need_mse(self) -> None:
        """:class:`NotApplicable` unless the run was trained with the plain MSE loss, which the theory is about
        (a rescaled MSE, ``mse_scale != (1, 1)``, is outside it: math §3.6)."""
        loss = run_loss(self.config or {})
        if loss != "mse":
            raise NotApplicable(
                f"the run's loss is {loss}: this claim comes from the MSE theory (math §4, §6), which says "
                "nothing about it (the NC1-NC4 claims still apply)" if loss != "unknown" else
                "the run's loss is unknown (not recorded: pass NCMonitor(..., loss='mse')): this claim comes from the "
                "MSE theory (math §4, §6)")
        k, M = run_mse_scale(self.config or {})
        if k != 1.0:
            raise NotApplicable(
                f"the run's MSE is rescaled with k = {k:g} (mse_scale {k:g},{M:g}): a weighted least squares whose "
                "rows have their own normal matrices, outside the plain-MSE theory this claim comes from (math §3.6; "
                "the NC1-NC4 claims still apply)")
        if M != 1.0:
            raise NotApplicable(
                f"the run's MSE targets are M e_c with M = {M:g} (mse_scale {k:g},{M:g}): the logged decomposition "
                "and the flow time of math §6.5 assume M = 1 (its W~_LS is M times the logged one and its "
                "central-path flow runs M^2 faster, math §3.6; the NC1-NC4 claims still apply)")

    def need_comparison(self) -> Comparison:
        self.need_mse()
        if self.comparison is None:
            raise NotApplicable(f"no comparison with the theory: {self.comparison_error or 'not run'}")
        return self.comparison

    def need_fit(self) -> Comparison:
        """The comparison, with a fit from at least ``min_fit_epochs`` measured epochs (else NotApplicable)."""
        cmp = self.need_comparison()
        if cmp.fit is None:
            reason = cmp.unavailable.get("SNR fit", "no fit")
            raise NotApplicable(f"no fit of the closed form: {reason}")
        window = _given(cmp.fit_window, "fit window")
        k = len(window["epochs"])
        if k < tol["min_fit_epochs"]:
            raise NotApplicable(f"the fit window has {k} measured epochs, fewer than the {tol['min_fit_epochs']} a "
                                f"fit needs to be a verdict ({window['reason']})")
        return cmp


# ----------------------------------------------------------------------------- terminal phase and NC1-NC4


def _tpt_headline(m: dict) -> str:
    if m.get("terminal_phase_start_epoch") is None:
        return (f"no terminal phase at threshold {m['tpt_threshold']:g}: final training error "
                f"{m['final_train_error']:.3g} ({m['misfit_final']} samples misfit)")
    phase = "zero training error" if m["tpt_threshold"] == 0 else f"training error <= {m['tpt_threshold']:g}"
    return (f"{phase} from epoch {m['terminal_phase_start_epoch']} to {m['last_epoch']} "
            f"({m['misfit_final']} samples misfit "
            f"at the end); final test error {m['final_test_error']:.4f}")


@claim("empirical.terminal_phase_reached",
       "Training reaches (nearly) zero training error and continues into the terminal phase",
       "math §7.2 (abstract: NC emerges in the terminal phase of training)", "exists, before the last measured epoch",
       check="terminal phase start: the first measured epoch from which the training error stays at or below the "
             "threshold (tpt_threshold; 0 = exactly zero) to the end of the run",
       headline=_tpt_headline)
def _terminal_phase(ev: RunEvidence):
    err = ev.column("train_error")
    ep = ev.column("epoch")
    if not np.any(np.isfinite(err)):
        raise NotApplicable("the log has no training error")
    k = ev.tpt()
    return k is not None and k < len(ev.records) - 1, {
        "tpt_threshold": ev.tpt_threshold,
        "terminal_phase_start_epoch": int(ep[k]) if k is not None else None,
        "misfit_at_tpt_start": ev.misfit(k) if k is not None else None,
        "misfit_final": ev.misfit(-1), "train_count": ev.train_count,
        "min_train_error": float(np.nanmin(err)),
        "final_train_error": float(err[-1]), "final_test_error": float(ev.column("test_error")[-1]),
        "measured_epochs": len(ev.records), "last_epoch": int(ep[-1]),
    }


def _nc_headline(m: dict) -> str:
    keys = [k for k, v in m.items() if isinstance(v, dict) and "at_tpt_start" in v]
    return ("; ".join(f"{k}: {m[k]['at_tpt_start']:.3g} -> {m[k]['final']:.3g}" for k in keys)
            + f" (epochs {m['tpt_start_epoch']} -> {m['last_epoch']}, threshold {m['tpt_threshold']:g}, "
              f"{m['misfit_final']} misfit)")


def _decrease(ev: RunEvidence, key: str, *, strict: bool):
    info = ev.tpt_info()
    sl = ev.tpt_slice()
    ep = ev.column("epoch")[sl]
    v = ev.column(key)[sl]
    if not np.all(np.isfinite(v)):
        raise NotApplicable(f"{key} missing or non-finite in the terminal phase "
                            f"({int(np.sum(~np.isfinite(v)))} of {v.size} epochs)")
    ok = bool(v[-1] < v[0]) if strict else bool(v[-1] <= v[0])
    info[key] = {"at_tpt_start": float(v[0]), "final": float(v[-1]),
                 "final/start": float(v[-1] / v[0]) if v[0] != 0 else None, "spearman_vs_epoch": _spearman(ep, v)}
    return ok, info


for _cid, _key, _statement, _strict in [
    ("empirical.nc1_decreases", "nc1", "NC1 (within-class variability, (1/C)Tr(Sigma_W Sigma_B^+)) decreases "
     "through the terminal phase", True),
    ("empirical.nc2_equinorm_means_decreases", "nc2_equinorm_means",
     "NC2 equinorm of the class means (std/mean of ||mu_c - mu_G||) decreases through the terminal phase", True),
    ("empirical.nc2_equinorm_classifiers_decreases", "nc2_equinorm_classifiers",
     "NC2 equinorm of the classifiers (std/mean of ||w_c||) decreases through the terminal phase", True),
    ("empirical.nc2_maxangle_means_decreases", "nc2_maxangle_means",
     "NC2 maximal-angle of the class means (avg |cos + 1/(C-1)|) decreases through the terminal phase", True),
    ("empirical.nc2_maxangle_classifiers_decreases", "nc2_maxangle_classifiers",
     "NC2 maximal-angle of the classifiers (avg |cos + 1/(C-1)|) decreases through the terminal phase", True),
    ("empirical.nc3_decreases", "nc3", "NC3 (self-duality distance) decreases through the terminal phase", True),
    ("empirical.nc4_decreases", "nc4", "NC4 (NCC disagreement) does not increase through the terminal phase", False),
]:
    claim(_cid, _statement, "math §2.1, §7.2", "final < start" if _strict else "final <= start",
          check="value at the last measured epoch vs at the start of the terminal phase (threshold stated; Spearman "
                "correlation with epoch reported)",
          headline=_nc_headline)(partial(_decrease, key=_key, strict=_strict))


# ----------------------------------------------------------------------------- proximity to the central path


def perp_ratios(records: Sequence[dict[str, Any]], rows: slice | np.ndarray) -> dict[str, dict[str, float] | None]:
    """``L_perp / (L_NC1 + L_NC2/3)`` over ``rows`` at the three lambdas of math §8 item 2.

    Keys: ``"optimiser C*wd/2"`` (the logged ``l_*``), ``"notebook wd/2"`` (``l_*_notebook``) and
    ``"lambda = 0"`` (``l_*_lam0``); values ``{"max", "median", "final"}``, or None when the log lacks that lambda.
    """
    out: dict[str, dict[str, float] | None] = {}
    for suffix, label in LAMBDAS:
        lp, l1, l23 = (column(records, f"{k}{suffix}")[rows] for k in ("l_perp", "l_nc1", "l_nc23"))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = lp / (l1 + l23)
        r = r[np.isfinite(r)]
        out[label] = None if r.size == 0 else {"max": float(np.max(r)), "median": float(np.median(r)),
                                                "final": float(r[-1]), "epochs": int(r.size)}
    return out


def _perp_ratios_before_first_decay(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float] | None]:
    """:func:`perp_ratios` over the rows measured after epoch 0 while the learning rate is still its initial
    (largest) value; ``{}`` when there are none (or no learning rate is logged)."""
    lr = column(records, "lr")
    pre = (lr == np.nanmax(lr)) & (column(records, "epoch") > 0) if np.any(np.isfinite(lr)) else np.array([])
    return perp_ratios(records, pre) if np.any(pre) else {}


def _perp_headline(m: dict) -> str:
    tp = m["terminal_phase"]
    parts = [f"{k}: max {v['max']:.3g}, median {v['median']:.3g}" for k, v in tp.items() if v]
    pre = m.get("before_first_lr_decay", {}).get("optimiser C*wd/2")
    return ("L_perp/(L_NC1+L_NC2/3) in the terminal phase at " + "; ".join(parts)
            + (f"; before the first lr decay (C*wd/2) median {pre['median']:.3g}, max {pre['max']:.3g}" if pre else ""))


@claim("empirical.l_perp_negligible",
       "The excess loss L_LS^perp (term B) is negligible against L_NC1 + L_NC2/3 (term A): "
       "the network stays close to the central path",
       "math §4 (abstract: term (B) negligible during training)",
       f"max ratio <= {tol['perp_ratio_max']:g} in the terminal phase at the optimiser's lambda = C*wd/2",
       check="ratio l_perp / (l_nc1 + l_nc23) at every measured epoch of the terminal phase, at the optimiser's "
             "lambda (decides), at the notebook's wd/2 and at 0, and before the first learning-rate decay (reported): "
             "'negligible' depends on lambda and on the phase",
       headline=_perp_headline)
def _perp(ev: RunEvidence):
    ev.need_mse()
    info = ev.tpt_info()
    sl = ev.tpt_slice()
    tp = perp_ratios(ev.records, sl)
    main = tp["optimiser C*wd/2"]
    if main is None:
        raise NotApplicable("l_perp / l_nc1 / l_nc23 missing in the terminal phase")
    return main["max"] <= tol["perp_ratio_max"], {
        **info,
        "terminal_phase": tp,
        "before_first_lr_decay": _perp_ratios_before_first_decay(ev.records),
        # the keys of earlier reports, at the optimiser's lambda
        "max_ratio_terminal_phase": main["max"], "median_ratio_terminal_phase": main["median"],
        "final_ratio": main["final"],
    }


@claim("empirical.decomposition_identity",
       "L = L_NC1 + L_NC2/3 + L_LS^perp holds exactly for the network's (W, b, H)",
       "math §3.2, §3.3b; claim 1", f"<= {tol['identity_rel']:g} (rounding)",
       check="|loss - (l_nc1 + l_nc23 + l_perp)| / loss at every measured epoch (float64 statistics; exact for any "
             "class counts by math §3.3b)",
       verification=True, headline=lambda m: f"max |L - sum of terms|/L {m['max_rel_residual']:.2e}")
def _identity(ev: RunEvidence):
    loss = ev.column("loss")
    parts = ev.column("l_nc1") + ev.column("l_nc23") + ev.column("l_perp")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(loss - parts) / np.abs(loss)
    ok_rows = np.isfinite(rel)
    if not np.any(ok_rows):
        raise NotApplicable("the log has no epoch with the loss and all three decomposition terms")
    measured = {"max_rel_residual": float(np.max(rel[ok_rows])), "epochs": int(np.sum(ok_rows)),
                "epochs_without_terms": int(np.sum(~ok_rows))}
    ir = ev.column("identity_residual")
    if np.any(np.isfinite(ir)):
        measured["max_logged_identity_residual"] = float(np.nanmax(np.abs(ir)))
    return measured["max_rel_residual"] <= tol["identity_rel"], measured


# ----------------------------------------------------------------------------- theory against observation


@claim("empirical.snr_follows_closed_form",
       "The SNR singular values follow the closed-form central-path dynamics "
       "c1 log w + c2 w^2 + c3 w^4 = a_j + t under one monotone time map shared by all j",
       "math §6.3 (applied to a trained network: a hypothesis, the theory is for unconstrained features)",
       f"min_j R^2 >= {tol['snr_fit_r2_min']:g}",
       check="least-squares fit G(omega_j(T)) = b_j + s T^beta over the terminal phase; R^2 of log omega per j",
       headline=lambda m: (f"min R^2 {m['r2_log_omega_min']:.3f}, median {m['r2_log_omega_median']:.3f} (linear map: "
                           f"min {m['linear_map_r2_min']:.3f}); {m['time_map']}"))
def _snr_fit(ev: RunEvidence):
    cmp = ev.need_fit()
    f = _given(cmp.fit, "fit").to_dict()
    r2 = [v for v in f["r2_log_omega"] if v is not None]
    if not r2:
        raise NotApplicable("no singular value could be fitted (none positive at every fitted epoch)")
    return min(r2) >= tol["snr_fit_r2_min"], {
        "time_map": f"G(omega_j) = b_j + s*{f['time_key']}^beta, s={f['scale_s']:.4g}, beta={f['beta']:.4g}",
        "r2_log_omega_min": min(r2), "r2_log_omega_median": float(np.median(r2)),
        "rmse_log_omega": f["rmse_log_omega"], "fit_window": _given(cmp.fit_window, "fit window")["reason"],
        "linear_map_r2_min": cmp.fits["linear"].to_dict()["r2_log_omega_min"],
    }


@claim("empirical.snr_ratio_toward_1",
       "The observed max/min ratio of the SNR singular values moves toward 1 (as the theory predicts)",
       "math §6.4 item 2", "last-quarter median < first-quarter median",
       check="observed max_j omega_j / min_j omega_j: median over the last quarter of the fit window vs the "
             "first quarter (Spearman correlation with time reported)",
       headline=lambda m: (
           f"max/min observed {m['observed_first_quarter_median']:.3g} -> {m['observed_last_quarter_median']:.3g} "
           f"(quarter medians; first/last epoch {m['observed_first']:.3g} -> {m['observed_last']:.3g}), "
           f"fitted {m['predicted_first']:.3g} -> {m['predicted_last']:.3g}"))
def _ratio(ev: RunEvidence):
    r = _given(ev.need_fit().snr_ratio, "max/min ratio comparison")
    return r.observed_moves_toward_1, r


@claim("empirical.central_path_closed_forms",
       "On the network's real features, the lambda = 0 terms L_NC1, L_NC2/3 and L_central equal the "
       "math §3.4 closed forms in the measured SNR singular values (balanced classes)",
       "math §3.4", f"max relative error <= {tol['closed_form_on_features_rel']:g} (float64, condition of Sigma_T)",
       check="sum_j theory.laws.{l_nc1,l_nc23,l_central}(omega_j) against the logged l_*_lam0 at every fitted epoch",
       verification=True,
       headline=lambda m: ", ".join(f"{k} {v['max_rel_error']:.2e}" for k, v in m.items() if isinstance(v, dict)))
def _closed_forms(ev: RunEvidence):
    if balance(ev.records, ev.config or {}) is False:
        counts = class_counts(ev.records)
        raise NotApplicable(
            "imbalanced classes (counts " + (f"{min(counts)}..{max(counts)}" if counts else "unequal") + "): the "
            "math §3.4 closed forms assume balanced classes; on imbalanced ones the lambda = 0 terms depend on the "
            "class weights through the singular vectors too, so no law in the singular values alone applies "
            "(the decomposition identity, math §3.3b, is checked instead)")
    cmp = ev.need_comparison()
    out, ok = {}, True
    for key in ("l_nc1", "l_nc23", "l_central"):
        worst = _at_lambda_zero(cmp, key).rel_error_at_measured_snr.max
        out[key] = {"max_rel_error": worst}
        ok &= worst is not None and worst <= tol["closed_form_on_features_rel"]
    return ok, out


@claim("empirical.decomposition_tracks_theory",
       "L_NC1 and L_NC2/3 predicted from the fitted SNR dynamics (math §3.4 laws, lambda = 0) track the "
       "measured lambda = 0 terms (derived from the SNR fit, not independent: it follows from "
       "empirical.snr_follows_closed_form together with empirical.central_path_closed_forms)",
       "math §3.4, §6.3", f"median relative error <= {tol['decomposition_fit_rel_median']:g}",
       check="relative error of sum_j l_nc1(omega_j(T)), sum_j l_nc23(omega_j(T)) against the "
             "measured terms at lambda = 0",
       headline=lambda m: (
           f"median rel error L_NC1 {m['l_nc1']['median_rel_error_fit']:.3g}, L_NC2/3 "
           f"{m['l_nc23']['median_rel_error_fit']:.3g} (laws at measured SNR: "
           f"{m['l_nc1']['median_rel_error_at_measured_snr']:.3g}, "
           f"{m['l_nc23']['median_rel_error_at_measured_snr']:.3g}; "
           f"lambda {m['lambda_range']})"))
def _decomposition_fit(ev: RunEvidence):
    cmp = ev.need_fit()
    out: dict[str, Any] = {}
    ok = True
    for key in ("l_nc1", "l_nc23"):
        q = _at_lambda_zero(cmp, key)
        med = q.rel_error_fit.median
        out[key] = {"median_rel_error_fit": med, "median_rel_error_at_measured_snr": q.rel_error_at_measured_snr.median,
                    "max_rel_error_fit": q.rel_error_fit.max}
        if q.rel_error_at_measured_snr_notebook_lambda is not None:
            out[key]["median_rel_error_at_measured_snr_vs_notebook_lambda_terms"] = \
                q.rel_error_at_measured_snr_notebook_lambda.median
        ok &= med is not None and med <= tol["decomposition_fit_rel_median"]
    out["lambda_range"] = cmp.lambda_range
    r2 = _given(cmp.fit, "fit").to_dict()["r2_log_omega_min"]
    out["fit_r2_log_omega_min"] = r2
    if r2 is None or r2 < 0:  # predictions from a fit worse than a constant are no evidence
        ok = False
        out["why_not"] = "the fit's min R^2 is negative: its predictions are no evidence"
    return ok, out


def _at_lambda_zero(cmp: Comparison, key: str) -> QuantityComparison:
    """The comparison of the measured ``key`` with its law; n/a when the log lacks it or has it only at the run's
    ridge (no ``key_lam0``, ``lam > 0``): the math §3.4 laws hold at lambda = 0 only."""
    q = cmp.quantities.get(key)
    if q is None:
        raise NotApplicable(f"the log has no {key} (l_*_lam0, or l_* with lam = 0)")
    if not q.at_lambda_zero:
        raise NotApplicable(f"the log's {key} is at the run's ridge, not at lambda = 0: the math §3.4 laws hold at "
                            "lambda = 0 only, so they are not held against it")
    return q


def _given(value: T | None, what: str) -> T:
    """``value``, which a comparison with a fit always holds; n/a naming ``what`` if it does not."""
    if value is None:
        raise NotApplicable(f"the comparison has no {what}")
    return value


@claim("empirical.forward_prediction",
       "Integrating the reduced SNR ODE forward from an early terminal-phase epoch (fitted time map) "
       "predicts the later SNR singular values",
       "math §6.2", f"median over epochs <= {tol['forward_rel_median']:g}",
       check="simulate.integrate_reduced from the measured omega at the start epoch; max_j relative error per epoch",
       headline=lambda m: (
           f"median rel error {m['snr_rel_error']['median']:.3g} from epoch {m['start_epoch']} (fitted time map)"
           + (f"; holdout forecast {m['holdout']['forward_ode_rel_error']['median']:.3g}"
              if isinstance(m.get("holdout"), dict) and "forward_ode_rel_error" in m["holdout"] else "")
           + (f"; on the derived flow clock {m['derived_clock']['snr_rel_error']['median']:.3g}"
              if isinstance(m.get("derived_clock"), dict) and m["derived_clock"]["snr_rel_error"]["median"] is not None
              else "")))
def _forward(ev: RunEvidence):
    cmp = ev.need_fit()
    fw = _given(cmp.forward, "forward prediction")
    med = fw.snr_rel_error.median
    if med is None:
        raise NotApplicable("the forward prediction has no finite error (no later measured epoch)")
    if fw.epochs < tol["min_fit_epochs"] - 1:
        raise NotApplicable(f"the forward prediction covers {fw.epochs} later measured epochs, fewer than "
                            f"{tol['min_fit_epochs'] - 1}")
    r2 = _given(cmp.fit, "fit").to_dict()["r2_log_omega_min"]
    measured = {**asdict(fw), "fit_r2_log_omega_min": r2,
                "derived_clock": asdict(cmp.forward_derived) if cmp.forward_derived is not None else
                cmp.unavailable.get("forward prediction on the derived clock"),
                "clock_ratio_s_N_over_kappa": cmp.clock_ratio()}
    if r2 is None or r2 < 0:  # the forward prediction runs on the fitted time map: worthless if the fit is
        measured["why_not"] = "the fitted time map's min R^2 is negative: a prediction on it is no evidence"
        return False, measured
    return med <= tol["forward_rel_median"], measured


def empirical_claims(records: Sequence[dict[str, Any]], comparison: Comparison | None = None, *,
                     config: dict[str, Any] | None = None, tpt_threshold: float = TPT_THRESHOLD_DEFAULT,
                     comparison_error: str | None = None) -> list[Claim]:
    """Every ``empirical.*`` claim on a run's log (records sorted by epoch) and its comparison with the theory."""
    ev = RunEvidence(records, comparison, config, tpt_threshold, comparison_error)
    return evaluate("empirical", ev)
