"""Reduced ODE, matrix ODE, feature-level projected flow and closed form agree (math §6.1-6.3, math §9 items 17-20)."""

import jax
import jax.numpy as jnp
import numpy as np

import simulate
import theory
import theory.laws

from .conftest import TIGHT, C, N, P


def test_three_routes_give_the_same_omega(routes):
    red, mat, feat = routes["reduced"], routes["matrix"], routes["features"]
    np.testing.assert_array_equal(red.times, feat.times)
    # at conftest.ROUTES_TOL (rtol 1e-12): measured 3.5e-12 (matrix) and 1.7e-12 (features) against reduced
    for other in (mat, feat):
        rel = np.max(np.abs(other.omega / red.omega - 1))
        assert rel < 1e-10, rel
    # all three against the closed form (Optimistix Newton in log w): measured <= 3.1e-12
    for traj in (red, mat, feat):
        assert np.max(np.abs(traj.omega / traj.closed_form_omega - 1)) < 1e-10
    # the singular values really moved: strictly increasing, the smallest more than doubled
    assert np.all(np.diff(red.omega, axis=0) > 0)
    assert red.omega[-1, -1] > 2 * red.omega[0, -1]


def test_feature_flow_stays_on_the_renormalised_manifold(routes):
    m = routes["features"].metrics
    # round-off level along the whole run; measured 3.9e-15, 6.7e-16, 1.4e-15 and 9.3e-16 (matrix)
    assert np.max(m["sigma_w_deviation"]) < 1e-12  # Sigma_W stays I
    assert np.max(m["global_mean_norm"]) < 1e-12  # mu_G stays 0
    assert np.max(m["singular_vector_drift"]) < 1e-12  # U, V fixed (math §6.2)
    assert np.max(routes["matrix"].metrics["singular_vector_drift"]) < 1e-12


def test_projected_invariant_constant(routes):
    """N C^2 log w + N C w^2 + (N/4) w^4 - t stays at its initial value (math §9 item 17)."""
    traj = routes["features"]
    lhs = theory.laws.numeric("closed_form_lhs")(traj.omega, N, C, 1.0)
    drift = traj.metrics["projected_invariant_drift"]
    # relative to the invariant (up to 5.7e3 here); measured 4.9e-12 at rtol 1e-12 (conftest.ROUTES_TOL)
    assert np.max(np.abs(drift) / np.maximum(1.0, np.abs(lhs))) < 1e-10


def test_central_path_metrics_agree_with_laws(routes):
    m = routes["features"].metrics
    np.testing.assert_allclose(m["l_central"], m["l_central_law"], rtol=1e-10)
    np.testing.assert_allclose(m["nc1"], m["nc1_law"], rtol=1e-12)  # measured 8.9e-16
    assert np.all(np.diff(m["l_central"]) < 0)


def test_envelope_gradient_equals_total_derivative():
    """central_path_gradient (W_LS held fixed) = d/dX of L(W_LS(X), b_LS(X), X) (math §9 item 12)."""
    labels = simulate.class_labels(C, N)
    X = simulate.random_initial_features(jax.random.PRNGKey(1), C, N, P)

    def total(x, labels):
        stats = theory.class_stats(x, labels, C)
        W, b = theory.least_squares_classifier(stats)
        return theory.decompose(stats, W, b)["loss"]

    g_total = jax.jit(jax.grad(total))(X, labels)
    g_env = jax.jit(simulate.central_path_gradient, static_argnums=2)(X, labels, C)
    np.testing.assert_allclose(g_env, g_total, rtol=1e-9, atol=1e-13)


def test_projection_is_orthogonal_onto_tangent_space():
    labels = simulate.class_labels(C, N)
    X = simulate.random_initial_features(jax.random.PRNGKey(2), C, N, P)
    D = jax.random.normal(jax.random.PRNGKey(3), X.shape)
    PD = simulate.project_tangent(X, labels, C, D)
    np.testing.assert_allclose(simulate.project_tangent(X, labels, C, PD), PD, atol=1e-12)  # idempotent
    assert float(jnp.max(jnp.abs(PD.mean(0)))) < 1e-13  # d mu_G = 0
    Z = X - theory.class_stats(X, labels, C).means[labels]
    PW = PD - simulate.class_means(PD, labels, C)[labels]
    dS = Z.T @ PW
    assert float(jnp.max(jnp.abs(dS + dS.T))) < 1e-12  # d Sigma_W = 0
    assert abs(float(jnp.sum((D - PD) * PD))) < 1e-10  # orthogonal
    # the projected gradient only moves class means (within-class deviations frozen)
    G = simulate.projected_rhs(0.0, X, (labels, C, 1.0))
    GW = G - simulate.class_means(G, labels, C)[labels]
    assert float(jnp.max(jnp.abs(GW))) < 1e-14


def test_projected_rhs_shortcut_equals_general_projection():
    """projected_rhs (class-mean part of the gradient minus its mean) = project_tangent of the central-path
    gradient, at a generic point off X_set (Sigma_W != I, mu_G != 0) and on X_set."""
    labels = simulate.class_labels(C, N)
    H = 2.0 * jax.random.normal(jax.random.PRNGKey(4), (C * N, P)) + 0.5
    for X in (H, theory.renormalize(H, theory.class_stats(H, labels, C))):
        D = simulate.central_path_gradient(X, labels, C)
        general = -simulate.project_tangent(X, labels, C, D)
        fast = simulate.projected_rhs(0.0, X, (labels, C, 1.0))
        err, scale = float(jnp.max(jnp.abs(fast - general))), float(jnp.max(jnp.abs(D)))
        assert err < 1e-14 * max(scale, 1.0), err


