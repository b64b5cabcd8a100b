"""Real tiny Keras 3 fits (torch backend, CPU) tracked by AimCallback, read back via Repo."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# keras reads these once, at its first import; TensorFlow is not installed here.
os.environ["KERAS_BACKEND"] = "torch"
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "aim-core-keras-home"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from aim_core import Repo, Run  # noqa: E402
from aim_core.integrations.keras import AimCallback  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BATCHES = 3  # 64 samples, 25% validation, batch 16 -> 3 train batches per epoch
TRAIN = {"subset": "train"}
VAL = {"subset": "val"}
TEST = {"subset": "test"}


@pytest.fixture
def repo_path(tmp_path, monkeypatch):
    """An empty repo in tmp_path, also the cwd and default repo, so nothing lands elsewhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIM_CORE_REPO", str(tmp_path))
    Repo(str(tmp_path), init=True)
    return str(tmp_path)


@pytest.fixture
def data():
    """A small regression problem: y = sum of the features."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    return x, x.sum(axis=1, keepdims=True)


def lr_at(step):
    """The ExponentialDecay schedule the models below use."""
    return 0.01 * 0.5 ** (np.asarray(step) / 2)


@pytest.fixture
def model():
    """A two-layer MLP with Adam on a decaying learning-rate schedule."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=2, decay_rate=0.5)
    net.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse", metrics=["mae"])
    return net


def fit(model, data, callbacks, epochs=3):
    """Train with 25% of the data held out for validation."""
    x, y = data
    return model.fit(
        x, y, validation_split=0.25, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks
    )


def stored(repo_path, callback):
    """The run the callback wrote, read back through the public API."""
    return Repo(repo_path).get_run(callback.run_hash)


def test_epoch_logs_become_train_and_val_sequences(repo_path, data, model):
    callback = AimCallback(repo=repo_path, experiment="keras", run_name="mlp")
    history = fit(model, data, [callback])
    run = stored(repo_path, callback)
    assert run.experiment == "keras" and run.name == "mlp"
    steps = [BATCHES, 2 * BATCHES, 3 * BATCHES]
    for name in ("loss", "mae"):
        for context, key in ((TRAIN, name), (VAL, f"val_{name}")):
            metric = run.get_metric(name, context)
            assert metric is not None, (name, context)
            assert metric.epochs.tolist() == [0, 1, 2]
            assert metric.steps.tolist() == steps
            np.testing.assert_allclose(metric.values, history.history[key], rtol=1e-6)
    names = {(m.name, tuple(sorted(m.context.to_dict().items()))) for m in run.metrics()}
    assert ("val_loss", ()) not in names and ("val_loss", (("subset", "train"),)) not in names


def test_learning_rate_follows_the_schedule(repo_path, data, model):
    callback = AimCallback(repo=repo_path)
    fit(model, data, [callback])
    metric = stored(repo_path, callback).get_metric("learning_rate", TRAIN)
    assert metric is not None
    assert metric.steps.tolist() == [3, 6, 9]
    np.testing.assert_allclose(metric.values, lr_at(metric.steps), rtol=1e-5)


def test_params_hold_keras_params_optimizer_and_model(repo_path, data, model):
    callback = AimCallback(repo=repo_path)
    fit(model, data, [callback], epochs=2)
    run = stored(repo_path, callback)
    hparams = run["hparams"]
    assert hparams["epochs"] == 2 and hparams["steps"] == BATCHES
    assert hparams["optimizer"]["name"].startswith("adam")
    assert hparams["optimizer"]["beta_1"] == pytest.approx(0.9)
    assert hparams["optimizer"]["learning_rate"]["class_name"] == "ExponentialDecay"
    assert run["model"]["num_params"] == model.count_params() == 4 * 8 + 8 + 8 + 1
    assert run["model"]["class"] == "Sequential"
    assert [layer["class_name"] for layer in run["model"]["config"]["layers"]][-2:] == [
        "Dense",
        "Dense",
    ]


def test_run_is_closed_after_fit(repo_path, data, model):
    callback = AimCallback(repo=repo_path)
    fit(model, data, [callback], epochs=1)
    run = stored(repo_path, callback)
    assert not run.active and run.status == "finished"
    assert [r.hash for r in Repo(repo_path).iter_runs()] == [callback.run_hash]


def test_batch_mode_tracks_every_batch_with_a_running_step(repo_path, data, model):
    callback = AimCallback(repo=repo_path, log_freq="batch")
    fit(model, data, [callback], epochs=2)
    run = stored(repo_path, callback)
    loss = run.get_metric("loss", TRAIN)
    assert loss.steps.tolist() == [1, 2, 3, 4, 5, 6]  # one point per batch, never repeated
    assert loss.epochs.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.all(np.isfinite(loss.values))
    assert run.get_metric("loss", VAL).steps.tolist() == [3, 6]
    assert run.get_metric("learning_rate", TRAIN).steps.tolist() == [3, 6]


def test_every_nth_batch_and_epoch_end_fill_in(repo_path, data, model):
    callback = AimCallback(repo=repo_path, log_freq=2)
    history = fit(model, data, [callback], epochs=2)
    loss = stored(repo_path, callback).get_metric("loss", TRAIN)
    # steps 2, 4, 6 are batch points; epoch 0 ends on the untracked step 3, so it is added
    assert loss.steps.tolist() == [2, 3, 4, 6]
    assert loss.values[1] == pytest.approx(history.history["loss"][0], rel=1e-6)


