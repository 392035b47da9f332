"""Figures of a ``Trajectory`` (matplotlib, Agg backend): omega_j(t) against the closed form, max/min ratio,
NC metrics, decomposition terms, class-mean Gram matrices at the start and the end against the Simplex ETF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import theory

from .reduced import asymptotic_omega


def _band(ax, t, y, label, color=None, style="-"):
    """Plot y (T,) or median and 10-90% band of y (K, T) against t (t > 0 only)."""
    ok = t > 0
    if y.ndim == 1:
        return ax.plot(t[ok], y[ok], style, label=label, color=color)[0]
    med = np.median(y, axis=0)
    line = ax.plot(t[ok], med[ok], style, label=f"{label} (median)", color=color)[0]
    lo, hi = np.percentile(y, [10, 90], axis=0)
    ax.fill_between(t[ok], lo[ok], hi[ok], alpha=0.25, color=line.get_color())
    return line


def _positive(y):
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


def make_figures(traj, out_dir) -> list[Path]:
    """Write the five standard figures of ``traj`` to ``out_dir`` (created); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = traj.times
    paths = []
    C = traj.params["num_classes"]
    ens = traj.ensemble

    # 1. omega_j(t) vs closed form and asymptote; omega[..., j] is (K, T) for an ensemble, (T,) for one run
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for j in range(traj.omega.shape[-1]):
        line = _band(ax, t, _positive(traj.omega[..., j]), f"omega_{j + 1}")
        _band(ax, t, _positive(traj.closed_form_omega[..., j]), f"closed form {j + 1}", color=line.get_color(),
              style="--")
    ok = t > 0
    asym = np.asarray(asymptotic_omega(t[ok], traj.params["per_class"], C, traj.params["kappa_value"]))
    ax.plot(t[ok], asym, "k:", label="(t/c3)^(1/4)")
    ax.set(xscale="log", yscale="log", xlabel="t", ylabel="SNR singular value",
           title=f"{traj.flow} flow: omega_j(t) vs closed form (math §6.3)")
    ax.legend(fontsize=7, ncol=2)
    paths.append(_save(fig, out / "omega_vs_closed_form.png", plt))

    # 2. max/min ratio
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    r = traj.metrics["omega_ratio"]
    _band(axes[0], t, _positive(r - 1), "max/min - 1")
    axes[0].set(xscale="log", yscale="log", xlabel="t", title="max_j omega_j / min_j omega_j - 1 (-> O(1/t))")
    _band(axes[1], t, (r - 1) * t, "(max/min - 1) t")
    axes[1].set(xscale="log", xlabel="t", title="(max/min - 1) t (bounded)")
    paths.append(_save(fig, out / "max_min_ratio.png", plt))

    # 3. NC metrics, 4. decomposition
    for name, keys, title, fontsize in (
        ("nc_metrics.png", ("nc1", "nc2_equinorm_means", "nc2_maxangle_means", "nc2_equiangular_means", "nc3", "nc4",
                            "gram_etf_distance", "central_path_distance"), f"{traj.flow} flow: NC metrics", 7),
        ("decomposition.png", ("loss", "l_nc1", "l_nc23", "l_perp"), "L = L_NC1 + L_NC2/3 + L_perp (math §3.2)", 8),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        for k in keys:
            if k in traj.metrics:
                _band(ax, t, _positive(traj.metrics[k]), k)
        ax.set(xscale="log", yscale="log", xlabel="t", title=title)
        ax.legend(fontsize=fontsize)
        paths.append(_save(fig, out / name, plt))

    # 5. Gram matrices
    g0 = traj.gram_start if not ens else traj.gram_start[0]
    g1 = traj.gram_end if not ens else traj.gram_end[0]
    etf = np.asarray(theory.etf_gram(C))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, g, title in zip(axes, (g0, g1, etf), (f"start t={t[0]:g}", f"end t={t[-1]:g}", "Simplex ETF")):
        g = np.asarray(g) / np.linalg.norm(g)
        im = ax.imshow(g, cmap="RdBu_r", vmin=-np.abs(g).max(), vmax=np.abs(g).max())
        ax.set_title(f"class-mean Gram / ||.||_F: {title}", fontsize=9)
        ax.set_xticks(range(C))
        ax.set_yticks(range(C))
        fig.colorbar(im, ax=ax, fraction=0.046)
    paths.append(_save(fig, out / "gram_start_end.png", plt))
    return paths


def _save(fig, path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
