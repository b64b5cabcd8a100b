"""Two-process DDP training on CPU logging through a tracking server as one run.

    python examples/remote_ddp.py [--server aim://HOST:53800]

With no ``--server`` the script starts ``aim-core server`` on a free local port over a
temporary repo (what you would run once on a machine every trainer can reach), trains with
Lightning's ``ddp_spawn`` on 2 CPU processes (only rank 0 writes; the other rank's logger
is a no-op), then reads the run back through the server. On a cluster, run the server on
one node and give every job ``AimLogger(repo="aim://that-node:53800")``; with a token, set
``AIM_CORE_TOKEN`` in the jobs' environment.
"""

from __future__ import annotations

import argparse
import atexit
import socket
import subprocess
import sys
import tempfile
import time

import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from aim_core import Repo
from aim_core.integrations.lightning import AimLogger


class Regressor(LightningModule):
    """A small MLP learning y = sin(x1) + x2^2; logs train and val losses."""

    def __init__(self, hidden: int = 16, lr: float = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.Tanh(),
                                       torch.nn.Linear(hidden, 1))

    def _loss(self, batch) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def setup(self, stage: str) -> None:
        # Each worker destroys its gloo process group before exit: torch can abort a worker that
        # exits with it alive (pytorch/pytorch#190489), and Lightning does this only for NCCL.
        atexit.register(destroy_process_group)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def destroy_process_group() -> None:
    """Destroys this process's process group, if it has one."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def loaders(n: int = 512) -> tuple[DataLoader, DataLoader]:
    """Generated train and validation data."""
    x = torch.rand(n, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
    y = (torch.sin(x[:, 0]) + x[:, 1] ** 2).unsqueeze(1)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=32), DataLoader(data, batch_size=128)


def start_local_server() -> tuple[subprocess.Popen, str]:
    """``aim-core server`` on a free port over a temporary repo; returns it and its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    repo = tempfile.mkdtemp(prefix="remote_ddp_")
    code = "import sys; from aim_core.cli import main; sys.exit(main())"
    server = subprocess.Popen([sys.executable, "-c", code, "server", "--repo", repo,
                               "--port", str(port)], stdout=subprocess.PIPE, text=True)
    print(server.stdout.readline().strip())
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, f"aim://127.0.0.1:{port}"


def main() -> None:
    """Train with 2 DDP processes through the server, then print what the server stored."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=None, help="server URL (default: start one here)")
    args = parser.parse_args()
    server, url = (None, args.server) if args.server else start_local_server()
    try:
        logger = AimLogger(repo=url, experiment="remote-ddp", save_dir=tempfile.mkdtemp())
        trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=3,
                          logger=logger, log_every_n_steps=2, enable_progress_bar=False,
                          enable_model_summary=False)
        train, val = loaders()
        trainer.fit(Regressor(), train, val)

        # ddp_spawn trains in child processes: ask the server for the newest run of the
        # experiment (logger.version here would open a new run in this parent process).
        found = Repo(url).query_runs('run.experiment == "remote-ddp"')
        run = max((match.run for match in found), key=lambda r: r.creation_time)
        print(f"run {run.hash} on {url}: {run.status}, hparams {run['hparams']}")
        for metric in run.metrics():
            print(f"  {metric.name} {metric.context.to_dict()}: {metric.count} points, "
                  f"last {metric.last:.4f} at step {metric.last_step}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
