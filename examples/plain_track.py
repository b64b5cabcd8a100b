"""Train a tiny numpy logistic regression, track it with plain ``Run.track``, read it back.

Run: ``python examples/plain_track.py [repo_dir]`` (default: the nearest repo or the cwd).
"""

from __future__ import annotations

import sys

import numpy as np

from aim_core import Repo, Run


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs, labelled 0 and 1."""
    x = np.concatenate([rng.normal(-1, 1, (n, 2)), rng.normal(1, 1, (n, 2))])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    return x, y


def loss_and_acc(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Binary cross-entropy and accuracy of weights ``w`` (last item: bias)."""
    p = 1 / (1 + np.exp(-(x @ w[:2] + w[2])))
    loss = -np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))
    return float(loss), float(np.mean((p > 0.5) == y))


def train(repo: str | None, lr: float = 0.5, epochs: int = 5, batch: int = 32) -> str:
    """Train with SGD and track loss/accuracy per step (train) and per epoch (val)."""
    rng = np.random.default_rng(0)
    x, y = make_data(500, rng)
    xv, yv = make_data(100, rng)
    w = np.zeros(3)
    with Run(repo=repo, experiment="plain-numpy") as run:
        run["hparams"] = {"lr": lr, "epochs": epochs, "batch_size": batch}
        step = 0
        for epoch in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch):
                idx = order[start:start + batch]
                p = 1 / (1 + np.exp(-(x[idx] @ w[:2] + w[2])))
                grad = np.append(x[idx].T @ (p - y[idx]), np.sum(p - y[idx])) / len(idx)
                w -= lr * grad
                loss, acc = loss_and_acc(w, x[idx], y[idx])
                run.track({"loss": loss, "acc": acc}, step=step, epoch=epoch,
                          context={"subset": "train"})
                step += 1
            val_loss, val_acc = loss_and_acc(w, xv, yv)
            run.track({"loss": val_loss, "acc": val_acc}, step=step, epoch=epoch,
                      context={"subset": "val"})
        return run.hash


def show(repo: Repo, run_hash: str) -> None:
    """Print the run's params and each sequence's summary."""
    run = repo.get_run(run_hash)
    print(f"run {run.hash} ({run.experiment}, {run.status}), params: {run['hparams']}")
    for metric in run.metrics():
        print(f"  {metric.name:5} {metric.context.to_dict()!s:20} points={metric.count:4} "
              f"last={metric.last:.4f} min={metric.min:.4f}")


if __name__ == "__main__":
    repo_dir = sys.argv[1] if len(sys.argv) > 1 else None
    run_hash = train(repo_dir)
    show(Repo(repo_dir) if repo_dir else Repo.default_repo(), run_hash)
