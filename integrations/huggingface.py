"""Track a Hugging Face transformers ``Trainer`` in aim-core with ``AimCallback``."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from transformers.trainer_callback import ExportableState, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from aim_core import Repo, Run
from aim_core.errors import RunNotFoundError
from aim_core.integrations.naming import MetricNaming
from aim_core.params import to_json

_TRAIN = {"subset": "train"}
# Keys the Trainer logs without a split prefix (loss, learning_rate, grad_norm) are training keys.
_TRAINING_LOG_NAMING = MetricNaming(
    prefixes={"eval_": {"subset": "eval"}, "test_": {"subset": "test"}, "train_": _TRAIN},
    default=_TRAIN,
)
_NOT_METRICS = frozenset({"epoch", "step"})


class AimCallback(TrainerCallback, ExportableState):
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
        if self._run is None and _is_main_process():
            self.setup()
        return self._run

    def setup(self, args=None, state=None, model=None) -> None:
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

    def state(self) -> dict[str, Any]:
        """Arguments saved with each checkpoint, so a resumed training reopens the same run."""
        repo = self._run.repo.path if self._run is not None else self._repo
        if isinstance(repo, Repo):
            repo = repo.path
        return {
            "args": {
                "repo": os.fspath(repo) if repo is not None else None,
                "experiment": self._experiment,
                "run_name": self._run_name,
                "run_hash": self._run_hash,
                **self._run_options,
            },
            "attributes": {},
        }

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the live run; it is reopened by hash on first use."""
        data = dict(self.__dict__)
        data["_run"] = None
        return data

    # -- Trainer events -------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        """Open (or resume) the run and record the arguments and the model."""
        if not state.is_world_process_zero:
            return
        self._training = True
        self._adopt_checkpoint_state(state)
        self._setup(args, model, log_params=True)

    def on_log(self, args, state, control, logs=None, model=None, **kwargs) -> None:
        """Track logged values; the end-of-training summary goes to params."""
        if not state.is_world_process_zero or not logs:
            return
        run = self._setup(args, model)
        if "train_runtime" in logs and "train_loss" in logs:
            summary = {k: v for k, v in logs.items() if k not in _NOT_METRICS}
            summary["total_flos"] = state.total_flos  # PrinterCallback pops it from logs
            self._set_param(run, "summary", summary)
        else:
            self._track_all(run, logs, state)

    def on_evaluate(self, args, state, control, **kwargs) -> None:
        """Close the run after an evaluation outside training (its metrics came via on_log)."""
        if state.is_world_process_zero and not self._training:
            self._close()

    def on_predict(self, args, state, control, metrics=None, model=None, **kwargs) -> None:
        """Track ``trainer.predict`` metrics (``test_`` keys), which the Trainer does not log."""
        if not state.is_world_process_zero or not metrics:
            return
        self._track_all(self._setup(args, model), metrics, state)
        if not self._training:
            self._close()

    def on_save(self, args, state, control, **kwargs) -> None:
        """Record where the checkpoint was written."""
        if not state.is_world_process_zero or self._run is None:
            return
        folder = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        checkpoint = {"path": os.path.join(args.output_dir, folder), "step": state.global_step}
        if state.best_model_checkpoint:
            checkpoint["best"] = state.best_model_checkpoint
        self._set_param(self._run, "checkpoint", checkpoint)

    def on_train_end(self, args, state, control, **kwargs) -> None:
        """Flush and close the run; a later evaluate() or train() reopens it."""
        if state.is_world_process_zero:
            self._training = False
            self._close()

    # -- run lifecycle ----------------------------------------------------------------

    def _adopt_checkpoint_state(self, state) -> None:
        """On resume, take the run hash from the callback state stored in the checkpoint."""
        if self._run_hash is not None:
            return
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, Mapping):  # a list means several AimCallbacks: ambiguous
            saved_args = saved.get("args") or {}
            self._run_hash = saved_args.get("run_hash")
            if self._repo is None:
                self._repo = saved_args.get("repo")

    def _setup(self, args, model, log_params: bool = False) -> Run:
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

    def _log_params(self, run: Run, args, model) -> None:
        if args is not None:
            self._set_param(run, "hparams", args.to_dict())
        if model is not None:
            self._set_param(run, "model", _model_params(model))

    def _set_param(self, run: Run, key: str, value: Any) -> None:
        run[key] = to_json(value, key, fallback=self._as_str)

    def _as_str(self, value: Any, path: str) -> str:
        self._warn(f"param:{type(value).__qualname__}",
                   f"AimCallback stores param {path} ({type(value).__qualname__}) with str().")
        return str(value)

    def _track_all(self, run: Run, logs: Mapping[str, Any], state) -> None:
        naming = self._naming_for(logs)
        for key, value in logs.items():
            name, context = naming.split(key)
            # keys outside an evaluation's prefix (e.g. epoch) get no context
            if context and key not in _NOT_METRICS:
                self._track(run, key, value, name, context, state)

    def _track(self, run: Run, key: str, value: Any, name: str, context: dict, state) -> None:
        try:
            run.track(value, name=name, step=state.global_step, epoch=state.epoch, context=context)
        except TypeError:
            self._warn(f"track:{key}", f"AimCallback skips {key!r}: not a number ({value!r}).")
        except Exception as err:  # tracking must never stop training
            self._warn(f"track:{key}", f"AimCallback could not track {key!r}: {err}")

    def _naming_for(self, logs: Mapping[str, Any]) -> MetricNaming:
        """Naming for one logged dict, from the exact prefix the Trainer gave its metrics."""
        prefix = _metric_key_prefix(logs)
        if prefix is None:
            return _TRAINING_LOG_NAMING
        naming = self._namings.get(prefix)
        if naming is None:
            naming = self._namings[prefix] = MetricNaming(
                prefixes={f"{prefix}_": _prefix_context(prefix)}
            )
        return naming

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)


