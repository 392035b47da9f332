"""The symbolic building blocks agree with the numeric theory package (same formulas, two codes)."""

from __future__ import annotations

import numpy as np
import sympy as sp

import theory
from theory.symbolic.model import (
    LAMBDA,
    class_stats,
    decomposition_terms,
    notebook_stats,
    quadratic_terms,
    rational_data,
    sample_loss,
)


def _arrays(data):
    X = np.array([[float(v) for v in h] for _, h in data.samples()])
    y = np.array([c for c, _ in data.samples()])
    return X, y


def test_weighted_stats_are_exact_and_notebook_stats_are_not():
    data = rational_data((1, 2, 4), 2, seed=7)
    st = class_stats(data)
    assert st.sigma_t == st.sigma_w + st.sigma_b
    # Sigma_T as the total covariance about the sample mean
    tot = sum(((h - st.mu_g) * (h - st.mu_g).T for _, h in data.samples()), sp.zeros(2, 2)) / data.n
    assert tot == st.sigma_t
    nb = notebook_stats(data)
    assert nb.sigma_t != tot


def test_symbolic_terms_match_numeric_decompose():
    data = rational_data((2, 3, 4), 2, seed=8)
    lam = sp.Rational(1, 5)
    st = class_stats(data)
    A, B = quadratic_terms(st, lam, True)
    V = B * A.inv()
    Wt = sp.Matrix([[1, -2, sp.Rational(1, 3)], [0, 1, 1], [2, 1, -1]])
    l1, l23, lp = decomposition_terms(st, Wt, V, lam, True, A)
    loss = sample_loss(data, Wt, lam, True)
    X, y = _arrays(data)
    stats = theory.class_stats(X, y, num_classes=3)
    W = np.array(Wt[:, :2].tolist(), dtype=float)
    b = np.array(Wt[:, 2].tolist(), dtype=float).ravel()
    d = theory.to_float_dict(theory.decompose(stats, W, b, lam=float(lam)))
    np.testing.assert_allclose([d["loss"], d["l_nc1"], d["l_nc23"], d["l_perp"]],
                               [float(loss), float(l1), float(l23), float(lp)], rtol=1e-12)
    Wls, bls = theory.least_squares_classifier(stats, lam=float(lam), bias=True)
    np.testing.assert_allclose(np.asarray(Wls), np.array(V[:, :2].tolist(), dtype=float), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(bls), np.array(V[:, 2].tolist(), dtype=float).ravel(), rtol=1e-10, atol=1e-12)


def test_lambda_symbol_is_the_papers_ridge():
    data = rational_data((1, 1), 1, seed=9)
    W = sp.Matrix([[2, 0], [0, 3]])
    L = sample_loss(data, W, LAMBDA, True)
    assert sp.expand(L - L.subs(LAMBDA, 0)) == LAMBDA / 2 * 13
