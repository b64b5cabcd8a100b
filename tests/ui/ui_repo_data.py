"""A repo for the dashboard tests, filled by tiny real trainings (linear regression by SGD)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aim_core import Repo, Run

CONFIGS = [  # (name, experiment, learning rate, final status)
    ("sgd-small", "baseline", 0.01, "finished"),
    ("sgd-large", "baseline", 0.05, "finished"),
    ("sgd-wide", "wide", 0.02, "failed"),
]
EPOCHS, BATCHES = 5, 8


def train(run: Run, lr: float, seed: int) -> None:
    """A real (tiny) training: linear regression by minibatch SGD, tracked per step and epoch."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 4))
    y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=256)
    w = np.zeros(4)
    step = 0
    for epoch in range(EPOCHS):
        for batch in np.array_split(rng.permutation(256), BATCHES):
            err = x[batch] @ w - y[batch]
            w -= lr * 2 * x[batch].T @ err / len(batch)
            run.track(float(np.mean(err**2)), name="loss", step=step, epoch=epoch,
                      context={"subset": "train"})
            step += 1
        val = float(np.mean((x @ w - y) ** 2))
        run.track(val, name="loss", step=step, epoch=epoch, context={"subset": "val"})
        run.track(1.0 / (1.0 + val), name="acc", step=step, epoch=epoch,
                  context={"subset": "val"})


def make_repo(path: Path) -> dict:
    """Fill a repo with three trained runs plus one long and one NaN-bearing sequence."""
    Repo(path, init=True)
    hashes = {}
    for seed, (name, experiment, lr, status) in enumerate(CONFIGS):
        run = Run(repo=str(path), experiment=experiment)
        run.name = name
        run["hparams"] = {"lr": lr, "batch_size": 32, "optimizer": {"name": "sgd"}}
        train(run, lr, seed)
        hashes[name] = run.hash
        run.close(status=status)
    long = Run(repo=str(path), experiment="long")
    long.name = "long"
    long["hparams"] = {"lr": 0.001}
    for step in range(5000):
        long.track(math.cos(step / 300) + (2.0 if step == 3333 else 0.0), name="wave", step=step)
    long.track(float("nan"), name="gaps", step=0)
    long.track(1.0, name="gaps", step=1)
    hashes["long"] = long.hash
    long.close()
    return hashes
