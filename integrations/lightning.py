"""PyTorch Lightning logger that tracks a training into an aim-core Run.

``from aim_core.integrations.lightning import AimLogger`` gives a logger for
``lightning.pytorch`` (falling back to ``pytorch_lightning`` when ``lightning``
is not installed); ``aim_core.integrations.pytorch_lightning.AimLogger`` is the
``pytorch_lightning`` flavour. Both share :class:`AimLoggerCore`.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only

from aim_core import Repo, Run
from aim_core.integrations.lightning_objects import LoggerObjects
from aim_core.integrations.lightning_params import LoggerParams, scalar
from aim_core.integrations.naming import MetricNaming, affixes, subset_prefixes

DEFAULT_CONTEXT_POSTFIXES = {"interval": {"step": "_step", "epoch": "_epoch"}}
DATALOADER_PATTERN = {r"/dataloader_idx_(\d+)$": "dataloader"}
EPOCH_KEY = "epoch"  # injected by Lightning into every metrics dict it logs


def _default_repo(save_dir: str | None) -> str | None:
    """With no repo to be found, a logger given ``save_dir`` keeps its runs there too."""
    if save_dir is None or os.environ.get("AIM_CORE_REPO"):
        return None
    return None if Repo.exists(Repo.default_repo_path()) else save_dir


class AimLoggerCore(LoggerParams, LoggerObjects):
    """Track a Lightning training into an aim-core ``Run``.

    The constructor creates nothing; the run is opened on rank 0 the first time
    ``experiment`` is used. Keys map to ``(name, context)``: ``train_loss_step`` is
    ``loss {"subset": "train", "interval": "step"}``; ``context_prefixes`` and
    ``context_postfixes`` take Aim's ``{ctx_key: {ctx_value: affix}}`` form;
    ``train_metric_prefix``, ``val_metric_prefix`` and ``test_metric_prefix`` are Aim's
    older way to set the subset prefixes. ``system_tracking_interval``,
    ``log_system_params`` and ``capture_terminal_logs`` are passed to the ``Run``.
    Checkpoints go to ``save_dir/name/version/checkpoints``, by default under the
    Trainer's ``default_root_dir`` as with Lightning's own loggers, never inside the repo.
    Without ``repo``, runs go to the default repo, or to ``save_dir`` when there is none.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        repo: Any = None,
        experiment: str | None = None,
        run_name: str | None = None,
        run_hash: str | None = None,
        run: Run | None = None,
        prefix: str = "",
        context_prefixes: Mapping[str, Mapping[str, str]] | None = None,
        context_postfixes: Mapping[str, Mapping[str, str]] | None = None,
        save_dir: str | os.PathLike | None = None,
        log_checkpoints: bool = True,
        train_metric_prefix: str | None = "train_",
        val_metric_prefix: str | None = "val_",
        test_metric_prefix: str | None = "test_",
        system_tracking_interval: float | None = 10,
        log_system_params: bool = True,
        capture_terminal_logs: bool = True,
    ) -> None:
        super().__init__()
        if run is not None:
            repo, run_hash = run.repo.path, run.hash
            experiment = experiment or run.experiment
        self._repo = None if repo is None else os.fspath(getattr(repo, "path", repo))
        self._experiment_name = experiment
        self._run_name = run_name
        self._run_hash = run_hash
        self._experiment: Run | None = run
        self._owns_run = run is None  # a run passed in is the caller's to close
        self._prefix = prefix
        subsets = {"train": train_metric_prefix, "val": val_metric_prefix,
                   "test": test_metric_prefix}
        self._naming = MetricNaming(
            prefixes=affixes(subset_prefixes(context_prefixes, subsets)),
            suffixes=affixes(context_postfixes, DEFAULT_CONTEXT_POSTFIXES),
            patterns=DATALOADER_PATTERN,
        )
        self._save_dir = os.path.abspath(os.fspath(save_dir)) if save_dir else None
        if self._save_dir and ".aim_core" in PurePath(self._save_dir).parts:
            raise ValueError(f"save_dir {self._save_dir!r} is inside an aim-core repo.")
        self._log_checkpoints = log_checkpoints
        self._run_options = {"system_tracking_interval": system_tracking_interval,
                             "log_system_params": log_system_params,
                             "capture_terminal_logs": capture_terminal_logs}
        self._warned: set[str] = set()

    def _open_run(self) -> Run:
        """Return the open run, creating or re-attaching to it on first use."""
        if self._experiment is None:
            repo = self._repo if self._repo is not None else _default_repo(self._save_dir)
            run = Run(self._run_hash, repo=repo, experiment=self._experiment_name,
                      **self._run_options)
            if self._run_name and run.name != self._run_name:
                run.name = self._run_name
            self._experiment, self._run_hash, self._owns_run = run, run.hash, True
        return self._experiment

    @property
    def name(self) -> str:
        """The experiment name (``lightning_logs`` when none was given)."""
        return self._experiment_name or "lightning_logs"

    @property
    def version(self) -> str | None:
        """The run hash; on rank 0 this opens the run, elsewhere it is ``None`` until known."""
        if self._run_hash is None and rank_zero_only.rank == 0:
            self._open_run()
        return self._run_hash

    @property
    def save_dir(self) -> str | None:
        """Root folder for checkpoints; None lets Lightning use ``default_root_dir``."""
        return self._save_dir

    @property
    def root_dir(self) -> str | None:
        """``save_dir/name``: the parent of every version's folder (None without save_dir)."""
        return os.path.join(self._save_dir, self.name) if self._save_dir else None

    @property
    def log_dir(self) -> str | None:
        """``save_dir/name/version``, the folder Lightning puts checkpoints under."""
        root, version = self.root_dir, self.version
        if root is None:
            return None
        return os.path.join(root, version) if version else root

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, UserWarning, stacklevel=3)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Track every value but ``epoch``, which becomes the points' epoch."""
        run = self.experiment
        epoch = scalar(metrics.get(EPOCH_KEY))
        if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
            epoch = None
        for key, value in metrics.items():
            if key == EPOCH_KEY:
                continue
            name, context = self._naming.split(key)
            if self._prefix:
                name = f"{self._prefix}{self.LOGGER_JOIN_CHAR}{name}"
            try:
                run.track(value, name=name, step=step, epoch=epoch, context=context)
            except Exception as err:  # a bad value must never stop training
                self._warn_once(key, f"AimLogger: not tracking {key!r} ({err}).")

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Flush and record ``finished``/``failed``; a later call re-attaches to the run."""
        run = self._experiment
        if run is None:
            return
        if not self._owns_run:
            run.flush()
            return
        run.close(status="failed" if status == "failed" else "finished")
        self._experiment = None

    def __getstate__(self) -> dict[str, Any]:
        """Drop the live run and keep its hash, so the copy re-attaches to the same run."""
        state = self.__dict__.copy()
        state["_experiment"], state["_owns_run"] = None, True
        return state


_CLASSES: dict[str, type] = {}


def logger_class(package: str, module: str) -> type:
    """Build (once) an ``AimLogger`` on ``package``'s ``Logger``, importable from ``module``."""
    if package not in _CLASSES:
        loggers = importlib.import_module(f"{package}.loggers.logger")

        class AimLogger(AimLoggerCore, loggers.Logger):
            __doc__ = AimLoggerCore.__doc__

            @property
            @loggers.rank_zero_experiment
            def experiment(self) -> Run:
                """The aim-core ``Run`` (Lightning's ``DummyExperiment`` on other ranks)."""
                return self._open_run()

        AimLogger.__module__, AimLogger.__qualname__ = module, "AimLogger"
        _CLASSES[package] = AimLogger
    return _CLASSES[package]


def __getattr__(name: str) -> Any:
    """Build ``AimLogger`` on first access, so importing this module imports no framework."""
    if name != "AimLogger":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        importlib.import_module("lightning.pytorch")
    except ImportError:
        from aim_core.integrations.pytorch_lightning import AimLogger

        return AimLogger
    return logger_class("lightning.pytorch", __name__)
