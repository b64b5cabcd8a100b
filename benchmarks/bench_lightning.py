"""AimLogger overhead: a 200-step tiny Lightning training, AimLogger vs CSVLogger.

    python benchmarks/bench_lightning.py [--steps 200] [--repeats 5] [--log-every 1]

Each repeat trains the same tiny model once per logger (order alternating) in a
fresh temporary folder for its files; AimLogger writes every run into one repo, as a
user's trainings do (creating a repo costs about 5 ms once). Only ``trainer.fit`` is
timed; the overhead is the ratio of medians (and of minimums, which
busy machines disturb less). ``--log-every 1`` (the default) sends every step to
the logger, the worst case; Lightning's own default is 50. On a busy machine the
fit-to-fit noise exceeds the difference, so the time spent inside AimLogger's own
calls is also measured directly.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from aim_core.integrations.lightning import AimLogger


class Tiny(LightningModule):
    """A linear regression logging a train loss and an accuracy-like value per step."""

    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters({"lr": 0.01, "width": 16})
        layers = [torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)]
        self.net = torch.nn.Sequential(*layers)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        self.log("train_score", 1 / (1 + loss))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _timed(method):
    """Wrap a logger method so the wall time of its outermost calls adds to ``spent``."""

    def wrapper(self, *args, **kwargs):
        TimedAimLogger.depth += 1
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            TimedAimLogger.depth -= 1
            if TimedAimLogger.depth == 0:
                TimedAimLogger.spent += time.perf_counter() - start

    return wrapper


class TimedAimLogger(AimLogger):
    """AimLogger measuring the time Lightning spends in it (run open, logging, close)."""

    spent, depth = 0.0, 0
    _open_run = _timed(AimLogger._open_run)
    log_metrics = _timed(AimLogger.log_metrics)
    log_hyperparams = _timed(AimLogger.log_hyperparams)
    log_graph = _timed(AimLogger.log_graph)
    finalize = _timed(AimLogger.finalize)


def _loader(steps: int) -> DataLoader:
    x = torch.randn(steps * 8, 16, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def time_fit(kind: str, steps: int, log_every: int, repo: str) -> tuple[float, float]:
    """Wall and process-CPU seconds (all threads) for one ``fit`` with the given logger."""
    with tempfile.TemporaryDirectory() as tmp:
        logger = TimedAimLogger(repo=repo, save_dir=tmp) if kind == "aim" else CSVLogger(tmp)
        trainer = Trainer(
            accelerator="cpu", devices=1, max_steps=steps, logger=logger,
            log_every_n_steps=log_every, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False,
        )
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.fit(Tiny(), _loader(steps))
        return time.perf_counter() - wall, time.process_time() - cpu


def report(label: str, csv: list[float], aim: list[float]) -> None:
    """Print medians and the overhead by medians and by minimums."""
    by_median = statistics.median(aim) / statistics.median(csv) - 1
    by_min = min(aim) / min(csv) - 1
    print(f"{label}: CSVLogger median {statistics.median(csv) * 1000:.0f} ms, "
          f"AimLogger median {statistics.median(aim) * 1000:.0f} ms; "
          f"overhead {by_median * 100:+.1f}% (medians), {by_min * 100:+.1f}% (minimums)")


def main() -> None:
    """Run the comparison and print per-logger figures and the overhead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--log-every", type=int, default=1)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # a tiny model gains nothing from threads; they only add noise

    repo = tempfile.mkdtemp(prefix="aim-core-bench-lightning-")
    time_fit("csv", args.steps, args.log_every, repo)  # warm-up: imports, first-call costs
    time_fit("aim", args.steps, args.log_every, repo)
    runs: dict[str, list[tuple[float, float]]] = {"csv": [], "aim": []}
    inside: list[float] = []
    for i in range(args.repeats):
        for kind in ("csv", "aim") if i % 2 == 0 else ("aim", "csv"):
            TimedAimLogger.spent = 0.0
            runs[kind].append(time_fit(kind, args.steps, args.log_every, repo))
            if kind == "aim":
                inside.append(TimedAimLogger.spent)
    print(f"steps={args.steps} log_every_n_steps={args.log_every} repeats={args.repeats}")
    for index, label in enumerate(("wall", "cpu")):
        report(label, [r[index] for r in runs["csv"]], [r[index] for r in runs["aim"]])
    csv_wall = statistics.median(r[0] for r in runs["csv"])
    print(f"inside AimLogger calls: median {statistics.median(inside) * 1000:.1f} ms per fit "
          f"= {statistics.median(inside) / csv_wall * 100:.1f}% of the CSVLogger fit")


if __name__ == "__main__":
    main()
