"""AimQL: run and metric queries on a real repo with mixed params, contexts and archived runs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aim_core import Repo, Run
from aim_core.errors import QueryError

LOSS_TRAIN = {"subset": "train"}
LOSS_VAL = {"subset": "val"}


def _train(run: Run, name: str, context: dict, values: list[float]) -> None:
    for step, value in enumerate(values):
        run.track(value, name=name, step=step, epoch=step // 2, context=context)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Four runs: alpha/beta (cls), delta (det, failed), gamma (archived, no hparams)."""
    path = tmp_path_factory.mktemp("aimql")
    hashes = {}

    alpha = Run(repo=path, experiment="cls", system_tracking_interval=None)
    alpha.name = "alpha"
    alpha.add_tag("baseline")
    alpha["hparams"] = {"lr": 0.01, "opt": "adam", "layers": [64, 32]}
    alpha["seed"] = 1
    alpha["flags"] = {"amp": True, "note": '{"looks": "like json"}', "pick": "seed"}
    _train(alpha, "loss", LOSS_TRAIN, [1.0, 0.6, 0.3])
    _train(alpha, "loss", LOSS_VAL, [1.1, 0.7, 0.4])
    _train(alpha, "acc", LOSS_VAL, [0.5, 0.8])
    alpha.close()

    beta = Run(repo=path, experiment="cls", system_tracking_interval=None)
    beta.name = "beta"
    beta["hparams"] = {"lr": 0.1, "opt": "SGD"}
    _train(beta, "loss", LOSS_TRAIN, [2.0, 1.5])
    _train(beta, "loss", LOSS_VAL, [2.1, 0.9])
    beta.close()

    gamma = Run(repo=path, experiment="det", system_tracking_interval=None)
    gamma.name = "gamma"
    _train(gamma, "loss", LOSS_TRAIN, [0.1])
    _train(gamma, "loss", {}, [0.05])
    gamma.archived = True
    gamma.close()

    delta = Run(repo=path, experiment="det", system_tracking_interval=None)
    delta.name = "delta"
    delta["hparams", "lr"] = 0.001
    delta["hparams", "opt"] = "adam"
    _train(delta, "acc", {"subset": "test", "dataloader": 1}, [0.25, 0.75])
    delta.close(status="failed")

    for run in (alpha, beta, gamma, delta):
        hashes[run.name] = run.hash
    result = Repo(path)
    result.hashes = hashes
    return result


def names(collection) -> set[str]:
    """Run names of a query_runs result."""
    return {match.run.name for match in collection}


def metric_keys(collection) -> set[tuple]:
    """(run name, metric name, sorted context items) of a query_metrics result."""
    return {(m.run.name, m.name, tuple(sorted(m.context.to_dict().items())))
            for m in collection}


