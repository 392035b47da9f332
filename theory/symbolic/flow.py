"""Spec 6.1-6.4: the continually renormalised gradient flow, its reduction to the SNR singular
values, the implicit closed form, the retraction variant and the asymptotics.

Conventions: loss ``L = (1/(2n)) sum ||W h + b - e_c||^2`` at the least-squares classifier
(``lambda = 0``), balanced classes with ``N`` per class (``n = C N``), manifold
``X_set = {Sigma_W = I, mu_G = 0}``, flow ``dX/dt = -kappa Proj_{T X_set} grad_X L`` (spec 6.3 table:
``kappa = 1`` projected, ``kappa = n`` sum-loss, ``kappa = N`` means-flow).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ._core import CheckSpec, Outcome
from .central_path import central_path_terms, closed_forms, helmert, omegas, renormalised_stats
from .model import (
    SymbolicData,
    augment,
    class_stats,
    quadratic_terms,
    rational_data,
    sample_loss,
    symbolic_data,
)

__all__ = ["specs", "laws", "W_SYM", "N_SYM", "C_SYM", "KAPPA_SYM", "T_SYM", "A_SYM"]

W_SYM = sp.Symbol("omega", positive=True)
N_SYM = sp.Symbol("N", positive=True)
C_SYM = sp.Symbol("C", positive=True)
KAPPA_SYM = sp.Symbol("kappa", positive=True)
T_SYM = sp.Symbol("t", positive=True)
A_SYM = sp.Symbol("a", real=True)


# ----------------------------------------------------------------------------- 6.1 envelope
def envelope() -> Outcome:
    """d/dx L_central(H(x)) == partial derivative at fixed (W_LS, b_LS) (Danskin; spec 9 item 12), exactly."""
    x = sp.Symbol("x", real=True)
    base = rational_data((2, 2, 2), 2, seed=41)
    feats = [list(col) for col in base.features]
    feats[1][0] = sp.Matrix([x, feats[1][0][1]])
    data = SymbolicData(base.counts, 2, tuple(tuple(col) for col in feats))
    st = class_stats(data)
    A, B = quadratic_terms(st, 0, True)
    V = (B * A.adjugate() / A.det()).applyfunc(sp.cancel)
    total = sp.diff(sample_loss(data, V, 0, True), x)
    W, b = V[:, :2], V[:, 2]
    h = data.features[1][0]
    partial = (W.T * (W * h + b - sp.eye(3)[:, 1]))[0] / data.n
    ok = sp.cancel(sp.together(total - partial)) == 0
    return Outcome(ok, f"C=3,p=2 rational features with one symbolic entry x: d/dx L(W_LS(x), b_LS(x), H(x)) "
                       f"== (1/n)[W_LS^T(W_LS h + b_LS - e_c)]_x exactly: {ok}",
                   r"\nabla_{h_{i,c}} L_{central} = \tfrac1n W_{LS}^T\big(W_{LS}h_{i,c} + b_{LS} - e_c\big)")


# ----------------------------------------------------------------------------- 6.1 normal space
def normal_space() -> Outcome:
    """Within-class part S(x - mu_c) (S symmetric) is normal to {Sigma_W = I}; class-mean part is tangent.

    Fully symbolic features (C=2, p=2, 2 per class), symbolic perturbation Delta and symmetric S:
    sum_{c,i} <S(x_ic - mu_c), delta_ic> = (n/2) tr(S DSigma_W[Delta]), so S(x - mu) is orthogonal to every
    tangent vector (DSigma_W[Delta] = 0); class-constant perturbations have DSigma_W = 0 (tangent).
    """
    C, p = 2, 2
    data = symbolic_data((2, 2), p, "x")
    delt = symbolic_data((2, 2), p, "d")
    st = class_stats(data)
    n = data.n
    S = sp.Matrix(p, p, lambda i, j: sp.Symbol(f"s_{min(i, j)}{max(i, j)}", real=True))
    dbar = [sum(col, sp.zeros(p, 1)) / len(col) for col in delt.features]

    def dsigma(dfeats, dmeans):
        out = sp.zeros(p, p)
        for c, (col, dcol) in enumerate(zip(data.features, dfeats)):
            for xh, dh in zip(col, dcol):
                dev = xh - st.means[c]
                dd = dh - dmeans[c]
                out += dd * dev.T + dev * dd.T
        return out / n

    lhs = sum(((S * (xh - st.means[c])).T * dh)[0] for c, (col, dcol) in enumerate(zip(data.features, delt.features))
              for xh, dh in zip(col, dcol))
    rhs = sp.Rational(n, 2) * (S * dsigma(delt.features, dbar)).trace()
    ok_normal = sp.expand(lhs - rhs) == 0
    g = [sp.Matrix([sp.Symbol(f"g_{c}{k}", real=True) for k in range(p)]) for c in range(C)]
    gfeats = [[g[c]] * len(col) for c, col in enumerate(data.features)]
    ok_tangent = all(sp.expand(x) == 0 for x in dsigma(gfeats, g))
    # within-class deviations are orthogonal to the mu_G-normal direction (constant shift v)
    v = sp.Matrix([sp.Symbol(f"v_{k}", real=True) for k in range(p)])
    ok_shift = sp.expand(sum(((S * (xh - st.means[c])).T * v)[0] for c, col in enumerate(data.features) for xh in col)) == 0
    ok = ok_normal and ok_tangent and ok_shift
    return Outcome(ok, f"<S(x-mu), Delta> == (n/2) tr(S DSigma_W[Delta]) (normal): {ok_normal}; class-constant "
                       f"Delta has DSigma_W = 0 (tangent): {ok_tangent}; within part orthogonal to mean shifts: {ok_shift}",
                   r"\sum_{c,i}\langle S(x_{i,c}-\mu_c),\delta_{i,c}\rangle = \tfrac n2\operatorname{tr}\big(S\,D\Sigma_W[\Delta]\big)")


def gradient_split() -> Outcome:
    """At the LS classifier: grad = class-mean part g_c + S (x - mu_c) with S = W^T W / n symmetric, and
    sum_c n_c g_c = 0 (so the class-mean part also keeps mu_G = 0): exact, rational features."""
    data = rational_data((2, 3, 2), 2, seed=42)
    st = class_stats(data)
    A, B = quadratic_terms(st, 0, True)
    V = B * A.inv()
    W, b = V[:, :2], V[:, 2]
    n = data.n
    eye = sp.eye(3)
    S = W.T * W / n
    ok_split = all(
        sp.simplify(x) == 0
        for c, h in data.samples()
        for x in (W.T * (W * h + b - eye[:, c]) / n - (W.T * (W * st.means[c] + b - eye[:, c]) / n + S * (h - st.means[c])))
    )
    gsum = sum((st.counts[c] * W.T * (W * st.means[c] + b - eye[:, c]) / n for c in range(3)), sp.zeros(2, 1))
    ok_sum = all(x == 0 for x in gsum)
    ok_sym = S == S.T
    ok = ok_split and ok_sum and ok_sym
    return Outcome(ok, f"grad = g_c + S(x - mu_c): {ok_split}; S symmetric: {ok_sym}; sum_c n_c g_c = 0: {ok_sum} "
                       "=> Proj grad = class-mean part; within-class deviations (and Sigma_W = I) are frozen")


# ----------------------------------------------------------------------------- 6.1 dM/dt
@lru_cache(maxsize=None)
def means_rhs(C: int) -> sp.Matrix:
    """``dM/dt = -kappa [g_c]_c = -(kappa/n) W^T (W M + b 1^T - I)`` on the manifold (SVD form Mbar = Omega V^T)."""
    V = central_path_terms(C)["V"]
    st = renormalised_stats(C)
    W, b = V[:, : C - 1], V[:, C - 1]
    M = st.means_matrix()
    n = C * N_SYM
    return (-KAPPA_SYM / n * W.T * (W * M + b * sp.ones(1, C) - sp.eye(C))).applyfunc(sp.simplify)


def dmdt_svd(C: int):
    def fn() -> Outcome:
        rhs = means_rhs(C)
        om = omegas(C)
        H = helmert(C)
        f = sp.diag(*[KAPPA_SYM / N_SYM * w / (C + w**2) ** 2 for w in om])
        ok_svd = all(sp.simplify(x) == 0 for x in (rhs - f * H.T))
        M = renormalised_stats(C).means_matrix()
        K = C * sp.eye(C - 1) + M * M.T
        ok_mat = all(sp.simplify(x) == 0 for x in (rhs - KAPPA_SYM / N_SYM * K.inv() ** 2 * M))
        return Outcome(ok_svd and ok_mat,
                       f"C={C}, symbolic omegas, N, kappa: dM/dt == (kappa/N)(C I + M M^T)^-2 M: {ok_mat}; "
                       f"== U diag((kappa/N) w/(C+w^2)^2) V^T (singular vectors fixed): {ok_svd}",
                       r"\frac{dM}{dt} = -\frac{\kappa}{n}W_{LS}^T(W_{LS}M + b_{LS}1^T - I) = \frac{\kappa}{N}(CI + MM^T)^{-2}M"
                       r" = U\,\mathrm{diag}\Big(\frac{\kappa}{N}\frac{\omega_j}{(C+\omega_j^2)^2}\Big)V^T")

    return fn


def dmdt_generic() -> Outcome:
    """C = 3, p = 2, generic centred means (M 1 = 0, four symbols): the matrix ODE of spec 6.1, exactly."""
    C, p = 3, 2
    m = sp.symbols("m_0:4", real=True)
    M = sp.Matrix([[m[0], m[1], -m[0] - m[1]], [m[2], m[3], -m[2] - m[3]]])
    S = sp.eye(p) + M * M.T / C
    W = M.T * S.inv() / C
    b = sp.ones(C, 1) / C
    rhs = -KAPPA_SYM / (C * N_SYM) * W.T * (W * M + b * sp.ones(1, C) - sp.eye(C))
    K = C * sp.eye(p) + M * M.T
    target = KAPPA_SYM / N_SYM * K.inv() * K.inv() * M
    ok = all(sp.cancel(sp.together(x)) == 0 for x in (rhs - target))
    return Outcome(ok, f"generic means with M1 = 0, W_LS = (1/C) M^T (I + MM^T/C)^-1, b_LS = 1/C: "
                       f"-(kappa/n) W^T(WM + b1^T - I) == (kappa/N)(CI + MM^T)^-2 M: {ok}")


# ----------------------------------------------------------------------------- 6.2
@lru_cache(maxsize=None)
def laws() -> dict[str, sp.Expr]:
    """The scalar laws derived here (used for the comparison with :mod:`theory.laws`)."""
    w, N, C, k = W_SYM, N_SYM, C_SYM, KAPPA_SYM
    l_central = 1 / (2 * (C + w**2))
    rhs = sp.simplify(-(k / N) * sp.diff(l_central, w))
    lhs = sp.expand(sp.integrate(sp.apart(1 / rhs, w), w))
    n = C * N
    r_rhs = w / (n * (C + w**2))
    r_lhs = sp.expand(sp.integrate(sp.apart(1 / r_rhs, w), w))
    return {
        "omega_rhs": rhs,
        "closed_form_lhs": lhs,
        "closed_form_residual": lhs - A_SYM - T_SYM,
        "retraction_rhs": r_rhs,
        "retraction_lhs": r_lhs,
        "l_central": l_central,
        "l_nc1": w**2 / (2 * (C + w**2) ** 2),
        "l_nc23": C / (2 * (C + w**2) ** 2),
        "nc1_renormalized": w**-2,
        "c1": lhs.coeff(sp.log(w)),
        "c2": lhs.coeff(w, 2),
        "c3": lhs.coeff(w, 4),
    }


def singular_value_ode(C: int):
    def fn() -> Outcome:
        rhs = means_rhs(C)
        H = helmert(C)
        om = omegas(C)
        # U = I, V = Helmert: Omega' = U^T (dM/dt) V (diagonal because U, V stay fixed)
        dOmega = (rhs * H).applyfunc(sp.simplify)
        off = all(sp.simplify(dOmega[i, j]) == 0 for i in range(C - 1) for j in range(C - 1) if i != j)
        law = laws()["omega_rhs"]
        ok_diag = all(sp.simplify(dOmega[j, j] - law.subs({W_SYM: om[j], C_SYM: C})) == 0 for j in range(C - 1))
        lc = closed_forms(C)["l_central"]
        ok_grad = all(sp.simplify(dOmega[j, j] + KAPPA_SYM / N_SYM * sp.diff(lc, om[j])) == 0 for j in range(C - 1))
        return Outcome(off and ok_diag and ok_grad,
                       f"C={C}: U^T (dM/dt) V diagonal: {off}; d omega_j/dt == (kappa/N) w/(C+w^2)^2: {ok_diag}; "
                       f"== -(kappa/N) dL_central/d omega_j: {ok_grad}",
                       r"\frac{d\omega_j}{dt} = \frac{\kappa}{N}\frac{\omega_j}{(C+\omega_j^2)^2} = -\frac{\kappa}{N}\frac{\partial L_{central}}{\partial\omega_j}")

    return fn


# ----------------------------------------------------------------------------- 6.3
def closed_form() -> Outcome:
    ex = laws()
    w, N, C, k = W_SYM, N_SYM, C_SYM, KAPPA_SYM
    c1, c2, c3 = ex["c1"], ex["c2"], ex["c3"]
    ok_c = (sp.simplify(c1 - N * C**2 / k) == 0 and sp.simplify(c2 - N * C / k) == 0
            and sp.simplify(c3 - N / (4 * k)) == 0)
    ok_shape = sp.simplify(ex["closed_form_lhs"] - (c1 * sp.log(w) + c2 * w**2 + c3 * w**4)) == 0
    # verification by differentiation along omega(t): d/dt lhs = lhs'(omega) * omega' = 1
    ok_diff = sp.simplify(sp.diff(ex["closed_form_lhs"], w) * ex["omega_rhs"] - 1) == 0
    latex = (r"\int\frac{N}{\kappa}\frac{(C+\omega^2)^2}{\omega}\,d\omega:\quad " + sp.latex(ex["closed_form_lhs"])
             + r" = a_j + t,\quad (c_1,c_2,c_3) = \Big(" + sp.latex(c1) + ", " + sp.latex(c2) + ", " + sp.latex(c3) + r"\Big)")
    return Outcome(ok_c and ok_shape and ok_diff,
                   f"integrate(1/rhs) = c1 log w + c2 w^2 + c3 w^4 with (c1,c2,c3) = ({c1}, {c2}, {c3}): {ok_c and ok_shape}; "
                   f"d/dt[lhs(omega(t))] == 1 by differentiation: {ok_diff}", latex)


def convention_table() -> Outcome:
    ex = laws()
    N, C, k = N_SYM, C_SYM, KAPPA_SYM
    table = {"projected": (1, (N * C**2, N * C, N / 4)), "sum": (C * N, (C, 1, 1 / (4 * C))), "means": (N, (C**2, C, sp.Rational(1, 4)))}
    rows = []
    ok = True
    for name, (kap, want) in table.items():
        got = tuple(sp.simplify(ex[c].subs(k, kap)) for c in ("c1", "c2", "c3"))
        good = all(sp.simplify(g - w_) == 0 for g, w_ in zip(got, want))
        ok &= good
        rows.append(f"{name} (kappa={kap}): {got} {'ok' if good else 'MISMATCH'}")
    return Outcome(ok, "; ".join(rows),
                   r"\kappa=1: (NC^2, NC, N/4);\ \kappa=n=CN: (C, 1, \tfrac{1}{4C});\ \kappa=N: (C^2, C, \tfrac14)")


def snr_scaling() -> Outcome:
    """SNR/sqrt(C): with w = sqrt(C) w' the closed form becomes (C^2 N/kappa)(log w' + w'^2 + w'^4/4) + const."""
    ex = laws()
    wp = sp.Symbol("omega_prime", positive=True)
    N, C, k = N_SYM, C_SYM, KAPPA_SYM
    lhs = sp.expand(sp.expand_log(ex["closed_form_lhs"].subs(W_SYM, sp.sqrt(C) * wp), force=True))
    d1, d2, d3 = lhs.coeff(sp.log(wp)), lhs.coeff(wp, 2), lhs.coeff(wp, 4)
    const = sp.simplify(lhs - d1 * sp.log(wp) - d2 * wp**2 - d3 * wp**4)
    ok = (sp.simplify(d1 - C**2 * N / k) == 0 and sp.simplify(d2 - C**2 * N / k) == 0
          and sp.simplify(d3 - C**2 * N / (4 * k)) == 0 and not const.has(wp))
    return Outcome(ok, f"in w' = w/sqrt(C): coefficients ({sp.simplify(d1)}, {sp.simplify(d2)}, {sp.simplify(d3)}) "
                       f"= (C^2 N/kappa)(1, 1, 1/4), constant {const} absorbed into a_j: {ok}",
                   r"\omega = \sqrt C\,\omega':\ \frac{C^2N}{\kappa}\Big(\log\omega' + \omega'^2 + \tfrac14\omega'^4\Big) = a_j' + t")


def retraction(C: int):
    """Euler step on ALL features, then re-whitening: dM/dt = S M - G, d omega/dt = (1/n) w/(C+w^2) (kappa = 1)."""

    def fn() -> Outcome:
        dt = sp.Symbol("dt", positive=True)
        V = central_path_terms(C)["V"]
        st = renormalised_stats(C)
        W, b = V[:, : C - 1], V[:, C - 1]
        M = st.means_matrix()
        n = C * N_SYM
        S = (W.T * W / n).applyfunc(sp.simplify)
        diag_ok = S.is_diagonal()
        G = W.T * (W * M + b * sp.ones(1, C) - sp.eye(C)) / n  # class-mean gradients [g_c]
        # deviations d -> (I - dt S) d, so Sigma_W -> (I - dt S)^2 exactly, and Sigma_W^{-1/2} = (I - dt S)^{-1}
        rewhite = sp.diag(*[1 / (1 - dt * S[i, i]) for i in range(C - 1)])
        M_new = rewhite * (M - dt * G)
        dM = M_new.applyfunc(lambda e: sp.diff(e, dt).subs(dt, 0))
        Hm = helmert(C)
        om = omegas(C)
        dOm = (dM * Hm).applyfunc(sp.simplify)
        law = laws()["retraction_rhs"]
        ok = all(sp.simplify(dOm[i, j] - (law.subs({W_SYM: om[i], C_SYM: C}) if i == j else 0)) == 0
                 for i in range(C - 1) for j in range(C - 1))
        lhs = laws()["retraction_lhs"]
        ok_cf = sp.simplify(lhs - C_SYM * N_SYM * (C_SYM * sp.log(W_SYM) + W_SYM**2 / 2)) == 0 \
            and sp.simplify(sp.diff(lhs, W_SYM) * law - 1) == 0
        return Outcome(diag_ok and ok and ok_cf,
                       f"C={C}: S = W^TW/n diagonal in the SVD basis: {diag_ok}; first-order re-whitened step gives "
                       f"d omega/dt = (1/n) w/(C+w^2): {ok}; closed form n(C log w + w^2/2) = a + t (no quartic term), "
                       f"checked by differentiation: {ok_cf}",
                       r"\frac{d\omega}{dt} = \frac1n\frac{\omega}{C+\omega^2}\ \Rightarrow\ n\Big(C\log\omega + \frac{\omega^2}{2}\Big) = a + t")

    return fn


# ----------------------------------------------------------------------------- 6.4
def asymptotics() -> Outcome:
    ex = laws()
    w = W_SYM
    c1, c2, c3 = sp.symbols("c1 c2 c3", positive=True)
    F = c1 * sp.log(w) + c2 * w**2 + c3 * w**4
    a = sp.Symbol("a", real=True)
    # growth: omega ~ (t/c3)^{1/4}, i.e. c3 w^4 / (F(w) - a) -> 1
    growth = sp.limit(c3 * w**4 / (F - a), w, sp.oo)
    # gap: F(w_i) - F(w_j) = Da with w_i^2 = s + delta, w_j^2 = s; delta = d1/s + O(s^-2)
    s, u, d1, d2, Da = sp.symbols("s u d1 d2 Delta_a", positive=True)
    Fs = lambda x2: c1 * sp.log(x2) / 2 + c2 * x2 + c3 * x2**2  # noqa: E731  F as a function of w^2
    delta = d1 * u + d2 * u**2  # u = 1/s
    G = sp.expand_log(Fs(1 / u + delta) - Fs(1 / u), force=True) - Da
    ser = sp.series(G.subs(sp.log(1 / u + delta), sp.log(1 + u * delta) - sp.log(u)).subs(sp.log(1 / u), -sp.log(u)), u, 0, 1).removeO()
    lead = sp.simplify(ser.subs(u, 0))
    d1_sol = sp.solve(sp.Eq(lead, 0), d1)
    ok_gap = d1_sol == [Da / (2 * c3)]
    # ratio: t (w_i/w_j - 1) -> Da/4 with t = F(w_j) - a_j, w_i^2 = w_j^2 + Da/(2 c3 w_j^2)
    wi = sp.sqrt(w**2 + Da / (2 * c3 * w**2))
    ratio_lim = sp.limit((F - a) * (wi / w - 1), w, sp.oo)
    # NC1 = sum_j w_j^-2 with all w_j ~ (t/c3)^{1/4}: sqrt(t) * (C-1) w^-2 -> (C-1) sqrt(c3)
    Cc = sp.Symbol("C", positive=True)
    nc1_lim = sp.limit(sp.sqrt(F - a) * (Cc - 1) / w**2, w, sp.oo)
    ok_nc1 = sp.simplify(nc1_lim - (Cc - 1) * sp.sqrt(c3)) == 0
    val = float(((Cc - 1) * sp.sqrt(ex["c3"])).subs({Cc: 4, C_SYM: 4, N_SYM: 6, KAPPA_SYM: 1}))
    ok = growth == 1 and ok_gap and sp.simplify(ratio_lim - Da / 4) == 0 and ok_nc1
    return Outcome(ok, f"lim c3 w^4/(t) = {growth}; omega_i^2 - omega_j^2 = d1/omega^2 + O(omega^-4) with d1 = {d1_sol} "
                       f"(= (a_i - a_j)/(2 c3)); lim t (omega_i/omega_j - 1) = {ratio_lim} (so max/min - 1 = O(1/t)); "
                       f"lim sqrt(t) NC1 = {nc1_lim} (= {val:.4f} for C=4, N=6, kappa=1; spec 6.4 quotes 3.674)",
                   r"\omega_j \sim (t/c_3)^{1/4},\quad \omega_i^2-\omega_j^2 \sim \frac{a_i-a_j}{2c_3\omega^2},\quad "
                   r"t\Big(\frac{\omega_i}{\omega_j}-1\Big)\to\frac{a_i-a_j}{4},\quad \sqrt t\sum_j\omega_j^{-2}\to (C-1)\sqrt{c_3}")


def specs(quick: bool = False) -> list[CheckSpec]:
    return [
        CheckSpec("6.1", "envelope theorem: gradient at fixed LS classifier [C=3,p=2, rational + symbolic entry]", envelope,
                  "rational size", "grad_h L_central = (1/n) W^T (W h + b - e_c)"),
        CheckSpec("6.1", "within-class part is normal, class-mean part tangent [C=2,p=2, symbolic features]", normal_space,
                  "symbolic size", "Proj removes S(x - mu_c), S symmetric"),
        CheckSpec("6.1", "gradient split at the LS classifier, sum_c n_c g_c = 0 [C=3,p=2, rational]", gradient_split,
                  "rational size", "Proj grad = class-mean part"),
        CheckSpec("6.1", "dM/dt on the manifold, symbolic omegas [C=3]", dmdt_svd(3), "symbolic size",
                  "dM/dt = (kappa/N)(CI + MM^T)^-2 M"),
        CheckSpec("6.1", "dM/dt on the manifold, symbolic omegas [C=4]", dmdt_svd(4), "symbolic size",
                  "dM/dt = (kappa/N)(CI + MM^T)^-2 M", quick=False),
        CheckSpec("6.1", "dM/dt for generic centred means [C=3,p=2]", dmdt_generic, "symbolic size",
                  "dM/dt = (kappa/N)(CI + MM^T)^-2 M"),
        CheckSpec("6.2", "singular-value ODE [C=3]", singular_value_ode(3), "symbolic size",
                  "d omega/dt = (kappa/N) omega/(C+omega^2)^2"),
        CheckSpec("6.2", "singular-value ODE [C=4]", singular_value_ode(4), "symbolic size",
                  "d omega/dt = (kappa/N) omega/(C+omega^2)^2", quick=False),
        CheckSpec("6.3", "closed form c1 log w + c2 w^2 + c3 w^4 = a + t (symbolic N, C, kappa)", closed_form, "general",
                  "(c1, c2, c3) = (N/kappa)(C^2, C, 1/4)"),
        CheckSpec("6.3", "time-scale conventions (spec 6.3 table)", convention_table, "general", "kappa = 1, n, N"),
        CheckSpec("6.3", "SNR/sqrt(C) scaling: ratio 1 : 1 : 1/4 times C^2", snr_scaling, "general", "[AMB] SNR scaling"),
        CheckSpec("6.3", "retraction variant (Euler step + re-whitening) [C=3]", retraction(3), "symbolic size",
                  "d omega/dt = (1/n) omega/(C+omega^2), n(C log w + w^2/2) = a + t"),
        CheckSpec("6.4", "asymptotics: growth, gap, ratio, NC1 rate", asymptotics, "general",
                  "omega ~ (t/c3)^1/4, max/min - 1 = O(1/t), NC1 ~ (C-1) sqrt(c3/t)"),
    ]
