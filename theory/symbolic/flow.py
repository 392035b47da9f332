"""Math §6.1-6.4: the continually renormalised gradient flow, its reduction to the SNR singular
values, the implicit closed form, the retraction variant and the asymptotics.

Conventions: loss ``L = (1/(2n)) sum ||W h + b - e_c||^2`` at the least-squares classifier
(``lambda = 0``), balanced classes with ``N`` per class (``n = C N``), manifold
``X_set = {Sigma_W = I, mu_G = 0}``, flow ``dX/dt = -kappa Proj_{T X_set} grad_X L`` (math §6.3 table:
``kappa = 1`` projected, ``kappa = n`` sum-loss, ``kappa = N`` means-flow).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from theory import laws

from ._core import Checks, CheckSpec, Outcome, close, vanishes, verdict
from .central_path import central_path_terms, closed_forms, helmert, omegas, renormalised_stats
from .model import (
    SymbolicData,
    class_stats,
    is_zero,
    ls_augmented,
    quadratic_terms,
    rational_data,
    sample_loss,
    symbolic_data,
)

__all__ = ["specs", "W_SYM", "N_SYM", "C_SYM", "KAPPA_SYM", "T_SYM", "A_SYM"]

#: The symbols of :mod:`theory.laws` (its expressions are the ones certified here).
W_SYM, N_SYM, C_SYM, KAPPA_SYM, T_SYM, A_SYM = laws.w, laws.N, laws.C, laws.K, laws.t, laws.a
CHECKS = Checks()


def _law(name: str, C=None, w=None) -> sp.Expr:
    """``theory.laws.expressions()[name]``, optionally at a concrete ``C`` and singular value ``w``."""
    return laws.expressions()[name].subs({k: v for k, v in ((C_SYM, C), (W_SYM, w)) if v is not None})


@CHECKS.add("6.1", "envelope theorem: gradient at fixed LS classifier [C=3,p=2, rational + symbolic entry]",
             "rational size", "grad_h L_central = (1/n) W^T (W h + b - e_c)")
def envelope() -> Outcome:
    """d/dx L_central(H(x)) == partial derivative at fixed (W_LS, b_LS) (Danskin; math §9 item 12), exactly."""
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
    ok = is_zero(total - partial)
    return Outcome(ok, f"C=3,p=2 rational features with one symbolic entry x: d/dx L(W_LS(x), b_LS(x), H(x)) "
                       f"== (1/n)[W_LS^T(W_LS h + b_LS - e_c)]_x exactly: {ok}",
                   r"\nabla_{h_{i,c}} L_{central} = \tfrac1n W_{LS}^T\big(W_{LS}h_{i,c} + b_{LS} - e_c\big)")


@CHECKS.add("6.1", "within-class part is normal, class-mean part tangent [C=2,p=2, symbolic features]",
             "symbolic size", "Proj removes S(x - mu_c), S symmetric")
def normal_space() -> Outcome:
    """Within-class part S(x - mu_c) (S symmetric) is normal to {Sigma_W = I}; class-mean part is tangent:
    ``sum_{c,i} <S(x_ic - mu_c), delta_ic> = (n/2) tr(S DSigma_W[Delta])`` (C=2, p=2, symbolic features)."""
    C, p = 2, 2
    data = symbolic_data((2, 2), p, "x")
    delt = symbolic_data((2, 2), p, "d")
    st = class_stats(data)
    n = data.n
    S = sp.Matrix(p, p, lambda i, j: sp.Symbol(f"s_{min(i, j)}{max(i, j)}", real=True))
    dbar = [sum(col, sp.zeros(p, 1)) / len(col) for col in delt.features]
    devs = [xh - st.means[c] for c, xh in data.samples()]  # within-class deviations, in sample order

    def dsigma(dfeats, dmeans):  # D Sigma_W[Delta] = (1/n) sum_{c,i} (dd dev^T + dev dd^T), dd = delta_ic - mean_c
        dds = [dh - dmeans[c] for c, col in enumerate(dfeats) for dh in col]
        return sum((dd * dev.T + dev * dd.T for dev, dd in zip(devs, dds)), sp.zeros(p, p)) / n

    lhs = sum(((S * dev).T * dh)[0] for dev, (_, dh) in zip(devs, delt.samples()))
    rhs = sp.Rational(n, 2) * (S * dsigma(delt.features, dbar)).trace()
    ok_normal = vanishes(lhs - rhs, how=sp.expand)
    g = [sp.Matrix([sp.Symbol(f"g_{c}{k}", real=True) for k in range(p)]) for c in range(C)]
    gfeats = [[g[c]] * len(col) for c, col in enumerate(data.features)]
    ok_tangent = vanishes(dsigma(gfeats, g), how=sp.expand)
    # within-class deviations are orthogonal to the mu_G-normal direction (constant shift v)
    v = sp.Matrix([sp.Symbol(f"v_{k}", real=True) for k in range(p)])
    ok_shift = vanishes(sum(((S * dev).T * v)[0] for dev in devs), how=sp.expand)
    return verdict({"<S(x-mu), Delta> == (n/2) tr(S DSigma_W[Delta]) (normal)": ok_normal,
                    "class-constant Delta has DSigma_W = 0 (tangent)": ok_tangent,
                    "within part orthogonal to mean shifts": ok_shift},
                   r"\sum_{c,i}\langle S(x_{i,c}-\mu_c),\delta_{i,c}\rangle = \tfrac "
                   r"n2\operatorname{tr}\big(S\,D\Sigma_W[\Delta]\big)")


@CHECKS.add("6.1", "gradient split at the LS classifier, sum_c n_c g_c = 0 [C=3,p=2, rational]", "rational size",
             "Proj grad = class-mean part")
def gradient_split() -> Outcome:
    """At the LS classifier: grad = class-mean part g_c + S (x - mu_c) with S = W^T W / n symmetric, and
    sum_c n_c g_c = 0 (so the class-mean part also keeps mu_G = 0): exact, rational features."""
    data = rational_data((2, 3, 2), 2, seed=42)
    st = class_stats(data)
    V, _ = ls_augmented(st, 0)
    W, b = V[:, :2], V[:, 2]
    S = W.T * W / data.n

    def grad(h, c):  # the envelope gradient (1/n) W^T (W h + b - e_c)
        return W.T * (W * h + b - sp.eye(3)[:, c]) / data.n

    ok_split = vanishes(*(grad(h, c) - grad(st.means[c], c) - S * (h - st.means[c]) for c, h in data.samples()))
    ok_sum = all(x == 0 for x in sum((st.counts[c] * grad(st.means[c], c) for c in range(3)), sp.zeros(2, 1)))
    steps = {"grad = g_c + S(x - mu_c)": ok_split, "S symmetric": S == S.T, "sum_c n_c g_c = 0": ok_sum}
    return verdict(steps, head="Proj grad = class-mean part, within-class deviations (and Sigma_W = I) frozen, as ")


def _manifold_gradients(C: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """``(W_LS, M, [g_c]_c = (1/n) W^T (W M + b 1^T - I))`` on the manifold (SVD form ``Mbar = Omega V^T``)."""
    V = central_path_terms(C)["V"]
    W, b = V[:, : C - 1], V[:, C - 1]
    M = renormalised_stats(C).means_matrix()
    return W, M, W.T * (W * M + b * sp.ones(1, C) - sp.eye(C)) / (C * N_SYM)


@cache
def means_rhs(C: int) -> sp.Matrix:
    """``dM/dt = -kappa [g_c]_c = -(kappa/n) W^T (W M + b 1^T - I)`` on the manifold (math §6.1)."""
    return (-KAPPA_SYM * _manifold_gradients(C)[2]).applyfunc(sp.simplify)


@cache
def svd_form_holds(C: int, omega_rhs: sp.Expr) -> bool:
    """``dM/dt == U diag(omega_rhs(omega_j)) V^T`` (``U = I``, ``V`` Helmert) for theory.laws' ``omega_rhs``
    (cached: the 6.1 and 6.2 checks share it)."""
    f = sp.diag(*[omega_rhs.subs({C_SYM: C, W_SYM: w}) for w in omegas(C)])
    return vanishes(means_rhs(C) - f * helmert(C).T)


@CHECKS.add("6.1", "dM/dt on the manifold, symbolic omegas", statement="dM/dt = (kappa/N)(CI + MM^T)^-2 M",
             sizes=(3, 4))
def dmdt_svd(C: int) -> Outcome:
    rhs = means_rhs(C)
    ok_svd = svd_form_holds(C, _law("omega_rhs"))
    M = renormalised_stats(C).means_matrix()
    K = C * sp.eye(C - 1) + M * M.T
    ok_mat = vanishes(rhs - KAPPA_SYM / N_SYM * K.inv() ** 2 * M)
    return verdict({"dM/dt == (kappa/N)(C I + M M^T)^-2 M": ok_mat,
                    "== U diag(theory.laws omega_rhs(w_j)) V^T (singular vectors fixed)": ok_svd},
                   r"\frac{dM}{dt} = -\frac{\kappa}{n}W_{LS}^T(W_{LS}M + b_{LS}1^T - I) = "
                   r"\frac{\kappa}{N}(CI + MM^T)^{-2}M"
                   r" = U\,\mathrm{diag}\Big(\frac{\kappa}{N}\frac{\omega_j}{(C+\omega_j^2)^2}\Big)V^T",
                   f"C={C}, symbolic omegas, N, kappa: ")


@CHECKS.add("6.1", "dM/dt for generic centred means [C=3,p=2]", statement="dM/dt = (kappa/N)(CI + MM^T)^-2 M")
def dmdt_generic() -> Outcome:
    """C = 3, p = 2, generic centred means (M 1 = 0, four symbols): the matrix ODE of math §6.1, exactly."""
    C, p = 3, 2
    m = sp.symbols("m_0:4", real=True)
    M = sp.Matrix([[m[0], m[1], -m[0] - m[1]], [m[2], m[3], -m[2] - m[3]]])
    S = sp.eye(p) + M * M.T / C
    W = M.T * S.inv() / C
    b = sp.ones(C, 1) / C
    rhs = -KAPPA_SYM / (C * N_SYM) * W.T * (W * M + b * sp.ones(1, C) - sp.eye(C))
    K = C * sp.eye(p) + M * M.T
    target = KAPPA_SYM / N_SYM * K.inv() * K.inv() * M
    ok = is_zero(rhs - target)
    return Outcome(ok, f"generic means with M1 = 0, W_LS = (1/C) M^T (I + MM^T/C)^-1, b_LS = 1/C: "
                       f"-(kappa/n) W^T(WM + b1^T - I) == (kappa/N)(CI + MM^T)^-2 M: {ok}")


@CHECKS.add("6.2", "singular-value ODE", statement="d omega/dt = (kappa/N) omega/(C+omega^2)^2", sizes=(3, 4))
def singular_value_ode(C: int) -> Outcome:
    H = helmert(C)
    om = omegas(C)
    # dM/dt == diag(omega_rhs) V^T (the 6.1 check, cached); with V^T V = I, U^T (dM/dt) V is that diagonal
    lc = closed_forms(C)["l_central"]  # sum_j theory.laws.L_CENTRAL(omega_j)
    steps = {
        "dM/dt (normal equations + projection) == diag(theory.laws omega_rhs(omega_j)) V^T (6.1)":
            svd_form_holds(C, _law("omega_rhs")),
        "V^T V = I": (H.T * H).applyfunc(sp.simplify) == sp.eye(C - 1),
        f"so d omega_j/dt = {_law('omega_rhs')} == -(kappa/N) d/d omega_j sum_k theory.laws.L_CENTRAL(omega_k)":
            vanishes(*(_law("omega_rhs", C, w) + KAPPA_SYM / N_SYM * sp.diff(lc, w) for w in om)),
    }
    return verdict(steps, r"\frac{d\omega_j}{dt} = \frac{\kappa}{N}\frac{\omega_j}{(C+\omega_j^2)^2} = "
                          r"-\frac{\kappa}{N}\frac{\partial L_{central}}{\partial\omega_j}", f"C={C}: ")


@CHECKS.add("6.3", "closed form c1 log w + c2 w^2 + c3 w^4 = a + t (symbolic N, C, kappa)", "general",
             "(c1, c2, c3) = (N/kappa)(C^2, C, 1/4)")
def closed_form() -> Outcome:
    """theory.laws' closed form integrates its flow, and its constants are math §6.3's ``(N/kappa)(C^2, C, 1/4)``."""
    ex = laws.expressions()
    w, N, C, k = W_SYM, N_SYM, C_SYM, KAPPA_SYM
    c1, c2, c3 = ex["c1"], ex["c2"], ex["c3"]
    lhs = ex["closed_form_lhs"]
    steps = {  # differentiation along omega(t): d/dt lhs = lhs'(omega) omega' = 1
        "theory.laws closed form: d/dt[closed_form_lhs(omega(t))] == 1 along its omega_rhs":
            vanishes(sp.diff(lhs, w) * ex["omega_rhs"] - 1),
        f"(c1,c2,c3) = ({c1}, {c2}, {c3}) == math §6.3's (N/kappa)(C^2, C, 1/4)":
            vanishes(c1 - N * C**2 / k, c2 - N * C / k, c3 - N / (4 * k)),
        "entries consistent (closed_form_lhs = c1 log w + c2 w^2 + c3 w^4, residual = lhs - a - t)":
            vanishes(lhs - (c1 * sp.log(w) + c2 * w**2 + c3 * w**4),
                     ex["closed_form_residual"] - (lhs - A_SYM - T_SYM)),
    }
    latex = (rf"\int\frac{{N}}{{\kappa}}\frac{{(C+\omega^2)^2}}{{\omega}}\,d\omega:\quad {sp.latex(lhs)} = a_j + t,"
             rf"\quad (c_1,c_2,c_3) = \Big({sp.latex(c1)}, {sp.latex(c2)}, {sp.latex(c3)}\Big)")
    return verdict(steps, latex)


@CHECKS.add("6.3", "time-scale conventions (math §6.3 table)", "general", "kappa = 1, n, N")
def convention_table() -> Outcome:
    """Math §6.3's table against theory.laws: symbolic constants at each kappa, and ``constants(N, C, name)``."""
    ex = laws.expressions()
    N, C, k = N_SYM, C_SYM, KAPPA_SYM
    table = {
        "projected": (1, (N * C**2, N * C, N / 4)),
        "sum": (C * N, (C, 1, 1 / (4 * C))),
        "means": (N, (C**2, C, sp.Rational(1, 4))),
    }
    steps = {}
    for name, (kap, want) in table.items():
        got = tuple(sp.simplify(ex[c].subs(k, kap)) for c in ("c1", "c2", "c3"))
        steps[f"{name} (kappa={kap}): {got}"] = vanishes(*(g - w_ for g, w_ in zip(got, want)))
        num_want = [float(sp.sympify(x).subs({N: 6, C: 4})) for x in want]
        steps[f"theory.laws.constants(N=6, C=4, {name!r})"] = close(laws.constants(6, 4, name), num_want)
    return verdict(steps,
                   r"\kappa=1: (NC^2, NC, N/4);\ \kappa=n=CN: (C, 1, \tfrac{1}{4C});\ \kappa=N: (C^2, C, \tfrac14)")