def test_kappa_conventions_rescale_time():
    w0 = jnp.array([2.0, 1.0, 0.5])
    t = jnp.array([0.0, 10.0, 100.0])
    for name, k in (("sum", C * N), ("means", N)):
        a = simulate.integrate_reduced(w0, t, N, C, kappa=name, options=TIGHT)
        b = simulate.integrate_reduced(w0, t * k, N, C, kappa=1.0, options=TIGHT)
        np.testing.assert_allclose(a, b, rtol=1e-8)
        np.testing.assert_allclose(simulate.closed_form_omega(w0, t, N, C, name), a, rtol=1e-8)


def test_jit_and_vmap():
    t = jnp.geomspace(1.0, 1e4, 7)
    W0 = jnp.array([[3.0, 1.0, 0.2], [1.0, 1.0, 1.0], [5.0, 0.5, 0.1]])
    f = jax.jit(jax.vmap(lambda w: simulate.integrate_reduced(w, t, N, C, options=TIGHT)))
    g = jax.jit(jax.vmap(lambda w: simulate.closed_form_omega(w, t, N, C)))
    batch, closed = f(W0), g(W0)
    for i in range(3):
        np.testing.assert_allclose(batch[i], simulate.integrate_reduced(W0[i], t, N, C, options=TIGHT), rtol=1e-13)
        np.testing.assert_allclose(closed[i], batch[i], rtol=1e-8)
    # chunked vmap (lax.map over chunks) gives the same answers; the batch as one max-norm system agrees to 1e-8
    ens = simulate.integrate_reduced_ensemble(W0, t, N, C, options=TIGHT, batch_size=2)
    np.testing.assert_allclose(ens, batch, rtol=1e-13)
    # compiled once: a second call (other initial values, same shapes and settings) does not retrace
    traces = simulate.reduced._integrate_ensemble._cache_size()
    ens2 = simulate.integrate_reduced_ensemble(2.0 * W0, t, N, C, options=TIGHT, batch_size=2)
    assert simulate.reduced._integrate_ensemble._cache_size() == traces
    np.testing.assert_allclose(ens2[0], simulate.integrate_reduced(2.0 * W0[0], t, N, C, options=TIGHT), rtol=1e-13)
    one = simulate.integrate_reduced(W0, t, N, C, options=TIGHT.replace(error_norm="max"))
    np.testing.assert_allclose(jnp.swapaxes(one, 0, 1), batch, rtol=1e-8)


def test_rank_deficient_start_keeps_zero_singular_values():
    """A zero singular value stays zero (math §6.4 item 5, math §9 item 23)."""
    kw = dict(num_classes=C, per_class=N, dim=P, t_max=500.0, seed=1, num_times=25, rank=2, options=TIGHT)
    feat = simulate.simulate("features", **kw)
    red = simulate.simulate("reduced", **kw)
    assert feat.omega.shape == (25, C - 1)
    assert np.all(feat.omega[:, :2] > 0.1)
    # zero singular value (round-off ~1e-16 in theory.snr_singular_values) stays at round-off level; it is an
    # unstable equilibrium (growth rate kappa/(N C^2)), so only moderate times are meaningful
    assert np.max(np.abs(red.closed_form_omega[:, 2])) < 1e-12
    assert np.max(np.abs(red.omega[:, 2])) < 1e-12
    assert np.max(np.abs(feat.omega[:, 2])) < 1e-10
    np.testing.assert_allclose(feat.omega[:, :2], red.omega[:, :2], rtol=1e-8)
    s = feat.summary()
    assert s["final_omega"][2] < 1e-10
    print("rank-deficient start: final omega", s["final_omega"])
    # an exactly zero singular value stays exactly zero
    w = simulate.integrate_reduced(jnp.array([2.0, 1.0, 0.0]), jnp.array([0.0, 1e3, 1e6]), N, C, options=TIGHT)
    assert np.all(np.asarray(w[:, 2]) == 0.0)
    assert np.all(
        np.asarray(simulate.closed_form_omega(jnp.array([2.0, 1.0, 0.0]), jnp.array([0.0, 1e6]), N, C))[:, 2] == 0
    )


def test_ensemble_shapes():
    traj = simulate.simulate(
        "reduced", num_classes=C, per_class=N, dim=P, t_max=100.0, seed=0, num_times=25, ensemble=3
    )
    assert traj.omega.shape == (3, 25, C - 1)
    assert traj.closed_form_omega.shape == (3, 25, C - 1)
    assert traj.metrics["nc1"].shape == (3, 25)
    assert traj.gram_start.shape == (3, C, C)
    assert not np.allclose(traj.omega[0], traj.omega[1])
    assert traj.summary()["closed_form_max_rel_error"] < 1e-6


def test_integrate_does_not_recompile_per_size():
    """_solve.integrate passes N, C (and the extra values) as traced arrays: a new N or C reuses the program."""
    from simulate._solve import integrate

    traces = []

    def rhs(t, y, args):
        traces.append(1)  # runs only while tracing
        N, C, kappa = args
        return -(kappa / (N * C)) * y

    y0, t = jnp.ones(3), jnp.array([0.0, 1.0, 2.0])
    for n, c in ((6, 4), (7, 4), (6, 5)):
        y = integrate(rhs, y0, t, 1.0, n, c, options=TIGHT)
        np.testing.assert_allclose(y[-1], np.exp(-2.0 / (n * c)), rtol=1e-9)
    n_traces = len(traces)
    integrate(rhs, y0, t, 1.0, 9, 3, options=TIGHT)
    assert len(traces) == n_traces  # a fourth size: no new trace