RUN_QUERIES = [
    ("", {"alpha", "beta", "delta"}),
    ("run.hparams.lr > 0.005", {"alpha", "beta"}),
    ("run.hparams.lr < 0.05", {"alpha", "delta"}),  # gamma has no lr: ordering is false
    ("run.hparams.lr <= 0.05 or run.hparams.lr >= 0.05", {"alpha", "beta", "delta"}),
    ("run.hparams.lr == None", set()),  # the only run without lr is archived
    ("run.hparams.lr == None and run.archived", {"gamma"}),
    ("run.hparams.missing.deeper == None", {"alpha", "beta", "delta"}),
    ('run["hparams", "opt"] == "adam"', {"alpha", "delta"}),
    ('run["hparams"]["opt"] == "SGD"', {"beta"}),
    ('run.hparams.opt.lower() == "sgd"', {"beta"}),
    ("run.seed == 1", {"alpha"}),
    ("run.seed != 1", {"beta", "delta"}),
    ('run.name.startswith("d") or run.name.endswith("ta")', {"beta", "delta"}),
    ('re.match("al", run.name)', {"alpha"}),
    ('re.search("ta$", run.name)', {"beta", "delta"}),
    ('"baseline" in run.tags', {"alpha"}),
    ('"baseline" not in run.tags', {"beta", "delta"}),
    ('run.experiment == "det"', {"delta"}),
    ('run.experiment in ["det", "nope"]', {"delta"}),
    ('run.status == "failed"', {"delta"}),
    ('run.status == "finished" and run.active == False', {"alpha", "beta"}),
    ("run.archived", {"gamma"}),
    ("not run.archived", {"alpha", "beta", "delta"}),
    ("SELECT loss IF run.hparams.lr >= 0.1", {"beta"}),
    ("select metric.last if run.seed == 1", {"alpha"}),
    ("len(run.hparams.layers) == 2 and max(run.hparams.layers) == 64", {"alpha"}),
    ("run.hparams.layers[1] == 32", {"alpha"}),
    ("run.hparams.lr * 10 > 0.5", {"beta"}),
    ("abs(run.hparams.lr - 0.1) < 1e-9", {"beta"}),
    ("round(run.hparams.lr, 2) == 0.01", {"alpha"}),
    ("0.005 < run.hparams.lr < 0.05", {"alpha"}),
    ('run.metrics["loss", {"subset": "val"}].last < 0.5', {"alpha"}),
    ('run.metrics["loss", {"subset": "val"}].last_step == 1', {"beta"}),
    ('run.metrics["acc", {"subset": "test", "dataloader": 1}].max == 0.75', {"delta"}),
    ('run.metrics["loss"].last == None', {"alpha", "beta", "delta"}),
    ('run.metrics["loss"].last < 0.1 and run.archived', {"gamma"}),
    ("run.created_at > datetime(2020, 1, 1) and run.duration >= 0", {"alpha", "beta", "delta"}),
    ("run.created_at.year < 2000", set()),
    ("run.flags.amp == True and run.flags.amp is True", {"alpha"}),
    ('run.flags.note == \'{"looks": "like json"}\' and run.flags.note.startswith("{")',
     {"alpha"}),
    ('"amp" in run.flags', {"alpha"}),
    ('"flags" in run and "seed" in run', {"alpha"}),
    ("run[run.flags.pick] == 1", {"alpha"}),  # a key computed from data
    ('run.hparams == {"lr": 0.1, "opt": "SGD"}', {"beta"}),
    ('run.hparams.get("opt") == "SGD"', {"beta"}),
    ('len(run.hparams.keys()) == 2', {"beta", "delta"}),
    ('run.name in ["alpha", "gamma"]', {"alpha"}),
    ('run.hash == None', set()),
]


@pytest.mark.parametrize(("query", "expected"), RUN_QUERIES)
def test_query_runs(repo, query, expected):
    assert names(repo.query_runs(query)) == expected


def test_same_results_without_sqlite_json_functions(repo, monkeypatch):
    """When the catalog cannot be read through SQLite's JSON functions, full entries are used."""
    import sqlite3

    import aim_core.query.results

    def no_json(*args, **kwargs):
        raise sqlite3.OperationalError("no such function: json_extract")

    monkeypatch.setattr(aim_core.query.results, "scan", no_json)
    for query, expected in RUN_QUERIES:
        assert names(repo.query_runs(query)) == expected, query
    for query, expected in METRIC_QUERIES:
        assert metric_keys(repo.query_metrics(query)) == expected, query


def test_query_runs_by_hash_and_result_api(repo):
    alpha = repo.hashes["alpha"]
    result = repo.query_runs(f'run.hash == "{alpha}"')
    assert len(result) == 1
    (match,) = result.iter_runs()
    assert match.hash == alpha and match.run.hash == alpha
    assert match.run["hparams"]["lr"] == 0.01
    frame = repo.query_runs("run.hparams.lr > 0").dataframe()
    assert sorted(frame["name"]) == ["alpha", "beta", "delta"]
    assert set(frame["hparams.lr"]) == {0.01, 0.1, 0.001}
    assert set(frame["status"]) == {"finished", "failed"}