@CHECKS.add("6.3", "SNR/sqrt(C) scaling: ratio 1 : 1 : 1/4 times C^2", "general", "[AMB] SNR scaling")
def snr_scaling() -> Outcome:
    """SNR/sqrt(C): substituting w = sqrt(C) w' into theory.laws' closed form
    gives theory.laws.per_class_constants()."""
    ex = laws.expressions()
    wp = sp.Symbol("omega_prime", positive=True)
    N, C, k = N_SYM, C_SYM, KAPPA_SYM
    lhs = sp.expand(sp.expand_log(ex["closed_form_lhs"].subs(W_SYM, sp.sqrt(C) * wp), force=True))
    d = [sp.simplify(x) for x in (lhs.coeff(sp.log(wp)), lhs.coeff(wp, 2), lhs.coeff(wp, 4))]
    const = sp.simplify(lhs - d[0] * sp.log(wp) - d[1] * wp**2 - d[2] * wp**4)
    pc = laws.per_class_constants()
    num_want = [float(x.subs({N: 6, C: 4, k: 1})) for x in d]
    steps = {
        f"== theory.laws.per_class_constants() {pc}": vanishes(*(x - y for x, y in zip(d, pc))) and not const.has(wp),
        "== (C^2 N/kappa)(1, 1, 1/4)": vanishes(d[0] - C**2 * N / k, d[1] - C**2 * N / k, d[2] - C**2 * N / (4 * k)),
        "theory.laws.constants(6, 4, 1, snr_scale='per_class') agrees":
            close(laws.constants(6, 4, 1.0, snr_scale="per_class"), num_want),
    }
    return verdict(steps,
                   r"\omega = \sqrt C\,\omega':\ \frac{C^2N}{\kappa}\Big(\log\omega' + \omega'^2 + "
                   r"\tfrac14\omega'^4\Big) = a_j' + t",
                   f"closed form in w' = w/sqrt(C): coefficients ({d[0]}, {d[1]}, {d[2]}), constant {const} absorbed "
                   "into a_j; ")


