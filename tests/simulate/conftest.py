"""Shared small-size trajectories for the simulate tests (computed once per session; C=4, N=6, p=9)."""

import pytest

import simulate

C, N, P = 4, 6, 9
TIGHT = simulate.SolverOptions(rtol=1e-10, atol=1e-12)
# the three-route comparison runs tighter still, so that the projected invariant holds to the write-up's 1e-10
# (math §9 item 17; at TIGHT its relative drift is 2.3e-10, here 4.9e-12)
ROUTES_TOL = simulate.SolverOptions(rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="session")
def routes():
    """The same initial point integrated by the reduced ODE, the matrix ODE and the feature-level flow to t=2000."""
    kw = dict(num_classes=C, per_class=N, dim=P, t_max=2000.0, seed=3, num_times=25, options=ROUTES_TOL)
    return {flow: simulate.simulate(flow, **kw) for flow in ("reduced", "matrix", "features")}


@pytest.fixture(scope="session")
def long_reduced():
    """Reduced ODE to t = 1e8 (features reconstructed, metrics from theory)."""
    return simulate.simulate(
        "reduced", num_classes=C, per_class=N, dim=P, t_max=1e8, seed=3, num_times=25, options=TIGHT
    )
