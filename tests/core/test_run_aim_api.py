"""``Run`` as Aim's README and SDK use it: the params tree, properties, edits of stored runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from aim_core import Repo, Run
from aim_core.errors import RunLockedError


def test_params_tree_as_in_aims_readme(repo_path):
    run = Run(repo=str(repo_path), experiment="readme")
    run["hparams"] = {"learning_rate": 0.001, "batch_size": 32}
    for i in range(10):
        run.track(i, name="loss", step=i, context={"subset": "train"})
    assert run[...] == {"hparams": {"learning_rate": 0.001, "batch_size": 32}}
    run[...] = {"hparams": {"lr": 0.1}, "seed": 1}  # replaces every param
    run["hparams", "momentum"] = 0.9
    assert run[...] == {"hparams": {"lr": 0.1, "momentum": 0.9}, "seed": 1}
    assert run["hparams"]["lr"] == 0.1 and run["hparams", "momentum"] == 0.9
    with pytest.raises(TypeError, match="dict of params"):
        run[...] = [1, 2]
    run.close()

    stored = Repo(str(repo_path)).get_run(run.hash)
    assert stored[...] == {"hparams": {"lr": 0.1, "momentum": 0.9}, "seed": 1}
    assert stored.get(("hparams", "lr")) == 0.1 and stored.get("missing", 5) == 5
    assert stored.get(...) == stored[...]
    assert stored.get_metric("loss", {"subset": "train"}).values.tolist() == list(range(10))


def test_set_is_strict_unless_told_otherwise(repo_path):
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    run = Run(repo=repo_path)
    run.set(("hparams", "opt"), Opaque(), strict=False)
    run.set("cfg", {"layers": (1, 2), "head": Opaque()}, strict=False)
    with pytest.raises(TypeError, match="cannot store"):
        run.set("bad", {"x": Opaque()})  # strict=True by default, as in Aim
    with pytest.raises(TypeError):
        run["bad"] = Opaque()
    run.set(("a", "b"), 5)
    del run["a", "b"]
    run.close()
    assert Repo(repo_path).get_run(run.hash)[...] == {
        "hparams": {"opt": "opaque!"}, "cfg": {"layers": [1, 2], "head": "opaque!"}, "a": {}}


def test_name_none_clears_and_experiment_must_be_a_str(repo_path):
    run = Run(repo=repo_path, experiment="exp")
    assert run.name == f"Run: {run.hash}"
    run.name = "named"
    run.name = None
    run.description = None
    with pytest.raises(TypeError, match="experiment must be a str"):
        run.experiment = 5
    with pytest.raises(TypeError, match="experiment must be a str"):
        Run(repo=repo_path, experiment=["x"])
    assert Repo(repo_path).list_all_runs() == [run.hash]  # the refused run was never created
    run.finalize()  # Aim's name for close()
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.name is None and stored.description is None and stored.experiment == "exp"
    assert stored.status == "finished" and not stored.active
    assert [r.name for r in Repo(repo_path).query_runs("run.name == None")] == [None]


def test_run_dataframe_as_aims(repo_path):
    pd = pytest.importorskip("pandas")
    with Run(repo=repo_path, experiment="df") as run:
        run["hparams"] = {"lr": 0.1, "layers": [1, 2], "deep": {"a": {"b": {"c": 1}}}}
        run.add_tag("baseline")
    frame = Repo(repo_path).get_run(run.hash).dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
    row = frame.iloc[0].to_dict()
    assert row["hash"] == run.hash and row["experiment"] == "df" and row["tags"] == '["baseline"]'
    assert row["archived"] is False or row["archived"] == 0
    assert row["hparams.lr"] == 0.1 and row["hparams.layers"] == "[1, 2]"
    assert row["hparams.deep.a"] == '{"b": {"c": 1}}'  # unfolded three levels, as in Aim
    assert list(frame.columns)[:9] == ["hash", "name", "description", "archived",
                                       "creation_time", "end_time", "active", "experiment",
                                       "tags"]
    only_params = Repo(repo_path).get_run(run.hash).dataframe(include_props=False)
    assert list(only_params.columns) == ["hash", "hparams.lr", "hparams.layers", "hparams.deep.a"]


def test_stored_runs_take_aims_property_edits(repo_path):
    with pytest.raises(RuntimeError), Run(repo=repo_path, experiment="a") as run:
        run.track(1.0, name="x")
        raise RuntimeError("boom")
    repo = Repo(repo_path)
    end_time = repo.get_run(run.hash).end_time

    stored = repo.get_run(run.hash)
    stored.name = "renamed"
    stored.description = "about it"
    stored.experiment = "b"
    stored.add_tag("t1")
    stored.add_tag("t2")
    stored.add_tag("t1")
    stored.remove_tag("t2")
    assert (stored.name, stored.tags) == ("renamed", ["t1"])  # the handle sees its edits
    (listed,) = list(repo.iter_runs())
    listed.archived = True
    (matched,) = list(repo.query_runs("run.archived"))
    matched.run.archived = False
    (metric,) = list(repo.query_metrics("metric.name == 'x'"))
    metric.run.add_tag("from-metric")

    again = Repo(repo_path).get_run(run.hash)
    assert (again.name, again.description, again.experiment) == ("renamed", "about it", "b")
    assert again.tags == ["t1", "from-metric"] and again.archived is False
    assert (again.status, again.end_time) == ("failed", end_time)  # how it ended is kept
    assert [m.name for m in Repo(repo_path).query_runs('run.experiment == "b"')] == ["renamed"]
    with pytest.raises(Exception, match="read-only"):
        again["hparams"] = {"lr": 1}  # params of a stored run stay read-only


def test_editing_a_run_open_in_this_process_goes_through_its_writer(repo_path):
    live = Run(repo=repo_path)
    live.track(1.0, name="x")
    stored = Repo(repo_path).get_run(live.hash)
    stored.name = "while running"
    assert live.name == "while running" and live.active
    live.track(2.0, name="x")
    live.close()
    final = Repo(repo_path).get_run(live.hash)
    assert final.name == "while running" and final.get_metric("x").values.tolist() == [1.0, 2.0]


HOLDER = textwrap.dedent("""
    import sys
    from aim_core import Run
    run = Run(sys.argv[2], repo=sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()
    run.close()
""")


def test_editing_a_run_another_process_writes_raises_run_locked(repo_path):
    Run(repo=repo_path).close()
    (run_hash,) = Repo(repo_path).list_all_runs()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo_path), run_hash],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        stored = Repo(repo_path).get_run(run_hash)
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            stored.archived = True
        assert Repo(repo_path).get_run(run_hash).archived is False
    finally:
        holder.communicate("done\n", timeout=60)
    stored.archived = True  # free again
    assert Repo(repo_path).get_run(run_hash).archived is True


def test_aims_constructor_arguments_are_accepted(repo_path):
    run = Run(repo=repo_path, experiment="sys", system_tracking_interval=None,
              log_system_params=True, capture_terminal_logs=False, force_resume=True)
    assert run._system_options == {"system_tracking_interval": None, "log_system_params": True,
                                   "capture_terminal_logs": False, "token": None}
    run.close()
    resumed = Run(run.hash, repo=repo_path, system_tracking_interval=5)
    resumed.close()
    assert Repo(repo_path).get_run(run.hash).experiment == "sys"


@pytest.mark.parametrize("url", ["aim://127.0.0.1:53800", "http://localhost:53800",
                                 "https://tracking.example.com"])
def test_a_server_address_never_becomes_a_local_folder(repo_path, url):
    from aim_core.remote.repo import RemoteRepo
    from aim_core.remote.run import RemoteRun

    before = sorted(p.name for p in repo_path.iterdir())
    assert isinstance(Repo(url), RemoteRepo)  # remote tracking: see tests/remote
    assert type(Run.__new__(Run, repo=url)) is RemoteRun
    assert sorted(p.name for p in repo_path.iterdir()) == before


def test_omegaconf_lists_and_dicts_are_stored_as_plain_params(repo_path):
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"width": 4, "sizes": [1, "${width}"]})
    run = Run(repo=repo_path)
    run["x"] = omegaconf.OmegaConf.create([1, {"a": 2}])
    run["cfg"] = cfg
    run["sizes"] = cfg.sizes  # a ListConfig taken from inside a config
    run.close()
    assert Repo(repo_path).get_run(run.hash)[...] == {
        "x": [1, {"a": 2}], "cfg": {"width": 4, "sizes": [1, 4]}, "sizes": [1, 4]}


def test_every_sequence_of_run_sequences_reads_with_aims_data_api(repo_path):
    from aim_core import Text

    with Run(repo=str(repo_path), system_tracking_interval=None) as run:
        run.track(0.5, name="loss", step=0, epoch=0)
        run.track(0.25, name="loss", step=2)
        run.track(Text("a"), name="notes", step=1, epoch=1)
    stored = Repo(str(repo_path)).get_run(run.hash)

    read = {}
    for seq in stored.sequences():
        items = [(step, value, epoch, time) for step, (value, epoch, time) in seq.data.items()]
        steps, (values, epochs, times) = seq.data.items_list()
        assert [i[0] for i in items] == steps == seq.data.indices_list() == list(seq.data.indices())
        assert list(seq.data.values()) == seq.data.values_list() == [i[1] for i in items]
        assert [i[3] for i in items] == times and len(seq.data) == len(steps)
        read[seq.name] = items
    loss = read["loss"]
    assert [(s, v, e) for s, v, e, _ in loss] == [(0, 0.5, 0.0), (2, 0.25, None)]
    assert all(type(v) is float for _, v, _, _ in loss)
    assert [(s, v.data, e) for s, v, e, _ in read["notes"]] == [(1, "a", 1.0)]
    metric = stored.get_metric("loss")
    steps, (values, epochs, _) = metric.data.items_list()
    assert (steps, values) == ([0, 2], [0.5, 0.25]) and epochs[0] == 0.0
    assert list(metric.data) == list(metric.data.items())