def _is_main_process() -> bool:
    """Rank 0 by ``torch.distributed`` once initialised, else by the launcher's ``RANK``."""
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0") or 0) == 0


def _metric_key_prefix(logs: Mapping[str, Any]) -> str | None:
    """The ``metric_key_prefix`` of an evaluate/predict result, else None.

    The Trainer always adds ``<prefix>_runtime`` and prefixes every metric with
    ``<prefix>_``, so the shortest ``*_runtime`` key names the prefix exactly, including
    ``eval_<name>`` for a dict of eval datasets (names with ``_`` in them too). Training
    logs carry no ``*_runtime`` key except ``train_runtime`` with token counting.
    """
    prefixes = [key[: -len("_runtime")] for key in logs if key.endswith("_runtime")]
    prefixes = [p for p in prefixes if p and p != "train"]
    return min(prefixes, key=len) if prefixes else None


def _prefix_context(prefix: str) -> dict[str, Any]:
    """``eval`` -> eval; ``eval_<name>`` -> eval with dataset; any other prefix -> its subset."""
    if prefix.startswith("eval_"):
        return {"subset": "eval", "dataset": prefix[len("eval_") :]}
    return {"subset": prefix}


def _model_params(model: Any) -> dict[str, Any]:
    """Model config, parameter counts and PEFT adapter configs as plain data."""
    config = getattr(model, "config", None)
    if hasattr(config, "to_json_string"):  # transformers' own JSON form: str keys, dtype names
        info = json.loads(config.to_json_string(use_diff=False))
    else:
        info = dict(config.to_dict()) if hasattr(config, "to_dict") else {}
    if hasattr(model, "parameters"):
        params = list(model.parameters())
        info["num_parameters"] = sum(p.numel() for p in params)
        info["num_trainable_parameters"] = sum(p.numel() for p in params if p.requires_grad)
    peft = getattr(model, "peft_config", None)
    if isinstance(peft, Mapping) and peft:
        info["peft_config"] = {name: cfg.to_dict() for name, cfg in peft.items()}
    return info
