"""Parity with rhubarbwu/neural-collapse on the same small float64 arrays (math §2.3; benchmarks/bench_parity.py).

Runs only when ``NC_REFERENCE`` names a checkout of https://github.com/rhubarbwu/neural-collapse (e.g.
``git clone https://github.com/rhubarbwu/neural-collapse /tmp/nc-ref; NC_REFERENCE=/tmp/nc-ref pytest ...``); the
comparison itself is :func:`benchmarks.bench_parity.compare`.  Tolerance: relative 1e-9 (``AGREE_REL``) where the
definitions agree (float64 sums in another order, an SVD against ARPACK: observed <= 1e-14); rows that use each
library's own default where the conventions differ must differ by more than that, and each is followed by the
aligned row that agrees.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.bench_parity import AGREE_REL, check, compare

REFERENCE = os.environ.get("NC_REFERENCE")

pytestmark = pytest.mark.skipif(
    not REFERENCE, reason="NC_REFERENCE is not set (a path to a rhubarbwu/neural-collapse checkout): parity not run"
)


@pytest.fixture(scope="module")
def rows():
    return compare(REFERENCE, C=10, p=20, n=1000, tile=4)


def test_every_row_agrees_or_differs_as_stated(rows):
    assert check(rows) == []


def test_every_metric_has_an_aligned_row_that_agrees(rows):
    # each metric that differs under the default conventions agrees once aligned (same data, same metric name)
    agreed = {(r["data"], r["metric"]) for r in rows if r["expect"] == "agree" and r["rel"] <= AGREE_REL}
    differing = {(r["data"], r["metric"]) for r in rows if r["expect"] == "differ" and "float32" not in r["metric"]}
    assert differing and differing <= agreed


def test_both_class_balances_and_the_field_metrics_are_covered(rows):
    metrics = {r["metric"].split(" (")[0] for r in rows}
    for name in ("NC1 covariance_ratio 'pinv'", "NC2 simplex_etf_error", "CDNV average", "log kernel variance",
                 "riesz kernel mean", "interference grid", "OOD orthogonality_deviation", "NC4 clf_ncc_agreement"):
        assert name in metrics
    assert {r["data"] for r in rows} == {"balanced", "imbalanced", "exact collapse"}
