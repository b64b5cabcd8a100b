"""Track a Hugging Face transformers ``Trainer`` in aim-core with ``AimCallback``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from transformers.trainer_callback import (
    ExportableState,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from aim_core import Repo, Run
from aim_core.errors import RunNotFoundError
from aim_core.integrations.huggingface_checkpoints import CheckpointState
from aim_core.integrations.huggingface_logs import (
    NOT_METRICS,
    is_main_process,
    model_params,
    naming_for,
)
from aim_core.integrations.naming import MetricNaming
from aim_core.params import to_json

if TYPE_CHECKING:
    from transformers import TrainingArguments


class AimCallback(CheckpointState, TrainerCallback, ExportableState):
    """A ``TrainerCallback`` that tracks params, train/eval/test metrics and checkpoints.

    With no arguments it reads ``AIM_CORE_REPO``, ``AIM_CORE_EXPERIMENT`` and
    ``AIM_CORE_RUN_HASH``. A ``run`` passed in is used as is and left open at the end.
    ``system_tracking_interval``, ``log_system_params`` and ``capture_terminal_logs`` are
    passed to the ``Run``; ``.experiment``, ``.setup()`` and ``.close()`` work as in Aim.
    """

    def __init__(
        self,
        repo: str | os.PathLike | Repo | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        run_hash: str | None = None,
        run: Run | None = None,
        system_tracking_interval: float | None = 10,
        log_system_params: bool = True,
        capture_terminal_logs: bool = True,
    ) -> None:
        self._repo = repo if repo is not None else os.environ.get("AIM_CORE_REPO")
        self._experiment = experiment or os.environ.get("AIM_CORE_EXPERIMENT")
        self._run_name = run_name
        self._run_hash = run.hash if run is not None else run_hash
        self._run_hash = self._run_hash or os.environ.get("AIM_CORE_RUN_HASH")
        self._run = run
        self._owns_run = run is None
        self._training = False
        self._namings: dict[str, MetricNaming] = {}
        self._warned: set[str] = set()
        self._run_options = {"system_tracking_interval": system_tracking_interval,
                             "log_system_params": log_system_params,
                             "capture_terminal_logs": capture_terminal_logs}

    @property
    def run(self) -> Run | None:
        """The open run, or None before setup and between trainings."""
        return self._run

    @property
    def experiment(self) -> Run | None:
        """The run (Aim's name), opened now if needed; None on processes other than rank 0."""
        if self._run is None and is_main_process():
            self.setup()
        return self._run

    def setup(self, args: TrainingArguments | None = None, state: TrainerState | None = None,
              model: Any = None) -> None:
        """Open (or resume) the run as Aim's ``setup`` does; store ``args`` and ``model``."""
        if state is not None and not state.is_world_process_zero:
            return
        self._setup(args, model, log_params=args is not None or model is not None)

    def close(self) -> None:
        """Close the run now (a run passed in is flushed and left open)."""
        self._close()

    @property
    def run_hash(self) -> str | None:
        """Hash of the run this callback writes to (kept across close and reopen)."""
        return self._run_hash

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the live run; it is reopened by hash on first use."""
        data = dict(self.__dict__)
        data["_run"] = None
        return data

    # -- Trainer events -------------------------------------------------------------

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, model: Any = None, **kwargs: Any) -> None:
        """Open (or resume) the run and record the arguments and the model."""
        if not state.is_world_process_zero:
            return
        self._training = True
        self._adopt_checkpoint_state(state)
        self._setup(args, model, log_params=True)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, model: Any = None, **kwargs: Any) -> None:
        """Track logged values; the end-of-training summary goes to params."""
        if not state.is_world_process_zero or not logs:
            return
        run = self._setup(args, model)
        if "train_runtime" in logs and "train_loss" in logs:
            summary = {k: v for k, v in logs.items() if k not in NOT_METRICS}
            summary["total_flos"] = state.total_flos  # PrinterCallback pops it from logs
            self._set_param(run, "summary", summary)
        else:
            self._track_all(run, logs, state)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:
        """Close the run after an evaluation outside training (its metrics came via on_log)."""
        if state.is_world_process_zero and not self._training:
            self._close()

    def on_predict(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                   metrics: dict[str, float] | None = None, model: Any = None,
                   **kwargs: Any) -> None:
        """Track ``trainer.predict`` metrics (``test_`` keys), which the Trainer does not log."""
        if not state.is_world_process_zero or not metrics:
            return
        self._track_all(self._setup(args, model), metrics, state)
        if not self._training:
            self._close()

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        """Record where the checkpoint was written."""
        if not state.is_world_process_zero or self._run is None:
            return
        folder = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        checkpoint = {"path": os.path.join(args.output_dir, folder), "step": state.global_step}
        if state.best_model_checkpoint:
            checkpoint["best"] = state.best_model_checkpoint
        self._set_param(self._run, "checkpoint", checkpoint)

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        """Flush and close the run; a later evaluate() or train() reopens it."""
        if state.is_world_process_zero:
            self._training = False
            self._close()

    # -- run lifecycle ----------------------------------------------------------------

    def _setup(self, args: TrainingArguments | None, model: Any, log_params: bool = False) -> Run:
        """Return the open run, opening or resuming it on first use."""
        if self._run is not None:
            if log_params:
                self._log_params(self._run, args, model)
            return self._run
        is_new = self._run_hash is None
        options = self._run_options
        try:
            run = Run(run_hash=self._run_hash, repo=self._repo, experiment=self._experiment,
                      **options)
        except RunNotFoundError:
            self._warn("run_hash", f"Run {self._run_hash} not found; AimCallback starts a new run.")
            run, is_new = Run(repo=self._repo, experiment=self._experiment, **options), True
        if self._run_name:
            run.name = self._run_name
        self._run, self._run_hash, self._owns_run = run, run.hash, True
        if log_params or is_new:
            self._log_params(run, args, model)
        return run

    def _close(self) -> None:
        if self._run is not None and self._owns_run:
            self._run.close()
            self._run = None
        elif self._run is not None:
            self._run.flush()  # a run passed in stays open for its owner

    # -- params and metrics -------------------------------------------------------------

    def _log_params(self, run: Run, args: TrainingArguments | None, model: Any) -> None:
        if args is not None:
            self._set_param(run, "hparams", args.to_dict())
        if model is not None:
            self._set_param(run, "model", model_params(model))

    def _set_param(self, run: Run, key: str, value: Any) -> None:
        run[key] = to_json(value, key, fallback=self._as_str)

    def _as_str(self, value: Any, path: str) -> str:
        self._warn(f"param:{type(value).__qualname__}",
                   f"AimCallback stores param {path} ({type(value).__qualname__}) with str().")
        return str(value)

    def _track_all(self, run: Run, logs: Mapping[str, Any], state: TrainerState) -> None:
        naming = naming_for(logs, self._namings)
        for key, value in logs.items():
            name, context = naming.split(key)
            # keys outside an evaluation's prefix (e.g. epoch) get no context
            if context and key not in NOT_METRICS:
                self._track(run, key, value, name, context, state)

    def _track(self, run: Run, key: str, value: Any, name: str, context: dict,
               state: TrainerState) -> None:
        try:
            run.track(value, name=name, step=state.global_step, epoch=state.epoch, context=context)
        except TypeError:
            self._warn(f"track:{key}", f"AimCallback skips {key!r}: not a number ({value!r}).")
        except Exception as err:  # tracking must never stop training
            self._warn(f"track:{key}", f"AimCallback could not track {key!r}: {err}")

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)
