"""AimQL resource limits: hostile queries end in QueryError at once, normal ones still work.

Every attack runs under a generous ``pytest.mark.timeout`` only as a guard against hanging;
what is asserted is the QueryError and the limit its message names.
"""

from __future__ import annotations

import threading
import time

import pytest

from aim_core import Repo, Run
from aim_core.errors import QueryError
from aim_core.query import patterns
from aim_core.query.validate import _compile_cached

pytestmark = pytest.mark.timeout(60, method="thread")
ENGINES = ["regex", "re"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Two runs: one with ordinary params, one whose name and params feed the attacks."""
    path = tmp_path_factory.mktemp("limits")
    with Run(repo=path, experiment="cls") as run:
        run.name = "alpha_12"
        run.add_tag("baseline")
        run.add_tag("small")
        run["hparams"] = {"lr": 0.0125, "layers": [64, 32], "opt": "adam"}
        run.track(0.5, name="loss", context={"subset": "val"})
    with Run(repo=path, experiment="evil") as run:
        run.name = "a" * 60 + "!"
        run["text"] = "x" * 5000
        run["pattern"] = "(a|aa)+$"
        run["digits"] = "1" * 3000
        run.track(0.25, name="loss", context={"subset": "val"})
    return Repo(path)


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Run a test with the ``regex`` package's engine, then with Python's ``re`` alone."""
    if request.param == "regex":
        pytest.importorskip("regex")
    else:
        monkeypatch.setattr(patterns, "regex_engine", None)
    patterns._compiled.cache_clear()
    _compile_cached.cache_clear()
    yield request.param
    patterns._compiled.cache_clear()
    _compile_cached.cache_clear()


SIZE = "1,000,000 items and characters"
ATTACKS = [
    ('b"x" * 10**9', SIZE),
    ('"x" * 10**9', SIZE),
    ("[1] * 10**9", SIZE),
    ('("x",) * 10**9', SIZE),
    ('["x" * 10**6] * 10**6', SIZE),  # a million references to a million characters
    ("[[0] * 10**5] * 10**5", SIZE),
    ('[0.5] * 10**6', SIZE),
    ('"x" * 900000 + "x" * 900000', SIZE),
    ("[0] * 600000 + [0] * 600000", SIZE),
    (" + ".join(['len("x" * 900000)'] * 6) + " > 0", "4,000,000 items and characters per run"),
    ('"%999999999d" % 1', SIZE),
    ('b"%999999999d" % 1', SIZE),
    ('"%.999999999f" % 1.0', SIZE),
    ('"%*d" % (10**9, 1)', SIZE),
    ('"%s" % ("x" * 10**6,)', SIZE),
    ('"%(a)s" * 1000 % {"a": "x" * 10**5}', SIZE),
    ('("x" * 10**5).join("y" * 10**5)', SIZE),
    ('run.text and "".join([run.text] * 300)', SIZE),
    ('"x".replace("", "y" * 10**6)', SIZE),
    ('("ab" * 10**5).replace("a", "x" * 1000)', SIZE),
    ('str(["x" * 600000, "x" * 600000])', SIZE),
    ("str([2**14000] * 200)", SIZE),
    ("10**10**10", "100,000 bits"),
    ("9**9**9", "100,000 bits"),
    ("2**99999 * 2**99999", "100,000 bits"),
    ("(2**60000) ** 2", "100,000 bits"),
    ("round(1, -10**9)", "ndigits between"),
    ("round(1.5, 10**9)", "ndigits between"),
]


@pytest.mark.parametrize(("query", "limit"), ATTACKS)
def test_resource_attacks_raise_query_error(repo, query, limit):
    with pytest.raises(QueryError, match=limit.replace("(", r"\(")):
        repo.query_runs(query)
    with pytest.raises(QueryError, match=limit.replace("(", r"\(")):
        repo.query_metrics(f'metric.name == "loss" and ({query})')


DEEP = [
    "run" + ".a" * 2000 + " == 1",
    'run["a"]' + '["b"]' * 1000 + " == 1",
    " + ".join(["run.a"] * 1200) + " > 1",
    "not " * 2400 + "run.a",
    "[" * 90 + "]" * 90 + " == run.a",
    "abs(" * 150 + "run.a" + ")" * 150 + " > 1",
    "1 if run.a else " * 600 + "1",
    "-" * 5000 + "run.a > 1",
    "run.a < " * 1200 + "run.b",
    "(" * 180 + "run.a" + ")" * 180,
]


@pytest.mark.parametrize("query", DEEP, ids=lambda q: q[:12])
def test_deep_expressions_raise_query_error_not_recursion_error(repo, query):
    try:
        repo.query_runs(query)
    except QueryError as exc:
        assert "nests more than 64 levels" in str(exc) or "parse" in str(exc)
    else:  # long but flat: chained comparisons and parentheses make no deep tree
        assert query.startswith(("run.a < ", "("))


def test_deepest_allowed_expressions_still_work(repo):
    assert len(repo.query_runs("abs(" * 30 + "run.hparams.lr" + ")" * 30 + " > 0.01")) == 1
    assert len(repo.query_runs(" + ".join(["run.hparams.lr"] * 50) + " > 0.6")) == 1


NORMAL = [
    ('"%s-%d" % (run.name, 3) == "alpha_12-3"', 1),
    ('"%(opt)s" % run.hparams == "adam"', 1),
    ('"-".join(run.tags) == "baseline-small"', 1),
    ('run.name.replace("_", "-") == "alpha-12"', 1),
    ('str(run.hparams.layers) == "[64, 32]"', 1),
    ("round(run.hparams.lr, 3) == 0.013", 1),
    ('run.name + "!" == "alpha_12!"', 1),
    ("run.hparams.layers + [1] == [64, 32, 1]", 1),
    ("run.hparams.layers * 2 == [64, 32, 64, 32]", 1),
    ('3 * "ab" == "ababab" and run.experiment == "cls"', 1),
    ("2 ** 10 == 1024 and 10**30 * 10**30 == 10**60 and run.hparams.opt", 1),
    ('len("x" * 999999) == 999999 and run.experiment == "cls"', 1),
    ('len(run.text) == 5000', 1),
]


@pytest.mark.parametrize(("query", "count"), NORMAL)
def test_bounded_operations_work_within_their_limits(repo, query, count):
    assert len(repo.query_runs(query)) == count


REGEX_ATTACKS = [
    're.search("(a|aa)+$", run.name)',
    're.match("(a|aa)+$", run.name)',
    're.search("(\\\\w+\\\\s?)*$", run.text + "!")',
    're.search(run.pattern, run.name)',  # a pattern read from the data, not the query text
]


@pytest.mark.parametrize("query", REGEX_ATTACKS)
def test_catastrophic_regexes_fail_fast(repo, engine, query):
    with pytest.raises(QueryError, match="regular expression|re\\.|match paths"):
        repo.query_runs(query)


def test_polynomial_regex_on_long_text_is_refused_without_regex_package(repo, engine):
    query = 're.search(".*.*.*.*.*=", run.text)'
    if engine == "regex":  # the time limit lets it run; it is not slow there
        assert len(repo.query_runs(query)) == 0
    else:
        with pytest.raises(QueryError, match="match paths.*aim-core\\[regex\\]"):
            repo.query_runs(query)


@pytest.mark.parametrize(("query", "names"), [
    ('re.match("al", run.name)', {"alpha_12"}),
    ('re.search("_12$", run.name)', {"alpha_12"}),
    ('re.fullmatch("[a-z]+_\\\\d+", run.name)', {"alpha_12"}),
    ('re.search("^(\\\\w+)_(\\\\d+)$", run.name)', {"alpha_12"}),
    ('re.search("(?i)ALPHA|zeta", run.name)', {"alpha_12"}),
    ('re.search("(ab)+|x{2,4}", run.text)', {"a" * 60 + "!"}),
    ('re.search("a{3}!$", run.name)', {"a" * 60 + "!"}),
    ('re.search("^1+$", run.digits)', {"a" * 60 + "!"}),
    ('re.match("(?:al|be)pha", run.name)', {"alpha_12"}),
    ("re.search(run.experiment, run.name) == None", {"alpha_12", "a" * 60 + "!"}),
])
def test_ordinary_regexes_work_with_either_engine(repo, engine, query, names):
    assert {m.name for m in repo.query_runs(query)} == names


def test_regex_problems_are_reported_when_the_query_is_parsed(repo, engine):
    with pytest.raises(QueryError, match="column 11"):
        repo.query_runs('re.search("(", run.name)')
    if engine == "re":
        with pytest.raises(QueryError, match="backreference"):
            repo.query_runs('re.search("(a)\\\\1", run.name)')
        for nested in ("(a+)+b", "(a|a)*b", "(a?)+b", "(?:x*y)*z"):
            with pytest.raises(QueryError, match="more than one way"):
                repo.query_runs(f're.search("{nested}", run.name)')


def test_timeout_stops_a_query(repo):
    with pytest.raises(QueryError, match="time budget of 0 s"):
        repo.query_runs("run.hparams.lr > 0", timeout=0)
    with pytest.raises(QueryError, match="time budget"):
        repo.query_metrics('metric.name == "loss"', timeout=0)
    assert len(repo.query_runs("run.hparams.lr > 0", timeout=30)) == 1
    assert len(repo.query_metrics('metric.name == "loss"', timeout=30)) == 2
    assert len(repo.query_runs("run.hparams.lr > 0")) == 1  # no budget left behind
    with pytest.raises(ValueError, match="timeout"):
        repo.query_runs("", timeout=-1)


def test_timeout_bounds_a_slow_regex(repo):
    pytest.importorskip("regex")
    patterns._compiled.cache_clear()
    started = time.monotonic()
    with pytest.raises(QueryError, match="time budget of 0.05 s"):
        repo.query_runs('re.search("(a|aa)+$", run.name)', timeout=0.05)
    assert time.monotonic() - started < 30  # a guard only: it stops after about 0.05 s


def test_slow_regex_leaves_other_threads_running(repo):
    """With the regex package the GIL is released while a match runs (re would hold it)."""
    pytest.importorskip("regex")
    patterns._compiled.cache_clear()
    errors: list[Exception] = []

    def slow_query() -> None:
        try:
            repo.query_runs('re.search("(a|aa)+$", run.name)')
        except QueryError as exc:
            errors.append(exc)

    worker = threading.Thread(target=slow_query)
    worker.start()
    ticks = 0
    while worker.is_alive():
        time.sleep(0.005)
        ticks += 1
    assert len(errors) == 1 and ticks >= 2
