"""AimLogger.log_image / log_text and the PyTorch histograms, in real tiny trainings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from aim_core import Repo, Run
from aim_core.integrations.lightning import AimLogger
from aim_core.integrations.pytorch import track_gradients_dists, track_params_dists


def loader() -> DataLoader:
    x = torch.rand(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, x.mean((1, 2, 3)).unsqueeze(1)), batch_size=4)


class ImageModel(LightningModule):
    """A tiny model that logs its inputs as images and a text line per validation."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(48, 1)

    def forward(self, x):
        return self.layer(x.flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.logger.log_image("val_inputs", list(x), step=self.current_epoch,
                              caption=[f"input {i}" for i in range(len(x))])
        self.logger.log_image("train_first", x[0], step=self.current_epoch)
        self.logger.log_text("val_note", f"epoch {self.current_epoch}", step=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return loader()

    def val_dataloader(self):
        return loader()


def trainer(logger, tmp_path) -> Trainer:
    return Trainer(accelerator="cpu", devices=1, max_epochs=2, limit_train_batches=1,
                   limit_val_batches=1, num_sanity_val_steps=0, log_every_n_steps=1,
                   enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, default_root_dir=tmp_path, logger=logger)


def test_log_image_and_log_text_follow_the_key_mapping(tmp_path):
    repo = tmp_path / "repo"
    logger = AimLogger(repo=str(repo), experiment="images")
    trainer(logger, tmp_path / "work").fit(ImageModel())
    run = Repo(str(repo)).get_run(logger.version)
    inputs = run.get_image_sequence("inputs", {"subset": "val"})
    assert inputs.steps.tolist() == [0, 1]
    first_batch = inputs.values.first()[1]
    assert [i.caption for i in first_batch] == ["input 0", "input 1", "input 2", "input 3"]
    assert first_batch[0].size == (4, 4)
    expected = loader().dataset.tensors[0][0].permute(1, 2, 0).numpy()
    assert np.allclose(np.asarray(first_batch[0].to_pil_image()) / 255, expected, atol=1 / 255)
    single = run.get_image_sequence("first", {"subset": "train"}).values.last()[1]
    assert single.caption == "" and single.size == (4, 4)
    notes = run.get_text_sequence("note", {"subset": "val"})
    assert [t.data for t in notes.values.values_list()] == ["epoch 0", "epoch 1"]


def test_a_bad_image_warns_once_and_training_goes_on(tmp_path):
    class BadImages(ImageModel):
        def validation_step(self, batch, batch_idx):
            self.logger.log_image("val_broken", [np.zeros((2, 2, 2, 2))], step=0)

    logger = AimLogger(repo=str(tmp_path / "repo"))
    with pytest.warns(UserWarning, match="not tracking 'val_broken'") as caught:
        trainer(logger, tmp_path / "work").fit(BadImages())
    assert len([w for w in caught if "val_broken" in str(w.message)]) == 1
    run = Repo(str(tmp_path / "repo")).get_run(logger.version)
    assert run.get_metric("loss", {"subset": "train"}).count == 2


def test_params_and_gradient_histograms_of_a_real_model(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 1, bias=False))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with Run(repo=tmp_path) as run:
        for _ in range(3):
            loss = model(torch.randn(16, 4)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            track_params_dists(model, run)
            track_gradients_dists(model, run)
            optimizer.step()
    stored = Repo(tmp_path).get_run(run.hash)
    names = {(s.name, tuple(sorted(s.context.items()))) for s in stored.sequences("distribution")}
    assert names == {
        ("0.Linear", (("params", "weights"), ("type", "data"))),
        ("0.Linear", (("params", "biases"), ("type", "data"))),
        ("2.Linear", (("params", "weights"), ("type", "data"))),
        ("0.Linear", (("params", "weights"), ("type", "gradients"))),
        ("0.Linear", (("params", "biases"), ("type", "gradients"))),
        ("2.Linear", (("params", "weights"), ("type", "gradients"))),
    }
    weights = stored.get_distribution_sequence("2.Linear", {"type": "data", "params": "weights"})
    assert weights.steps.tolist() == [0, 1, 2]
    counts, edges = weights.values.first()[1].to_np_histogram()
    assert counts.sum() == 8 and len(edges) == 65
