"""Framework adapters take the server URL as their repo (Lightning: see test_example.py)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "aim-core-keras-home"))
keras = pytest.importorskip("keras")

from aim_core import Repo  # noqa: E402
from aim_core.integrations.keras import AimCallback  # noqa: E402


def test_keras_callback_tracks_a_fit_through_the_server(server):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    callback = AimCallback(repo=server.url, experiment="keras-remote",
                           system_tracking_interval=None, capture_terminal_logs=False)
    model.fit(x, x.sum(axis=1, keepdims=True), epochs=3, batch_size=16, validation_split=0.25,
              callbacks=[callback], verbose=0)
    # on_train_end closed the run: its close waited for the server's acknowledgements
    runs = list(Repo(server.url).iter_runs())
    assert len(runs) == 1 and runs[0].experiment == "keras-remote"
    run = runs[0]
    assert run.status == "finished"
    assert len(run.get_metric("loss", {"subset": "train"}).values) == 3
    assert len(run.get_metric("loss", {"subset": "val"}).values) == 3
    assert run["hparams"]["epochs"] == 3
