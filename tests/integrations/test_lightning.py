"""AimLogger: real tiny Lightning trainings on CPU, read back through ``aim_core.Repo``."""

from __future__ import annotations

import atexit
import json
import math
import pickle
import threading
import warnings
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.logger import DummyExperiment
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from aim_core import Repo, Run
from aim_core.integrations.lightning import AimLogger

# How Lightning's raw keys must be stored: (name, context).
EXPECTED_NAMES = {
    "train_loss": ("loss", {"subset": "train"}),
    "train_acc_step": ("acc", {"subset": "train", "interval": "step"}),
    "train_acc_epoch": ("acc", {"subset": "train", "interval": "epoch"}),
    "val_loss": ("loss", {"subset": "val"}),
    "test_loss": ("loss", {"subset": "test"}),
}


def _loader() -> DataLoader:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)


class TinyModel(LightningModule):
    """A linear regression that logs train/val/test losses the usual Lightning way."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.fail_at = fail_at

    def _loss(self, batch) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def training_step(self, batch, batch_idx):
        if self.fail_at is not None and self.global_step >= self.fail_at:
            raise RuntimeError("boom")
        loss = self._loss(batch)
        self.log("train_loss", loss)
        self.log("train_acc", 1 / (1 + loss), on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return _loader()

    def val_dataloader(self):
        return _loader()

    def test_dataloader(self):
        return _loader()


class ConfiguredModel(TinyModel):
    """Hyperparameters from an OmegaConf config, a Namespace and a callable."""

    def __init__(self, cfg, args: Namespace, activation=torch.tanh) -> None:
        super().__init__()
        self.save_hyperparameters()


class DictConfigModel(TinyModel):
    """``save_hyperparameters(cfg)`` with a DictConfig as the only argument."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.save_hyperparameters(cfg)


class ChattyModel(TinyModel):
    """Sends the logger a string value at every step."""

    def training_step(self, batch, batch_idx):
        self.logger.log_metrics({"train_note": "n/a", "train_ok": 1.0}, step=self.global_step)
        return super().training_step(batch, batch_idx)


def _destroy_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class RankProbe(TinyModel):
    """Writes what each rank's logger looks like into ``marker_dir``."""

    def __init__(self, marker_dir: str) -> None:
        super().__init__()
        self.marker_dir = marker_dir

    def setup(self, stage: str) -> None:
        # A gloo worker that exits with its process group alive is sometimes aborted by torch
        # ("terminate called without an active exception", pytorch/pytorch#190489); Lightning
        # destroys the group at exit only for NCCL.
        atexit.register(_destroy_process_group)

    def on_train_start(self) -> None:
        logger = self.logger
        seen = {
            "dummy": isinstance(logger.experiment, DummyExperiment),
            "run": isinstance(logger.experiment, Run),
            "dirs": [logger.name, logger.save_dir, logger.log_dir],
        }
        Path(self.marker_dir, f"rank{self.global_rank}.json").write_text(json.dumps(seen))


