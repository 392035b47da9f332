"""The run format: schema file, read_run_log on run dirs / JSONL / CSV (export-csv round trip), one-line errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from benchmarks.bench_schema import full_line  # the benchmark times the line the tests check
from empirical import runs
from empirical.export import export_csv, metrics_to_csv
from empirical.monitor import NCMonitor
from empirical.schema import SCHEMA_VERSION, RunLogError, read_run_log, run_schema, term_lambda_keys


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real run: a digits MLP measured by NCMonitor at initialisation on one sample per class (which gives
    null quantities with warnings, so None-valued list keys occur) and after each of three SGD epochs."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)[:600]
    y = torch.tensor(y)[:600]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    out = tmp_path_factory.mktemp("run")
    mon = NCMonitor(net, net[-1], num_classes=10, out=out, weight_decay=5e-4)
    # a one-sample-per-class subset: Sigma_W = 0, so the SNR singular values are undefined (None + warning)
    first = torch.stack([torch.nonzero(y == c)[0, 0] for c in range(10)])
    mon.measure(0, (X[first], y[first]))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for epoch in range(1, 4):
        for idx in torch.randperm(600).split(50):
            opt.zero_grad()
            nn.MSELoss()(net(X[idx]), nn.functional.one_hot(y[idx], 10).float()).backward()
            opt.step()
        mon.measure(epoch, (X, y), lr_weighted_steps=0.05 * 12 * epoch)
    return out


def test_schema_file_matches_code():
    schema = run_schema()
    assert schema["x-schema-version"] == SCHEMA_VERSION
    assert schema["$defs"]["metrics_line"]["required"] == ["epoch"]
    lam = term_lambda_keys()
    assert lam["l_nc1"] == "lam" and lam["l_perp_notebook"] == "lam_notebook" and lam["l_central_lam0"] == 0.0
    # every key empirical.measure writes is documented
    from empirical.measurement import METRIC_KEYS

    assert set(METRIC_KEYS) <= set(schema["$defs"]["metrics_line"]["properties"])


def _same(a, b):
    """Records equal, reading None and an absent key alike (CSV cannot tell them apart)."""
    keys = {k for k, v in a.items() if v is not None} | {k for k, v in b.items() if v is not None}
    for k in keys:
        x, y = a.get(k), b.get(k)
        assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), (k, x, y)


def test_round_trips(real_run):
    records = runs.read_metrics(real_run)
    assert records[0]["snr_singular_values"] is None and records[0]["warnings"]
    assert len(records[-1]["snr_singular_values"]) == 9
    log = read_run_log(real_run)
    assert log.format == "run_dir" and log.records == records and log.config_value("num_classes") == 10
    assert read_run_log(real_run / runs.METRICS_FILE).records == records
    csv_path = export_csv(real_run, real_run / "export" / "metrics.csv")
    header = csv_path.read_text().splitlines()[0].split(",")
    assert "snr_singular_values" not in header  # no always-empty column beside the _0.._8 columns
    assert [h for h in header if h.startswith("snr_singular_values")] == [f"snr_singular_values_{i}" for i in range(9)]
    back = read_run_log(csv_path)
    assert back.format == "csv" and back.config == {} and back.notes
    assert len(back.records) == len(records)
    for a, b in zip(back.records, records):
        _same(a, b)  # floats written with repr: exact
    assert back.records[-1]["snr_singular_values"] == records[-1]["snr_singular_values"]
    assert back.records[0]["warnings"] == records[0]["warnings"]


def test_term_lambdas(real_run, tmp_path):
    log = read_run_log(real_run)
    lam = 10 * 5e-4 / 2
    assert log.term_lambda("l_nc1") == [pytest.approx(lam, rel=1e-15)] * 4
    assert log.term_lambda("l_nc23_notebook") == [pytest.approx(2.5e-4, rel=1e-15)] * 4
    assert log.term_lambda("l_perp_lam0") == [0.0] * 4
    assert log.at_lambda_zero("l_perp_lam0") and not log.at_lambda_zero("l_perp")
    with pytest.raises(KeyError, match="nc1"):
        log.term_lambda("nc1")
    # a foreign log without 'lam' in its lines: the lambda comes from config.json, or is unknown
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "l_nc1": 0.1}\n')
    assert read_run_log(tmp_path).term_lambda("l_nc1") == [None]
    assert not read_run_log(tmp_path).at_lambda_zero("l_nc1")
    (tmp_path / "config.json").write_text('{"config": {"lam": 0.0}}')
    assert read_run_log(tmp_path).at_lambda_zero("l_nc1")


@pytest.mark.parametrize(
    "line, message",
    [
        ("[1, 2]", r"metrics.jsonl:2: a metrics line must be a JSON object, got an array \(\[1, 2\]\)"),
        ('{"epoch": 3, "nc1": "small"}', r"metrics.jsonl:2: key 'nc1': expected a number or null, got a string"),
        ('{"nc1": 0.5}', r"metrics.jsonl:2: missing required key 'epoch'"),
        ('{"epoch": 2.5}', r"metrics.jsonl:2: key 'epoch': expected an integer, got a number \(2.5\)"),
        ('{"epoch": -1}', r"metrics.jsonl:2: key 'epoch': -1 is less than the minimum of 0"),
        (
            '{"epoch": 1, "snr_singular_values": [1, "x"]}',
            r"metrics.jsonl:2: key 'snr_singular_values.1': expected a number",
        ),
        ('{"epoch": 1, "warnings": "w"}', r"metrics.jsonl:2: key 'warnings': expected an array, got a string"),
        ('{"epoch": 1,, }\n{"epoch": 2}', r"metrics.jsonl:2: not valid JSON"),
    ],
)
def test_bad_jsonl_lines(tmp_path, line, message):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n' + line + "\n")
    with pytest.raises(RunLogError, match=message) as info:
        read_run_log(tmp_path)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epoch": 1, "nc')  # truncated last line: kept, noted
    log = read_run_log(tmp_path)
    assert [r["epoch"] for r in log.records] == [0] and any("truncated last line" in n for n in log.notes)
    (tmp_path / "config.json").write_text('{"config": {"num_classes": "ten"}}')
    with pytest.raises(RunLogError, match=r"config.json: key 'config.num_classes': expected an integer, got a string"):
        read_run_log(tmp_path)
    (tmp_path / "config.json").write_text('[]')
    with pytest.raises(RunLogError, match=r"config.json: config.json must be a JSON object"):
        read_run_log(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(RunLogError, match="newer"):
        read_run_log(tmp_path)
    with pytest.raises(RunLogError, match="no such file"):
        read_run_log(tmp_path / "nothing")
    (tmp_path / "log.txt").write_text("")
    with pytest.raises(RunLogError, match="unknown log format '.txt'"):
        read_run_log(tmp_path / "log.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunLogError, match="no metrics.jsonl"):
        read_run_log(empty)
    (tmp_path / "bad.csv").write_text("epoch,nc1\n0,0.5\n1,abc\n")
    with pytest.raises(RunLogError, match=r"bad.csv:3: key 'nc1': expected a number or null, got a string \(\"abc\"\)"):
        read_run_log(tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("epoch,nc1\n0\n")
    with pytest.raises(RunLogError, match=r"short.csv:2: 1 cells but the header has 2 columns"):
        read_run_log(tmp_path / "short.csv")
    (tmp_path / "noepoch.csv").write_text("nc1\n0.5\n")
    with pytest.raises(RunLogError, match=r"noepoch.csv:2: missing required key 'epoch'"):
        read_run_log(tmp_path / "noepoch.csv")


def test_csv_from_other_tools(tmp_path):
    """A CSV another tool wrote (other column order, extra columns) reads into the same records."""
    recs = [{"epoch": 0, "nc1": 0.5, "snr_singular_values": [2.0, 1.0], "mine": "x"},
            {"epoch": 5, "nc1": 0.25, "snr_singular_values": None}]
    (tmp_path / "m.csv").write_text(metrics_to_csv(recs))
    back = read_run_log(tmp_path / "m.csv").records
    assert back[0] == recs[0]
    _same(back[1], recs[1])


# ---------------------------------------------------------------- the checks a JSON Schema cannot state

_C10 = '"class_counts": [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]'
_SNR9 = "[9, 8, 7, 6, 5, 4, 3, 2, 1]"


@pytest.mark.parametrize("line, message", [
    # JSON NaN / Infinity tokens (Python's json reads them; strict JSON has none)
    ('{"epoch": 1, "snr_singular_values": [9, 8, 7, NaN, 5, 4, 3, 2, 1], ' + _C10 + '}',
     r"metrics.jsonl:2: key 'snr_singular_values.3': nan is not a finite number"),
    ('{"epoch": 1, "snr_singular_values": [Infinity, 8, 7, 6, 5, 4, 3, 2, 1], ' + _C10 + '}',
     r"metrics.jsonl:2: key 'snr_singular_values.0': inf is not a finite number"),
    ('{"epoch": 1, "snr_singular_values": [4, 3, 2, 1], ' + _C10 + '}',
     r"metrics.jsonl:2: key 'snr_singular_values': 4 values, expected C - 1 = 9 "
     r"\(C = 10, the length of class_counts\)"),
    ('{"epoch": 1, "snr_singular_values": [4, 3, 2, 1], "snr_rank": 3, ' + _C10 + '}',
     r"key 'snr_singular_values': 4 values, expected C - 1 = 9 or min\(snr_rank, C - 1\) = 3"),
    ('{"epoch": 1, "train_error": 5.0}', r"metrics.jsonl:2: key 'train_error': 5.0 is greater than the maximum of 1"),
    ('{"epoch": 1, "test_error": -0.1}', r"metrics.jsonl:2: key 'test_error': -0.1 is less than the minimum of 0"),
    ('{"epoch": 1, "nc4": Infinity}', r"metrics.jsonl:2: key 'nc4': inf is greater than the maximum of 1"),
    ('{"epoch": 0, "nc1": 0.5}', r"metrics.jsonl:2: key 'epoch': epoch 0 repeated \(first at line 1\)"),
    ('{"epoch": 1, "flow_time": -1.0}', r"metrics.jsonl:2: key 'flow_time': -1.0 is less than the minimum of 0"),
    ('{"epoch": 1, "tr_sigma_w": -1e-3}', r"metrics.jsonl:2: key 'tr_sigma_w': -0.001 is less than the minimum of 0"),
])
def test_semantic_checks(tmp_path, line, message):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n' + line + "\n" + '{"epoch": 7}\n')
    with pytest.raises(RunLogError, match=message) as info:
        read_run_log(tmp_path)
    assert "\n" not in str(info.value)


def test_snr_length_rule(tmp_path):
    """C - 1 values (C from class_counts, else config.num_classes), or min(snr_rank, C - 1) for a log that does
    not zero-pad; unchecked when C is unknown."""
    lines = ['{"epoch": 0, "snr_singular_values": ' + _SNR9 + ', ' + _C10 + '}',
             '{"epoch": 1, "snr_singular_values": [3, 2, 1], "snr_rank": 3, "snr_support": "range", ' + _C10 + '}',
             '{"epoch": 2, "snr_singular_values": [3, 2]}',
             '{"epoch": 3, "snr_singular_values": [1.5, null], "flow_time": 0.25, "tr_sigma_w": 2.0}']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    # no config.json: C is unknown on the lines without class_counts, so their lengths are not checked
    assert [len(r["snr_singular_values"]) for r in read_run_log(tmp_path).records] == [9, 3, 2, 2]
    (tmp_path / "config.json").write_text('{"config": {"num_classes": 3}}')  # C = 3 where class_counts is absent
    assert len(read_run_log(tmp_path).records) == 4
    (tmp_path / "config.json").write_text('{"config": {"num_classes": 4}}')
    with pytest.raises(RunLogError, match=r"metrics.jsonl:3: key 'snr_singular_values': 2 values, expected "
                                          r"C - 1 = 3 \(C = 4, config.num_classes\)"):
        read_run_log(tmp_path)


def test_tolerant_mode_drops_bad_lines_with_notes(tmp_path):
    lines = ['{"epoch": 0, "nc1": 1.0}',
             '{"epoch": 1, "train_error": 5.0}',
             '{"epoch": 2, "nc1": 0.5',  # not JSON, and not the last line
             '{"epoch": 3, "snr_singular_values": [NaN, 1.0]}',
             '{"epoch": 4, "nc1": 0.25}',
             '{"epoch": 4, "nc1": 0.2}',  # repeated: the later line is dropped
             '{"epoch": 5, "nc1": 0.1}',
             '{"epoch": 6, "nc']  # a killed run's truncated last line
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    with pytest.raises(RunLogError, match="metrics.jsonl:2: key 'train_error'"):
        read_run_log(tmp_path)
    log = read_run_log(tmp_path, tolerant=True)
    assert [(r["epoch"], r["nc1"]) for r in log.records] == [(0, 1.0), (4, 0.25), (5, 0.1)]
    dropped = [n for n in log.notes if n.endswith("line dropped")]
    assert [n.split("metrics.jsonl:")[1].split(":")[0] for n in dropped] == ["2", "3", "4", "6"]
    assert "key 'train_error'" in dropped[0] and "not valid JSON" in dropped[1]
    assert "key 'snr_singular_values.0': nan is not a finite number" in dropped[2]
    assert "epoch 4 repeated" in dropped[3]
    assert any("truncated last line ignored" in n for n in log.notes)
    (tmp_path / "m.csv").write_text("epoch,nc1,nc4\n0,0.5,0.1\n1,0.4\n2,0.3,2.0\n3,0.2,0.0\n")
    log = read_run_log(tmp_path / "m.csv", tolerant=True)
    assert [r["epoch"] for r in log.records] == [0, 3]
    assert len([n for n in log.notes if "line dropped" in n]) == 2 and "m.csv:3: 2 cells" in log.notes[-2]


def test_real_rank_deficient_log_has_c_minus_1_values(tmp_path):
    """A network with dead ReLU units (rank Sigma_W = 3 < C - 1 = 9): NCMonitor logs the SNR on the range,
    zero-padded to C - 1 values (theory.snr._top_singular_values), and the reader accepts the line."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X[:500] / 16.0, dtype=torch.float32), torch.tensor(y[:500])
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 6), nn.ReLU(), nn.Linear(6, 10))
    with torch.no_grad():
        net[0].weight[3:].zero_()
        net[0].bias[3:] = -1.0  # units 3-5 dead on every input
        net[0].bias[:3] = 5.0  # units 0-2 alive on every input
    line = NCMonitor(net, net[-1], num_classes=10, out=tmp_path).measure(0, (X, y))
    assert line["snr_support"] == "range" and line["snr_rank"] == 3 and line["snr_dim"] == 6
    assert len(line["snr_singular_values"]) == 9 and line["snr_singular_values"][3:] == [0.0] * 6
    assert read_run_log(tmp_path).records[0]["snr_singular_values"] == line["snr_singular_values"]


