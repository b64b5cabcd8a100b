"""Track a small Lightning training with AimLogger, then query the result.

    python examples/lightning_example.py [--repo PATH]

A two-layer regressor learns y = sin(x1) + x2^2 on generated data; train, val
and test losses land in one run as ``loss`` with subset contexts.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset, random_split

from aim_core import Repo
from aim_core.integrations.lightning import AimLogger


class Regressor(LightningModule):
    """A small MLP; logs ``train_loss``, ``val_loss`` and ``test_loss``."""

    def __init__(self, hidden: int = 32, lr: float = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
        )

    def _loss(self, batch) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def make_data(n: int = 1024) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Generated regression data split into train/val/test loaders."""
    x = torch.rand(n, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
    y = (torch.sin(x[:, 0]) + x[:, 1] ** 2).unsqueeze(1)
    parts = random_split(TensorDataset(x, y), [0.7, 0.15, 0.15])
    return tuple(DataLoader(p, batch_size=64, shuffle=i == 0) for i, p in enumerate(parts))


def main() -> None:
    """Train, validate and test with AimLogger, then print the final losses by subset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=None, help="aim-core repo (default: the usual lookup)")
    args = parser.parse_args()

    train, val, test = make_data()
    # Checkpoints go under the Trainer's default_root_dir (a temporary folder here), never
    # into the repo.
    logger = AimLogger(repo=args.repo, experiment="lightning-example")
    trainer = Trainer(max_epochs=5, logger=logger, log_every_n_steps=5, enable_progress_bar=False,
                      default_root_dir=tempfile.mkdtemp())
    model = Regressor()
    trainer.fit(model, train, val)
    trainer.test(model, test)

    repo = Repo(args.repo) if args.repo else Repo.default_repo()
    query = f'run.hash == "{logger.version}" and metric.name == "loss"'
    for metric in repo.query_metrics(query):
        context = metric.context.to_dict()
        print(f"{metric.name} {context}: last={metric.values[-1]:.4f} at step {metric.steps[-1]}")


if __name__ == "__main__":
    main()