def test_batch_steps_continue_across_fits(repo_path, data, model):
    callback = AimCallback(repo=repo_path, log_freq="batch")
    fit(model, data, [callback], epochs=1)
    fit(model, data, [callback], epochs=1)
    loss = stored(repo_path, callback).get_metric("loss", TRAIN)
    assert loss.steps.tolist() == [1, 2, 3, 4, 5, 6]
    assert len(list(Repo(repo_path).iter_runs())) == 1


def test_evaluate_after_fit_adds_test_points_only(repo_path, data, model):
    callback = AimCallback(repo=repo_path)
    fit(model, data, [callback], epochs=2)
    run = stored(repo_path, callback)
    assert run.get_metric("loss", TEST) is None  # in-fit validation is not a test
    x, y = data
    results = [model.evaluate(x, y, verbose=0, callbacks=[callback], return_dict=True)]
    results.append(
        model.evaluate(x[:32], y[:32], verbose=0, callbacks=[callback], return_dict=True)
    )
    run = stored(repo_path, callback)
    test_loss = run.get_metric("loss", TEST)
    # both evaluations happen at the same optimizer step: the last one is what is kept
    np.testing.assert_allclose(test_loss.values, [results[-1]["loss"]], rtol=1e-6)
    assert test_loss.steps.tolist() == [2 * BATCHES]
    assert run.get_metric("mae", TEST).values.size == 1
    assert run.get_metric("loss", VAL).values.size == 2  # not counted twice
    assert run.get_metric("loss", TRAIN).values.size == 2
    assert not run.active and len(list(Repo(repo_path).iter_runs())) == 1


class Boom(keras.callbacks.Callback):
    """Fails the fit at the end of its first epoch."""

    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("boom")


def test_evaluate_after_a_failed_fit_is_tracked_as_test(repo_path, data, model):
    callback = AimCallback(repo=repo_path)
    with pytest.raises(RuntimeError, match="boom"):
        fit(model, data, [Boom(), callback])  # on_train_end never comes
    x, y = data
    result = model.evaluate(x, y, verbose=0, callbacks=[callback], return_dict=True)
    run = stored(repo_path, callback)
    assert run.get_metric("loss", TEST).values.tolist() == pytest.approx([result["loss"]])
    assert not run.active


class InjectText(keras.callbacks.Callback):
    """Puts a non-numeric value into the epoch logs, as some third-party callbacks do."""

    def on_epoch_end(self, epoch, logs=None):
        logs["note"] = f"epoch {epoch} done"


def test_tracking_error_warns_once_and_training_goes_on(repo_path, data, model):
    callback = AimCallback(repo=repo_path)
    with pytest.warns(RuntimeWarning) as record:
        history = fit(model, data, [InjectText(), callback], epochs=3)
    ours = [str(w.message) for w in record if "AimCallback" in str(w.message)]
    assert len(ours) == 1 and "note" in ours[0]
    assert len(history.history["loss"]) == 3
    run = stored(repo_path, callback)
    assert run.get_metric("loss", TRAIN).epochs.tolist() == [0, 1, 2]
    assert run.get_metric("note", TRAIN) is None
    assert run.status == "finished"


def test_a_run_passed_in_is_used_and_left_open(repo_path, data, model):
    run = Run(repo=repo_path, experiment="mine")
    run["hparams"] = {"seed": 0}
    fit(model, data, [AimCallback(run=run)], epochs=2)
    assert run.active
    assert run.get_metric("loss", VAL).epochs.tolist() == [0, 1]
    assert run["hparams"]["seed"] == 0 and run["hparams"]["epochs"] == 2
    run.close()


def test_bad_log_freq_is_refused():
    with pytest.raises(ValueError, match="log_freq"):
        AimCallback(log_freq="step")


def test_example_runs_without_tensorflow(tmp_path):
    code = (
        "import runpy, sys; sys.argv = sys.argv[1:];"
        "runpy.run_path(sys.argv[0], run_name='__main__');"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    env = {**os.environ, "AIM_CORE_REPO": str(tmp_path), "KERAS_BACKEND": "torch"}
    env.pop("PYTHONPATH", None)
    script = str(ROOT / "examples" / "keras_example.py")
    done = subprocess.run(
        [sys.executable, "-c", code, script, "--epochs", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loss" in done.stdout and "'subset': 'val'" in done.stdout
    assert (tmp_path / ".aim_core").is_dir()


def test_tensorflow_was_never_imported_here():
    # kept last in the module: every fit above has run in this process by now
    assert "tensorflow" not in sys.modules


def test_aims_run_arguments_and_close(repo_path, data, model):
    callback = AimCallback(experiment="k", system_tracking_interval=None, log_system_params=False,
                           capture_terminal_logs=False)
    run = callback.experiment
    options = run._system_options
    assert (options["system_tracking_interval"], options["log_system_params"],
            options["capture_terminal_logs"]) == (None, False, False)
    fit(model, data, [callback], epochs=1)
    callback.close()
    stored = Repo(repo_path).get_run(callback.run_hash)
    assert stored.hash == run.hash and stored.experiment == "k" and not stored.active
    assert stored.get_metric("loss", VAL).epochs.tolist() == [0]
    default = AimCallback()
    options = default.experiment._system_options  # Aim's adapter defaults
    assert (options["system_tracking_interval"], options["log_system_params"],
            options["capture_terminal_logs"]) == (10, True, True)
    default.close()