def _key(run, name, context):
    return run, name, tuple(sorted(context.items()))


METRIC_QUERIES = [
    ('metric.name == "loss" and metric.context.subset == "val"',
     {_key("alpha", "loss", LOSS_VAL), _key("beta", "loss", LOSS_VAL)}),
    ('metric.context == {"subset": "train"}',
     {_key("alpha", "loss", LOSS_TRAIN), _key("beta", "loss", LOSS_TRAIN)}),
    ('metric.context["dataloader"] == 1 and metric.name == "acc"',
     {_key("delta", "acc", {"subset": "test", "dataloader": 1})}),
    ("metric.context.subset == None", set()),  # gamma's {} context is archived
    ("metric.context.subset == None and run.archived", {_key("gamma", "loss", {})}),
    ('run.hparams.opt == "adam" and metric.context.subset != "train"',
     {_key("alpha", "loss", LOSS_VAL), _key("alpha", "acc", LOSS_VAL),
      _key("delta", "acc", {"subset": "test", "dataloader": 1})}),
    ('run.hparams.lr >= 0.1 or metric.name == "acc"',
     {_key("beta", "loss", LOSS_TRAIN), _key("beta", "loss", LOSS_VAL),
      _key("alpha", "acc", LOSS_VAL), _key("delta", "acc", {"subset": "test", "dataloader": 1})}),
    ("metric.count == 3 and metric.last_step == 2 and metric.first_step == 0",
     {_key("alpha", "loss", LOSS_TRAIN), _key("alpha", "loss", LOSS_VAL)}),
    ("metric.min < 0.35 and metric.max > 0.9",
     {_key("alpha", "loss", LOSS_TRAIN)}),
    ("metric.first == 2.1", {_key("beta", "loss", LOSS_VAL)}),
    ('SELECT metric IF metric.name.startswith("ac") and metric.last > 0.76',
     {_key("alpha", "acc", LOSS_VAL)}),
    ("metric.unknown_field == None and run.name == 'beta'",
     {_key("beta", "loss", LOSS_TRAIN), _key("beta", "loss", LOSS_VAL)}),
]


@pytest.mark.parametrize(("query", "expected"), METRIC_QUERIES)
def test_query_metrics(repo, query, expected):
    assert metric_keys(repo.query_metrics(query)) == expected


def test_query_metrics_points_and_dataframe(repo):
    result = repo.query_metrics('metric.name == "loss" and metric.context.subset == "val" '
                                'and run.name == "alpha"')
    (metric,) = list(result.iter())
    assert metric.run.hash == repo.hashes["alpha"]
    np.testing.assert_array_equal(metric.steps, [0, 1, 2])
    np.testing.assert_allclose(metric.values, [1.1, 0.7, 0.4])
    np.testing.assert_array_equal(metric.epochs, [0, 0, 1])
    assert metric.last == pytest.approx(0.4)
    frame = result.dataframe()
    assert list(frame["step"]) == [0, 1, 2]
    assert set(frame["metric.context.subset"]) == {"val"}
    assert set(frame["run.hash"]) == {repo.hashes["alpha"]}


FORBIDDEN = [
    '__import__("os").system("touch {marker}")',
    "run.__class__",
    "run.hparams.__class__.__bases__",
    "().__class__.__bases__",
    '"".__class__.__mro__[1].__subclasses__()',
    'open("{marker}", "w")',
    "(lambda: 1)()",
    "[x for x in run.tags]",
    "any(t for t in run.tags)",
    'getattr(run, "name")',
    'exec("open(\'{marker}\', \'w\')")',
    'eval("1")',
    "globals()",
    "import os",
    're.compile("x")',
    '"{{0.__class__}}".format(run)',
    "len",
    "run.name.encode()",
    "(x := 1)",
    'f"{{run.name}}"',
    "os.system",
    "1 << 3",
    "run.hparams.lr.__class__",
    "run.metrics._sequences",
    "_ga(run, 'x')",
]