@CHECKS.add("6.3", "retraction variant (Euler step + re-whitening)",
             statement="d omega/dt = (1/n) omega/(C+omega^2), n(C log w + w^2/2) = a + t", sizes=(3,))
def retraction(C: int) -> Outcome:
    """Euler step on ALL features, then re-whitening: dM/dt = S M - G, d omega/dt = (1/n) w/(C+w^2) (kappa = 1)."""
    dt = sp.Symbol("dt", positive=True)
    W, M, G = _manifold_gradients(C)  # G: the class-mean gradients [g_c]
    S = (W.T * W / (C * N_SYM)).applyfunc(sp.simplify)
    # deviations d -> (I - dt S) d, so Sigma_W -> (I - dt S)^2 exactly, and Sigma_W^{-1/2} = (I - dt S)^{-1}
    rewhite = sp.diag(*[1 / (1 - dt * S[i, i]) for i in range(C - 1)])
    dM = (rewhite * (M - dt * G)).applyfunc(lambda e: sp.diff(e, dt).subs(dt, 0))
    dOm = (dM * helmert(C)).applyfunc(sp.simplify)
    want = sp.diag(*[_law("retraction_rhs", C, w) for w in omegas(C)])
    law, lhs = _law("retraction_rhs"), _law("retraction_lhs")
    steps = {
        "S = W^TW/n diagonal in the SVD basis": S.is_diagonal(),
        f"first-order re-whitened step gives d omega/dt == theory.laws retraction_rhs = {law}":
            vanishes(dOm - want),
        "theory.laws retraction_lhs == n(C log w + w^2/2) (no quartic term) and integrates retraction_rhs":
            vanishes(lhs - C_SYM * N_SYM * (C_SYM * sp.log(W_SYM) + W_SYM**2 / 2), sp.diff(lhs, W_SYM) * law - 1),
    }
    return verdict(steps, r"\frac{d\omega}{dt} = \frac1n\frac{\omega}{C+\omega^2}\ \Rightarrow\ n\Big(C\log\omega + "
                          r"\frac{\omega^2}{2}\Big) = a + t", f"C={C}: ")


