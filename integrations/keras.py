"""Keras 3 callback that tracks a `fit`/`evaluate` into an aim-core run (any backend)."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import keras

from aim_core import Repo, Run
from aim_core.integrations.keras_setup import ModelSetup
from aim_core.integrations.naming import MetricNaming

LOG_FREQS = ("epoch", "batch")


def default_naming() -> MetricNaming:
    """Keras keys: ``val_*`` is validation, everything else is training."""
    return MetricNaming(prefixes={"val_": {"subset": "val"}}, default={"subset": "train"})


def process_index() -> int:
    """This process's rank, from the torch/jax distributed state or the ``RANK`` env var."""
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    if "jax" in sys.modules:
        return sys.modules["jax"].process_index()
    return int(os.environ.get("RANK", "0") or 0)


class AimCallback(ModelSetup, keras.callbacks.Callback):
    """Track Keras logs as aim-core sequences and the training setup as params.

    ``log_freq`` is ``"epoch"`` (default), ``"batch"`` or an int N (every N-th batch).
    The run opens in ``on_train_begin`` on process 0 only and closes in ``on_train_end``;
    a later ``fit`` or ``evaluate`` with the same callback re-opens it. A ``run`` passed
    in is used as is and left open. ``system_tracking_interval``, ``log_system_params``
    and ``capture_terminal_logs`` are passed to the ``Run``, as in Aim.
    """

    async_safe = True  # batch hooks touch neither the model nor keras state

    def __init__(
        self,
        repo: str | os.PathLike | Repo | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        run_hash: str | None = None,
        run: Run | None = None,
        log_freq: str | int = "epoch",
        naming: MetricNaming | None = None,
        system_tracking_interval: float | None = 10,
        log_system_params: bool = True,
        capture_terminal_logs: bool = True,
    ) -> None:
        super().__init__()
        if log_freq not in LOG_FREQS and not (isinstance(log_freq, int) and log_freq > 0):
            raise ValueError(
                f"log_freq must be 'epoch', 'batch' or a positive int, not {log_freq!r}"
            )
        self._repo, self._experiment, self._run_name = repo, experiment, run_name
        self._run_hash = run.hash if run is not None else run_hash
        self._run, self._owns_run = run, run is None
        self._every = 0 if log_freq == "epoch" else 1 if log_freq == "batch" else int(log_freq)
        self._naming = naming or default_naming()
        self._in_fit = False
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._done_batches = 0  # running global batch count at the start of this epoch
        self._current_epoch = 0
        self._epoch_batches = 0
        self._last_tracked_batch = -1
        self._batch_keys: set[str] = set()
        self._run_options = {"system_tracking_interval": system_tracking_interval,
                             "log_system_params": log_system_params,
                             "capture_terminal_logs": capture_terminal_logs}

    @property
    def run_hash(self) -> str | None:
        """Hash of the run this callback writes to, once it exists."""
        return self._run_hash

    @property
    def experiment(self) -> Run | None:
        """The open run (opened now if needed); None on processes other than 0."""
        return self._open()

    def close(self) -> None:
        """Close the run now (Aim's ``close()``); a run passed in stays open."""
        self._close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_run=None, _lock=None, _model=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    # -- run lifecycle -------------------------------------------------------------
    def _open(self) -> Run | None:
        if self._run is not None and self._run.active:
            return self._run
        if process_index() != 0:
            return None
        try:
            self._run = Run(run_hash=self._run_hash, repo=self._repo, experiment=self._experiment,
                            **self._run_options)
            if self._run_name is not None and self._run.name != self._run_name:
                self._run.name = self._run_name
        except Exception as exc:  # a tracker problem must never stop training
            self._warn("open", f"could not open the run: {exc!r}; nothing will be tracked")
            self._run = None
            return None
        self._run_hash, self._repo, self._owns_run = self._run.hash, self._run.repo, True
        return self._run

    def _close(self) -> None:
        if self._run is None or not self._owns_run:
            return
        run, self._run = self._run, None
        try:
            run.close()
        except Exception as exc:
            self._warn("close", f"could not close run {run.hash}: {exc!r}")

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(f"aim_core AimCallback: {message}", RuntimeWarning, stacklevel=3)

    # -- tracking ------------------------------------------------------------------
    def _track(
        self,
        run: Run,
        logs: Mapping[str, Any],
        step: int | None,
        epoch: int | None,
        subset: str | None = None,
    ) -> None:
        for key, value in logs.items():
            name, context = self._naming.split(key)
            if subset is not None:
                context["subset"] = subset
            try:
                run.track(value, name=name, step=step, epoch=epoch, context=context)
            except Exception as exc:
                self._warn("track", f"could not track {key!r}={value!r}: {exc!r}")

    def _guard(self, kind: str, hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except Exception as exc:
            self._warn(kind, f"{kind} hook failed: {exc!r}; training goes on")

    # -- keras hooks ---------------------------------------------------------------
    def set_params(self, params: dict[str, Any]) -> None:
        """Keras calls this as each fit/evaluate/predict starts (in-fit validation reuses
        fit's callback list), so a fit that raised is no longer taken as running."""
        super().set_params(params)
        self._in_fit = False

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Open the run and store params, optimizer and model config."""
        self._in_fit = True
        self._guard("train_begin", self._train_begin)

    def _train_begin(self) -> None:
        run = self._open()
        if run is not None:
            self._done_batches = max(self._done_batches, self._iterations() or 0)
            self._store_params(run)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Reset the per-epoch batch bookkeeping."""
        self._current_epoch, self._epoch_batches, self._last_tracked_batch = epoch, 0, -1

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Track every N-th batch's running logs at a global batch step."""
        if self._every and self._run is not None and logs:
            self._guard("batch", self._batch_end, batch, logs)

    def _batch_end(self, batch: int, logs: Mapping[str, Any]) -> None:
        step = self._done_batches + batch + 1
        with self._lock:  # keras may run batch hooks on several worker threads
            self._epoch_batches = max(self._epoch_batches, batch + 1)
            if step % self._every:
                return
            self._last_tracked_batch = max(self._last_tracked_batch, batch)
            self._batch_keys.update(logs)
            self._track(self._run, logs, step, self._current_epoch)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Track train and val logs plus the learning rate at the optimizer step."""
        self._guard("epoch", self._epoch_end, epoch, dict(logs or {}))

    def _epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._done_batches += self._epoch_batches
        if self._run is None:
            return
        if self._every and self._last_tracked_batch == self._epoch_batches - 1:
            logs = {k: v for k, v in logs.items() if k not in self._batch_keys}
        learning_rate = self._learning_rate()
        if learning_rate is not None:
            logs.setdefault("learning_rate", learning_rate)
        self._track(self._run, logs, self._iterations(), epoch)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Close the run (a passed-in run stays open)."""
        self._in_fit = False
        self._close()

    def on_test_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Track a standalone ``evaluate()`` as ``{"subset": "test"}``; in-fit validation is
        tracked from the epoch logs instead."""
        if not self._in_fit and logs:
            self._guard("evaluate", self._evaluate_end, dict(logs))

    def _evaluate_end(self, logs: dict[str, Any]) -> None:
        run = self._open()
        if run is not None:
            self._track(run, logs, self._iterations(), None, subset="test")
            self._close()