@pytest.mark.parametrize("template", FORBIDDEN)
def test_forbidden_queries_raise_without_side_effects(repo, tmp_path, template):
    marker = tmp_path / "pwned"
    query = template.format(marker=marker)
    with pytest.raises(QueryError):
        repo.query_runs(query)
    with pytest.raises(QueryError):
        repo.query_metrics(query)
    assert not marker.exists()


@pytest.mark.parametrize(("query", "column"), [
    ("run.hparams.lr >", 17),
    ("run.name == 'a' and and run.x", 21),
    ("SELECT x IF run.a === 1", 21),  # the third "=", as Python reports it
    ("run.a == (1", 10),
])
def test_syntax_errors_name_the_column(repo, query, column):
    with pytest.raises(QueryError) as info:
        repo.query_runs(query)
    assert info.value.column == column
    assert f"column {column}" in str(info.value)


def test_bad_queries_report_instead_of_returning_nothing(repo):
    with pytest.raises(QueryError, match="only available in a metric query"):
        repo.query_runs('metric.name == "loss"')
    with pytest.raises(QueryError, match="failed on run"):
        repo.query_runs("run.name.startswith(1)")  # a TypeError inside the query
    with pytest.raises(QueryError, match="regular expression"):
        repo.query_runs('re.search("(", run.name)')
    with pytest.raises(QueryError, match="unknown name 'hparams'"):
        repo.query_runs("hparams.lr > 1")
    with pytest.raises(QueryError):
        repo.query_runs('run.name * 10**9 == ""')
    with pytest.raises(QueryError):
        repo.query_runs(123)


@pytest.mark.parametrize("query", [
    "1 / 0 == 1", "int('x') == 1", "len(5) == 1", "run.name + 1 == 1", "-run.name == 1",
    "datetime(9999, 12, 31) + 1 > run.created_at", "run.hparams.opt / 2 > 0", "min([]) == 1",
    "run.hparams.layers[0] // 0 == 1",  # alpha has layers; the others give None first
])
def test_a_runtime_error_between_present_values_names_the_run(repo, query):
    with pytest.raises(QueryError, match=r"failed on run [0-9a-f]+: \w+Error"):
        repo.query_runs(query)


@pytest.mark.parametrize(("query", "expected"), [
    ("run.hparams.missing / 0 == None", {"alpha", "beta", "delta"}),
    ("len(run.hparams.layers) == None", {"beta", "delta"}),
    ("int(run.hparams.missing) == None and -run.hparams.missing == None",
     {"alpha", "beta", "delta"}),
])
def test_a_missing_param_is_none_through_arithmetic_and_builtins(repo, query, expected):
    assert names(repo.query_runs(query)) == expected


def test_filtering_reads_only_the_catalog(tmp_path):
    """A damaged file of a run the query does not match is never opened (no warning)."""
    path = tmp_path / "repo"
    runs = {}
    for name, lr in (("good", 0.1), ("broken", 0.5)):
        with Run(repo=path) as run:
            run.name = name
            run["lr"] = lr
            _train(run, "loss", LOSS_TRAIN, [1.0, 0.5])
            runs[name] = run.hash
    repo = Repo(path)
    run_file = repo.run_path(runs["broken"])
    run_file.write_bytes(run_file.read_bytes()[:50])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert names(repo.query_runs("run.lr < 0.3")) == {"good"}
        metrics = list(repo.query_metrics('run.lr < 0.3 and metric.name == "loss"'))
    assert [m.run.name for m in metrics] == ["good"]
    np.testing.assert_allclose(metrics[0].values, [1.0, 0.5])
    with pytest.warns(UserWarning, match=runs["broken"]):
        assert names(repo.query_runs("run.lr > 0")) == {"good"}