#: math §6.4 quotes ``NC1 sqrt(t) -> 3.674`` for ``C = 4, N = 6`` (kappa = 1)
_SPEC_NC1_RATE = (4, 6, 1, 3.674)


@CHECKS.add("6.4", "asymptotics: growth, gap, ratio, NC1 rate", "general",
             "omega ~ (t/c3)^1/4, max/min - 1 = O(1/t), NC1 ~ (C-1) sqrt(c3/t)")
def asymptotics() -> Outcome:
    ex = laws.expressions()
    w = W_SYM
    # general results, for any positive constants of the closed form
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
    ser = sp.series(
        G.subs(sp.log(1 / u + delta), sp.log(1 + u * delta) - sp.log(u)).subs(sp.log(1 / u), -sp.log(u)), u, 0, 1
    ).removeO()
    lead = sp.simplify(ser.subs(u, 0))
    d1_sol = sp.solve(sp.Eq(lead, 0), d1)
    ok_gap = d1_sol == [Da / (2 * c3)]
    # ratio: t (w_i/w_j - 1) -> Da/4 with t = F(w_j) - a_j, w_i^2 = w_j^2 + Da/(2 c3 w_j^2)
    wi = sp.sqrt(w**2 + Da / (2 * c3 * w**2))
    ratio_lim = sp.limit((F - a) * (wi / w - 1), w, sp.oo)
    ok_ratio = vanishes(ratio_lim - Da / 4)
    # theory.laws' own closed form, growth law and NC1: t = closed_form_lhs(w) - a
    Cs, Ns, Ks = C_SYM, N_SYM, KAPPA_SYM
    t_of_w = ex["closed_form_lhs"] - A_SYM
    growth_laws = sp.limit(ex["growth"].subs(T_SYM, t_of_w) / w, w, sp.oo)
    # NC1 = sum_j nc1_renormalized(w_j) with all w_j ~ the same: sqrt(t) NC1 -> (C-1) sqrt(c3)
    nc1_lim = sp.simplify(sp.limit(sp.sqrt(t_of_w) * (Cs - 1) * ex["nc1_renormalized"], w, sp.oo))
    ok_nc1 = vanishes(nc1_lim - (Cs - 1) * sp.sqrt(ex["c3"]))
    C_, N_, k_, quoted = _SPEC_NC1_RATE
    val = float(nc1_lim.subs({Cs: C_, Ns: N_, Ks: k_}))
    want = (C_ - 1) * float(laws.constants(N_, C_, k_)[2]) ** 0.5  # (C-1) sqrt(c3) from theory.laws.constants
    steps = {
        f"lim c3 w^4/(t) = {growth} == 1": growth == 1,
        f"omega_i^2 - omega_j^2 = d1/omega^2 + O(omega^-4) with d1 = {d1_sol} == (a_i - a_j)/(2 c3)": ok_gap,
        f"lim t (omega_i/omega_j - 1) = {ratio_lim} (so max/min - 1 = O(1/t))": ok_ratio,
        f"theory.laws: lim growth(t(w))/w = {growth_laws} == 1": growth_laws == 1,
        f"lim sqrt(t) (C-1) nc1_renormalized = {nc1_lim} == (C-1) sqrt(c3)": ok_nc1,
        f"at C={C_}, N={N_}, kappa={k_}: {val:.6f} vs (C-1) sqrt(constants()[2]) = {want:.6f} and math §6.4's "
        f"quoted {quoted}": abs(val - want) <= 1e-12 * want and abs(val - quoted) < 5e-4,
    }
    return verdict(steps,
                   r"\omega_j \sim (t/c_3)^{1/4},\quad \omega_i^2-\omega_j^2 \sim \frac{a_i-a_j}{2c_3\omega^2},\quad "
                   r"t\Big(\frac{\omega_i}{\omega_j}-1\Big)\to\frac{a_i-a_j}{4},\quad \sqrt "
                   r"t\sum_j\omega_j^{-2}\to (C-1)\sqrt{c_3}")


def specs() -> list[CheckSpec]:
    return list(CHECKS)