class RecordingCSVLogger(CSVLogger):
    """Lightning's own CSV logger, remembering every ``log_metrics`` call it receives."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, dict]] = []

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append((step, dict(metrics)))
        super().log_metrics(metrics, step)


@pytest.fixture
def repo_dir(tmp_path, monkeypatch) -> Path:
    """An empty repo as the default repo, with the working directory elsewhere."""
    path = tmp_path / "repo"
    Repo(str(path), init=True)
    monkeypatch.setenv("AIM_CORE_REPO", str(path))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return path


def _trainer(logger, tmp_path: Path, **overrides) -> Trainer:
    kwargs = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=1,
        limit_test_batches=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path / "work",
        logger=logger,
    )
    return Trainer(**{**kwargs, **overrides})


def _only_run(path: Path):
    runs = list(Repo(str(path)).iter_runs())
    assert len(runs) == 1, [r.hash for r in runs]
    return runs[0]


def _ctx(context) -> tuple:
    return tuple(sorted(dict(context).items()))


def _sequences(run) -> dict[tuple, tuple[list, list]]:
    """``{(name, context): (steps, epochs)}``, NaN epochs as None."""
    return {
        (m.name, _ctx(m.context)): (
            m.steps.tolist(),
            [None if math.isnan(e) else e for e in m.epochs.tolist()],
        )
        for m in run.metrics()
    }


def test_fit_then_test_stores_exactly_what_lightning_logs(repo_dir, tmp_path):
    aim = AimLogger(experiment="seq", system_tracking_interval=None)  # only what Lightning logs
    csv = RecordingCSVLogger(tmp_path / "csv")
    trainer = _trainer([aim, csv], tmp_path)
    model = TinyModel()
    trainer.fit(model)
    trainer.test(model)

    expected = sorted(
        (EXPECTED_NAMES[key][0], _ctx(EXPECTED_NAMES[key][1]), step, float(m["epoch"]), value)
        for step, m in csv.calls
        for key, value in m.items()
        if key != "epoch"
    )
    run = _only_run(repo_dir)
    stored = sorted(
        (m.name, _ctx(m.context), int(s), float(e), float(v))
        for m in run.metrics()
        for s, e, v in zip(m.steps, m.epochs, m.values, strict=True)
    )
    assert [p[:4] for p in stored] == [p[:4] for p in expected]
    assert [p[4] for p in stored] == pytest.approx([p[4] for p in expected])

    loss = {ctx: seq for (name, ctx), seq in _sequences(run).items() if name == "loss"}
    assert loss == {
        (("subset", "train"),): ([0, 1], [0.0, 1.0]),
        (("subset", "val"),): ([0, 1], [0.0, 1.0]),
        (("subset", "test"),): ([2], [2.0]),
    }
    assert run.status == "finished"
    assert run.experiment == "seq" and aim.version == run.hash
    assert run["model"]["num_parameters"] == 5


def test_key_mapping_prefix_and_input_left_untouched(repo_dir):
    logger = AimLogger(prefix="exp", system_tracking_interval=None)
    metrics = {"val_loss/dataloader_idx_1": 0.5, "train_loss_epoch": 0.25, "lr": 0.1, "epoch": 3}
    before = dict(metrics)
    logger.log_metrics(metrics, step=7)
    logger.finalize("success")

    assert metrics == before
    assert _sequences(_only_run(repo_dir)) == {
        ("exp-loss", (("dataloader", 1), ("subset", "val"))): ([7], [3.0]),
        ("exp-loss", (("interval", "epoch"), ("subset", "train"))): ([7], [3.0]),
        ("exp-lr", ()): ([7], [3.0]),
    }


def test_hparams_from_omegaconf_and_namespace(repo_dir, tmp_path):
    cfg = OmegaConf.create({"optim": {"lr": 0.1, "name": "sgd"}, "width": 4, "tag": "w${width}"})
    args = Namespace(seed=3, device=torch.device("cpu"))
    trainer = _trainer(AimLogger(), tmp_path, max_epochs=1)
    model = ConfiguredModel(cfg, args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model)
        trainer.validate(model)
        trainer.test(model)

    assert _only_run(repo_dir)["hparams"] == {
        "cfg": {"optim": {"lr": 0.1, "name": "sgd"}, "width": 4, "tag": "w4"},
        "args": {"seed": 3, "device": "cpu"},
        "activation": "tanh",
    }
    assert len([w for w in caught if "stored as str" in str(w.message)]) == 1


def test_hparams_from_a_dictconfig_alone(repo_dir, tmp_path):
    cfg = OmegaConf.create({"width": 4, "name": "net-${width}"})
    _trainer(AimLogger(), tmp_path, max_epochs=1).fit(DictConfigModel(cfg))
    assert _only_run(repo_dir)["hparams"] == {"width": 4, "name": "net-4"}


def test_pickled_logger_and_trainer_write_into_the_same_run(repo_dir, tmp_path):
    logger = AimLogger(experiment="pickled")
    logger.log_metrics({"probe": 1.0}, step=0)  # the original stays open throughout
    copy = pickle.loads(pickle.dumps(logger))
    copy.log_metrics({"probe": 2.0}, step=1)
    trainer = pickle.loads(pickle.dumps(_trainer(logger, tmp_path, max_epochs=1)))
    assert trainer.logger is not logger and trainer.logger.version == logger.version
    trainer.fit(TinyModel())
    logger.log_metrics({"probe": 3.0}, step=2)
    copy.finalize("success")
    logger.finalize("success")

    run = _only_run(repo_dir)
    sequences = _sequences(run)
    assert sequences[("probe", ())] == ([0, 1, 2], [None, None, None])
    assert sequences[("loss", (("subset", "train"),))] == ([0], [0.0])
    assert run.hash == copy.version and run.status == "finished"


def test_a_given_run_stays_open_and_run_hash_resumes_it(repo_dir, tmp_path):
    run = Run(repo=str(repo_dir), experiment="mine")
    logger = AimLogger(run=run, context_prefixes={})
    _trainer(logger, tmp_path, max_epochs=1, limit_val_batches=0).fit(TinyModel())
    assert run.active and logger.name == "mine"  # the caller's run is the caller's to close
    run.close()
    resumed = AimLogger(run_hash=run.hash)
    resumed.log_metrics({"extra": 1.0}, step=9)
    resumed.finalize("failed")

    stored = _only_run(repo_dir)
    sequences = _sequences(stored)
    assert sequences[("train_loss", ())] == ([0], [0.0])  # prefixes switched off
    assert sequences[("extra", ())] == ([9], [None])
    assert stored.status == "failed" and stored.experiment == "mine"


def test_ddp_spawn_creates_one_run_and_rank1_sees_dummy(repo_dir, tmp_path):
    logger = AimLogger(experiment="ddp")
    trainer = _trainer(
        logger, tmp_path, max_epochs=1, strategy="ddp_spawn", devices=2, limit_val_batches=0
    )
    trainer.fit(RankProbe(str(tmp_path)))

    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0["run"] and not rank0["dummy"]
    assert rank1["dummy"] and not rank1["run"]
    assert rank1["dirs"] == ["ddp", None, None]  # Lightning falls back to default_root_dir
    run = _only_run(repo_dir)
    assert run.experiment == "ddp" and run.status == "finished"
    assert ("loss", (("subset", "train"),)) in _sequences(run)


def test_raising_training_ends_failed(repo_dir, tmp_path):
    trainer = _trainer(AimLogger(), tmp_path, max_epochs=3)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(TinyModel(fail_at=1))
    run = _only_run(repo_dir)
    assert run.status == "failed"
    assert _sequences(run)[("loss", (("subset", "train"),))][0] == [0]


def test_checkpoints_go_to_save_dir_not_the_repo(repo_dir, tmp_path):
    logger = AimLogger(experiment="ckpt")
    callback = ModelCheckpoint(monitor="val_loss", save_top_k=1)
    trainer = _trainer(logger, tmp_path, enable_checkpointing=True, callbacks=[callback])
    trainer.fit(TinyModel())

    checkpoints = list(tmp_path.rglob("*.ckpt"))
    assert checkpoints
    for path in checkpoints:
        assert path.parent == tmp_path / "work" / "ckpt" / logger.version / "checkpoints"
        assert repo_dir not in path.parents
    recorded = _only_run(repo_dir)["checkpoints"]
    assert recorded["best_model_path"] == callback.best_model_path
    assert recorded["best_model_score"] == pytest.approx(float(callback.best_model_score))
    with pytest.raises(ValueError, match="inside an aim-core repo"):
        AimLogger(save_dir=repo_dir / ".aim_core" / "ckpt")


def test_string_metric_warns_once_and_training_goes_on(repo_dir, tmp_path):
    trainer = _trainer(AimLogger(), tmp_path, max_epochs=3, limit_val_batches=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(ChattyModel())

    assert len([w for w in caught if "train_note" in str(w.message)]) == 1
    run = _only_run(repo_dir)
    sequences = _sequences(run)
    assert sequences[("ok", (("subset", "train"),))][0] == [0, 1, 2]
    assert ("note", (("subset", "train"),)) not in sequences
    assert run.status == "finished"


def test_pytorch_lightning_flavour(repo_dir, tmp_path):
    import pytorch_lightning as pl

    from aim_core.integrations.pytorch_lightning import AimLogger as PLAimLogger

    class PLModel(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    logger = PLAimLogger()
    assert isinstance(logger, pl.loggers.Logger)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=2, limit_train_batches=1, log_every_n_steps=1, logger=logger,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(PLModel(), train_dataloaders=_loader())
    assert _sequences(_only_run(repo_dir))[("loss", (("subset", "train"),))] == ([0, 1], [0.0, 1.0])


class ListConfigModel(TinyModel):
    """An OmegaConf ListConfig as hyperparameters: nested in ``save_hyperparameters``, or
    given to the logger as they are (Lightning refuses a ListConfig at the root itself)."""

    def __init__(self, cfg, nested: bool) -> None:
        super().__init__()
        self.cfg, self.nested = cfg, nested
        if nested:
            self.save_hyperparameters({"layers": cfg})

    def on_train_start(self) -> None:
        if not self.nested:
            self.logger.log_hyperparams(self.cfg)


@pytest.mark.parametrize("nested", [False, True])
def test_listconfig_hparams_are_stored_as_lists(repo_dir, tmp_path, nested):
    cfg = OmegaConf.create([4, {"width": 8}])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer(AimLogger(), tmp_path, max_epochs=1).fit(ListConfigModel(cfg, nested))
    stored = _only_run(repo_dir)
    expected = [4, {"width": 8}]
    assert stored["hparams"] == ({"layers": expected} if nested else expected)
    assert stored.status == "finished"
    assert not [w for w in caught if "AimLogger" in str(w.message)]


def test_unconvertible_hparams_never_stop_training(repo_dir, tmp_path):
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    class Unresolvable(TinyModel):
        def __init__(self) -> None:
            super().__init__()
            self.save_hyperparameters({"a": Opaque(), "b": Opaque(), "missing": OmegaConf.create(
                {"x": "${nowhere}"})})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer(AimLogger(), tmp_path, max_epochs=1).fit(Unresolvable())
    stored = _only_run(repo_dir)
    assert stored["hparams"]["a"] == "opaque" and stored["hparams"]["b"] == "opaque"
    assert stored["hparams"]["missing"].startswith("{")  # str() of the config
    assert len([w for w in caught if "stored as str" in str(w.message)]) == 2
    assert stored.status == "finished"


def test_aims_subset_prefix_arguments(repo_dir, tmp_path):
    logger = AimLogger(experiment="aim_on_pt_lightning", train_metric_prefix="train_",
                       val_metric_prefix=None, test_metric_prefix="test_",
                       system_tracking_interval=None)
    trainer = _trainer(logger, tmp_path, max_epochs=1)
    trainer.fit(TinyModel())
    trainer.test(TinyModel())
    assert set(_sequences(_only_run(repo_dir))) == {
        ("loss", (("subset", "train"),)), ("acc", (("interval", "step"), ("subset", "train"))),
        ("acc", (("interval", "epoch"), ("subset", "train"))), ("val_loss", ()),
        ("loss", (("subset", "test"),))}
    custom = AimLogger(test_metric_prefix="tst_", system_tracking_interval=None)
    custom.log_metrics({"tst_acc": 3.0, "test_acc": 4.0}, step=0)
    custom.finalize("success")
    assert {m.name: m.context.to_dict() for m in Repo(str(repo_dir)).get_run(
        custom.version).metrics()} == {"acc": {"subset": "test"}, "test_acc": {}}
    with pytest.raises(ValueError, match="context_prefixes"):
        AimLogger(val_metric_prefix="v_", context_prefixes={"subset": {"val": "v_"}})


def test_aims_run_arguments_reach_the_run(repo_dir):
    logger = AimLogger(system_tracking_interval=None, log_system_params=False,
                       capture_terminal_logs=False)
    options = logger.experiment._system_options
    assert (options["system_tracking_interval"], options["log_system_params"],
            options["capture_terminal_logs"]) == (None, False, False)
    logger.finalize("success")
    default = AimLogger()
    options = default.experiment._system_options  # Aim's adapter defaults
    assert (options["system_tracking_interval"], options["log_system_params"],
            options["capture_terminal_logs"]) == (10, True, True)
    default.finalize("success")
    stored = Repo(str(repo_dir)).get_run(default.version)
    assert "packages" in stored["__system_params"]  # and they took effect
    assert stored.get_metric("__system__cpu") is not None
    quiet = Repo(str(repo_dir)).get_run(logger.version)
    assert quiet.get("__system_params") is None and quiet.get_metric("__system__cpu") is None


def test_without_a_repo_the_runs_go_to_save_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("AIM_CORE_REPO", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    logger = AimLogger(save_dir=tmp_path / "out")
    logger.log_metrics({"x": 1.0}, step=0)
    logger.finalize("success")
    assert Repo(str(tmp_path / "out")).list_all_runs() == [logger.version]
    assert not list((tmp_path / "cwd").iterdir())
    Repo(str(tmp_path), init=True)  # a repo above the working directory wins over save_dir
    again = AimLogger(save_dir=tmp_path / "out")
    again.log_metrics({"x": 1.0}, step=0)
    again.finalize("success")
    assert Repo(str(tmp_path)).list_all_runs() == [again.version]


def test_fit_and_test_leave_no_thread_and_write_only_the_repo_and_root_dir(tmp_path,
                                                                           monkeypatch):
    monkeypatch.delenv("AIM_CORE_REPO", raising=False)
    repo, root, cwd = tmp_path / "repo", tmp_path / "root", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    threads_before = set(threading.enumerate())
    files_before = set(tmp_path.rglob("*"))
    logger = AimLogger(repo=str(repo), experiment="clean")
    trainer = _trainer(logger, tmp_path, default_root_dir=root, enable_checkpointing=True,
                       max_epochs=1)
    model = TinyModel()
    trainer.fit(model)
    trainer.test(model)

    left = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not left, f"threads left running: {left}"
    written = set(tmp_path.rglob("*")) - files_before
    outside = [p for p in written if not {repo, root} & ({p} | set(p.parents))]
    assert not outside, f"written outside the repo and default_root_dir: {outside}"
    checkpoints = list(root.rglob("*.ckpt"))
    assert checkpoints and all(p.parent == root / "clean" / logger.version / "checkpoints"
                               for p in checkpoints)
    run = _only_run(repo)
    assert run.status == "finished" and ("loss", (("subset", "test"),)) in _sequences(run)


class ThreeBatchModel(TinyModel):
    """Three training batches per epoch, so epoch e covers steps 3e..3e+2."""

    def __init__(self, data_seed: int) -> None:
        super().__init__()
        self.data_seed = data_seed

    def train_dataloader(self):
        x = torch.randn(12, 4, generator=torch.Generator().manual_seed(self.data_seed))
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)


def test_a_resumed_training_that_relogs_steps_shows_each_step_once(repo_dir, tmp_path):
    first = AimLogger(experiment="resume")
    keep = ModelCheckpoint(save_top_k=-1, every_n_epochs=1, filename="{epoch}")
    _trainer(first, tmp_path, max_epochs=4, limit_train_batches=3, limit_val_batches=0,
             enable_checkpointing=True, callbacks=[keep]).fit(ThreeBatchModel(data_seed=1))
    before = _only_run(repo_dir).get_metric("loss", {"subset": "train"}).values.tolist()
    checkpoint = next(tmp_path.rglob("epoch=1.ckpt"))  # after steps 0-5

    again = AimLogger(run_hash=first.version)
    csv = RecordingCSVLogger(tmp_path / "csv")
    trainer = _trainer([again, csv], tmp_path, max_epochs=4, limit_train_batches=3,
                       limit_val_batches=0)
    trainer.fit(ThreeBatchModel(data_seed=2), ckpt_path=str(checkpoint))  # other losses
    relogged = {step: m["train_loss"] for step, m in csv.calls if "train_loss" in m}
    assert sorted(relogged) == list(range(6, 12))

    loss = _only_run(repo_dir).get_metric("loss", {"subset": "train"})
    assert loss.steps.tolist() == list(range(12))  # steps 6-11 once each, not twice
    assert loss.values.tolist()[:6] == before[:6]
    assert loss.values.tolist()[6:] == pytest.approx([relogged[s] for s in range(6, 12)])
    assert loss.values.tolist()[6:] != pytest.approx(before[6:])  # the re-logged values won
    assert loss.count == 12 and loss.last_step == 11


def test_a_logger_never_finalized_leaves_only_threads_lightning_can_stop(repo_dir, tmp_path):
    before = set(threading.enumerate())
    logger = AimLogger(experiment="left-open")
    _ = logger.experiment
    logger.log_metrics({"a": 1.0}, step=0)
    logger.save()
    trainer = pickle.loads(pickle.dumps(_trainer(logger, tmp_path)))
    trainer.logger.log_metrics({"acc": 1.0}, step=1)
    # what Lightning's test conftest does with the threads a test leaves behind
    for thread in set(threading.enumerate()) - before:
        stop = getattr(thread, "stop", None) or getattr(thread, "exit", None)
        assert thread.daemon and callable(stop), f"Lightning would call this a zombie: {thread}"
        stop()
        assert not thread.is_alive()
    stored = Repo(str(repo_dir)).get_run(logger.version)
    assert stored.get_metric("acc").values.tolist() == [1.0]  # flushed by stop()
    logger.log_metrics({"a": 2.0}, step=2)
    logger.finalize("success")
    trainer.logger.finalize("success")  # the unpickled copy shares the run
    stored = _only_run(repo_dir)
    assert stored.get_metric("a").values.tolist() == [1.0, 2.0] and stored.status == "finished"
