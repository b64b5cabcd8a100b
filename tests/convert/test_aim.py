"""``aim-core convert aim``: an Aim 3 repo written with Aim's SDK, converted and compared.

Aim pins its own dependencies, so these tests run in tox's ``aim`` environment (which sets
AIM_CORE_REQUIRE_AIM=1: there a missing ``aim`` fails instead of skipping). The Aim runs are
written by child processes, as trainings would write them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from convert_cli import entries, run_cli

from aim_core import Repo
from aim_core.errors import ConvertError

HAVE_AIM = importlib.util.find_spec("aim") is not None
needs_aim = pytest.mark.skipif(
    not HAVE_AIM and not os.environ.get("AIM_CORE_REQUIRE_AIM"),
    reason="aim is not installed here; these tests run in `tox -e aim`")

AIM_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import aim

    path, how, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    aim.Repo.from_path(path, init=True)
    hashes = []
    for spec in runs:
        run = aim.Run(repo=path, experiment=spec["experiment"], system_tracking_interval=None,
                      capture_terminal_logs=False, log_system_params=False)
        run.name = spec["name"]
        run.description = "about " + spec["name"]
        run.add_tag("imported")
        run["hparams"] = {"lr": 0.01, "layers": [64, 32],
                          "optim": {"name": "sgd", "nesterov": True}, "note": None}
        run["seed"] = 7
        for metric, (context, values) in spec["metrics"].items():
            for step, value in enumerate(values):
                run.track(value, name=metric, step=step * 10, epoch=step // 2,
                          context=context)
        if spec.get("objects"):
            import numpy as np
            for step in range(2):
                run.track(aim.Text(f"sample {step}"), name="predictions", step=step, epoch=0,
                          context={"subset": "val"})
                run.track(aim.Distribution(hist=np.arange(4.0) + step, bin_range=(0, 8)),
                          name="weights", step=step)
                pixels = np.zeros((4, 6, 3), dtype=np.uint8)
                pixels[1, 2] = [255, step, 0]
                run.track([aim.Image(pixels, caption="a"), aim.Image(pixels.T.copy().T)],
                          name="samples", step=step * 3)
        hashes.append(run.hash)
        if how == "kill":
            print(json.dumps(hashes), flush=True)
            os._exit(0)  # the process dies with the run open: Aim records no end time
        run.archived = spec.get("archived", False)
        run.close()
    print(json.dumps(hashes))
""")

RESUME_SCRIPT = textwrap.dedent("""
    import sys
    import aim

    run = aim.Run(sys.argv[2], repo=sys.argv[1], system_tracking_interval=None,
                  capture_terminal_logs=False, force_resume=True)
    run.track(2.0, name="loss", step=20, epoch=1)
    run.close()
""")


