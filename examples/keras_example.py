"""Track a small Keras 3 model (any backend; torch by default here) with aim-core.

Run: ``python examples/keras_example.py [--repo PATH]``, then ``aim-core up``.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # must be set before keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402

from aim_core import Repo  # noqa: E402
from aim_core.integrations.keras import AimCallback  # noqa: E402


def make_data(n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy interleaved classes in 2-D."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2)).astype("float32")
    y = (np.sin(3 * x[:, 0]) + 0.3 * rng.normal(size=n) > x[:, 1]).astype("float32")
    return x, y


def make_model() -> keras.Model:
    """A small MLP classifier with a decaying learning rate."""
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    schedule = keras.optimizers.schedules.ExponentialDecay(3e-3, decay_steps=50, decay_rate=0.7)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def show(repo: Repo, run_hash: str) -> None:
    """Print the params and sequences stored for one run."""
    run = repo.get_run(run_hash)
    print(f"run {run.hash} ({run.experiment}), status {run.status}")
    print("optimizer:", run["hparams"]["optimizer"]["name"], "params:", run["model"]["num_params"])
    for metric in sorted(run.metrics(), key=lambda m: (m.name, str(m.context.to_dict()))):
        print(
            f"  {metric.name:14} {metric.context.to_dict()!s:22} points={len(metric.values):3}"
            f" last step={metric.steps[-1]:4} last={metric.values[-1]:.4f}"
        )


def main() -> None:
    """Train with validation, evaluate on held-out data, then print what was stored."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", default=None, help="repo folder (default: the default repo)")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    x, y = make_data()
    model = make_model()
    callback = AimCallback(repo=args.repo, experiment="keras-example")
    model.fit(
        x[:400],
        y[:400],
        validation_split=0.2,
        epochs=args.epochs,
        batch_size=32,
        verbose=0,
        callbacks=[callback],
    )
    model.evaluate(x[400:], y[400:], verbose=0, callbacks=[callback])
    show(Repo(args.repo) if args.repo else Repo.default_repo(), callback.run_hash)


if __name__ == "__main__":
    main()