def test_fast_line_check_never_accepts_what_jsonschema_refuses():
    """The reader's plain-Python line check (schema._fast_line_check) is a fast path only: on valid and broken
    lines alike it accepts a line only when jsonschema does."""
    from empirical.schema import _fast_line_check, _validator

    fast, slow = _fast_line_check(), _validator("metrics_line")
    assert fast is not None  # the run format uses only keywords the fast path handles
    good = full_line(3)
    variants = [good, {**good, "epoch": 2.0}, {**good, "snr_support": "partial"}, {**good, "snr_rank": True}]
    for key in good:
        for bad in (None, -1, 2, -0.5, 1.5, "x", [1.0, "x"], [-1], True, {"a": 1}):
            variants.append({**good, key: bad})
    variants.append({k: v for k, v in good.items() if k != "epoch"})
    refused = 0
    for line in variants:
        ok = not list(slow.iter_errors(line))
        refused += not ok
        assert not fast(line) or ok, line
        # and refuses only what jsonschema refuses, but for jsonschema's integer 2.0 (then jsonschema decides)
        assert fast(line) == ok or isinstance(line.get("epoch"), float), line
    assert refused > 100  # the variants do exercise the refusals


def test_full_log_is_read_as_jsonschema_accepts_it(tmp_path):
    """A 2,000-line log with every key reads back whole (its lines are ones jsonschema accepts: the first 50
    checked).  Its speed against jsonschema (why the reader has a fast path) is a benchmark: benchmarks.bench_schema."""
    from empirical.schema import _validator

    lines = [full_line(e) for e in range(2000)]
    (tmp_path / "metrics.jsonl").write_text("".join(runs.json_line(r) + "\n" for r in lines))
    records = read_run_log(tmp_path).records
    assert len(records) == 2000 and records[1234]["epoch"] == 1234
    slow = _validator("metrics_line")
    assert all(not list(slow.iter_errors(r)) for r in lines[:50])