def write_aim_runs(path, runs: list[dict], how: str = "close") -> list[str]:
    """Write Aim runs in a child process; return their hashes."""
    done = subprocess.run([sys.executable, "-c", AIM_SCRIPT, str(path), how, json.dumps(runs)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def aim_repo(tmp_path_factory):
    """An Aim repo with two runs (one archived), written through Aim's SDK; never changed."""
    path = tmp_path_factory.mktemp("aim") / "aimrepo"
    hashes = write_aim_runs(path, [
        {"experiment": "cls", "name": "baseline", "objects": True,
         "metrics": {"loss": [{"subset": "train"}, [1.0, 0.5, 0.25]],
                     "acc": [{"subset": "val", "fold": 1}, [0.5, 0.75]]}},
        {"experiment": "seg", "name": "bigger", "archived": True,
         "metrics": {"loss": [{}, [2.0, 1.0, 0.5, 0.25]]}}])
    return {"path": path, "hashes": hashes}


def read_aim(path, run_hash):
    """What Aim itself reads back for one run: props, params and metric arrays."""
    import aim

    from aim_core.convert.aim import open_aim_repo

    _, repo, _union = open_aim_repo(path)
    run = aim.Run(run_hash, repo=repo, read_only=True)
    metrics = {}
    for name, context, _ in run.iter_metrics_info():
        steps, (values, epochs, times) = run.get_metric(name, context).data.numpy()
        key = (name, tuple(sorted(context.to_dict().items())))
        metrics[key] = (steps, values, epochs, times)
    props = (run.name, run.experiment, run.description, list(run.tags), run.archived,
             run.creation_time, run.end_time)
    return props, run[...], metrics


@needs_aim
def test_every_run_is_converted_with_every_value(aim_repo, repo):
    from aim_core.convert.aim import convert_aim

    report = convert_aim(aim_repo["path"], repo)

    assert report.ok, report.text()
    assert report.runs_new == 2 and report.points == 3 + 2 + 4 + 3 * 2
    assert sorted(repo.list_runs()) == sorted(aim_repo["hashes"])
    for run_hash in aim_repo["hashes"]:
        props, params, metrics = read_aim(aim_repo["path"], run_hash)
        run = repo.get_run(run_hash)
        assert (run.name, run.experiment, run.description, run.tags, run.archived,
                run.creation_time, run.end_time) == props
        assert run.params == params
        assert run.status == "finished"
        ours = {(m.name, tuple(sorted(m.context.to_dict().items()))): m for m in run.metrics()}
        assert set(ours) == set(metrics)
        for key, (steps, values, epochs, times) in metrics.items():
            metric = ours[key]
            np.testing.assert_array_equal(metric.steps, steps)
            np.testing.assert_array_equal(metric.values, values)
            np.testing.assert_array_equal(metric.epochs, epochs)
            np.testing.assert_array_equal(metric.timestamps, times)
    baseline, bigger = (repo.get_run(h) for h in aim_repo["hashes"])
    assert baseline["hparams", "optim"] == {"name": "sgd", "nesterov": True}
    assert (baseline.name, baseline.archived, bigger.archived) == ("baseline", False, True)
    acc = baseline.get_metric("acc", {"subset": "val", "fold": 1})
    assert acc.steps.tolist() == [0, 10] and acc.epochs.tolist() == [0.0, 0.0]
    assert bigger.get_metric("loss").values.tolist() == [2.0, 1.0, 0.5, 0.25]


@needs_aim
def test_object_sequences_keep_steps_times_and_content(aim_repo, repo):
    import aim
    from aim.storage.context import Context

    from aim_core.convert.aim import convert_aim, open_aim_repo

    report = convert_aim(aim_repo["path"], repo)

    assert report.ok, report.text()
    baseline_hash = aim_repo["hashes"][0]
    _, aim_repo_obj, _union = open_aim_repo(aim_repo["path"])
    source = aim.Run(baseline_hash, repo=aim_repo_obj, read_only=True)
    run = repo.get_run(baseline_hash)
    texts = source.get_text_sequence("predictions", Context({"subset": "val"}))
    ours = run.get_text_sequence("predictions", {"subset": "val"})
    assert [(s, (v.data, e, t)) for s, (v, e, t) in ours.data.items()] == [
        (s, (v.data, e, t)) for s, (v, e, t) in texts.data.items()]
    dists = source.get_distribution_sequence("weights", Context({}))
    for (step, (dist, _, t)), (aim_step, (aim_dist, _, aim_t)) in zip(
            run.get_distribution_sequence("weights").data.items(), dists.data.items(),
            strict=True):
        assert (step, t, dist.range) == (aim_step, aim_t, list(aim_dist.range))
        np.testing.assert_array_equal(dist.weights, aim_dist.weights)
    images = source.get_image_sequence("samples", Context({}))
    for (step, (ours_list, _, t)), (aim_step, (aim_list, _, aim_t)) in zip(
            run.get_image_sequence("samples").data.items(), images.data.items(), strict=True):
        assert (step, t, len(ours_list)) == (aim_step, aim_t, 2)
        for image, aim_image in zip(ours_list, aim_list, strict=True):
            assert (image.caption, image.size) == (aim_image.caption, aim_image.size)
            assert image.data == bytes(aim_image.storage["data"].load())


@needs_aim
def test_converting_twice_adds_nothing(aim_repo, repo):
    from aim_core.convert.aim import convert_aim

    convert_aim(aim_repo["path"], repo)
    before = entries(repo)

    again = run_cli("convert", "aim", str(aim_repo["path"]), "--repo", str(repo.path),
                    "--no-progress")

    assert again.returncode == 0, again.stderr
    assert "0 new run(s), 0 updated, 2 unchanged" in again.stderr
    assert entries(Repo(repo.path)) == before


@needs_aim
def test_a_run_that_was_still_going_gets_its_new_points(aim_repo, repo, tmp_path):
    from aim_core.convert.aim import convert_aim

    aim_path = shutil.copytree(aim_repo["path"], tmp_path / "aimrepo")
    (live,) = write_aim_runs(aim_path, [
        {"experiment": "cls", "name": "live", "metrics": {"loss": [{}, [4.0, 3.0]]}}],
        how="kill")
    first = convert_aim(aim_path, repo)
    assert repo.get_run(live).status == "crashed"  # Aim has no end time for it
    subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(aim_path), live],
                   check=True, timeout=180, capture_output=True)

    second = convert_aim(aim_path, repo)

    assert first.runs_new == 3
    assert (second.runs_updated, second.runs_unchanged, second.points) == (1, 2, 1)
    run = repo.get_run(live)
    assert run.get_metric("loss").values.tolist() == [4.0, 3.0, 2.0]
    assert run.status == "finished" and run.end_time is not None


@pytest.mark.skipif(HAVE_AIM, reason="aim is installed here")
def test_without_aim_the_message_says_how_to_get_it(tmp_path, repo):
    from aim_core.convert.aim import convert_aim

    with pytest.raises(ConvertError, match="pip install aim"):
        convert_aim(tmp_path, repo)
    result = run_cli("convert", "aim", str(tmp_path), "--repo", str(repo.path))
    assert result.returncode == 1 and "aim package is not importable" in result.stderr
