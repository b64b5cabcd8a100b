"""What the Lightning ``AimLogger`` stores as params: hyperparameters, the model and its
checkpoints."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only

from aim_core.params import to_json


def scalar(value: Any) -> Any:
    """Return a plain number for a numpy/torch scalar, else the value unchanged."""
    try:
        return value.item() if hasattr(value, "item") else value
    except (ValueError, RuntimeError):  # multi-element array or tensor
        return value


def checkpoint_score(value: Any) -> float | None:
    """A checkpoint score as a float (None when there is none)."""
    value = scalar(value)
    return float(value) if isinstance(value, (int, float)) else None


class LoggerParams:
    """``log_hyperparams``, ``log_graph`` and ``after_save_checkpoint`` of ``AimLoggerCore``,
    which supplies ``experiment``, ``_log_checkpoints`` and ``_warn_once``."""

    @rank_zero_only
    def log_hyperparams(
        self, params: Mapping[str, Any] | Namespace | None, *args: Any, **kwargs: Any
    ) -> None:
        """Merge ``params`` (dict, Namespace, OmegaConf, dataclass) into ``run["hparams"]``.

        What JSON cannot hold is stored as its ``str()`` with one warning; a list (an
        OmegaConf ``ListConfig``) replaces ``run["hparams"]``. Nothing here raises.
        """
        try:
            new = to_json(params if params is not None else {}, "hparams", fallback=self._as_str)
            run = self.experiment
            old = run.get("hparams", None)
            if isinstance(new, dict) and isinstance(old, Mapping):
                new = {**old, **new}
            run["hparams"] = new  # to_json left only JSON values
        except Exception as err:  # tracking must never stop training
            self._warn_once("hparams", f"AimLogger: hyperparameters not stored ({err!r}).")

    def _as_str(self, value: Any, path: str) -> str:
        if callable(value) and hasattr(value, "__name__"):
            return value.__name__  # activation functions, loss classes: stored by name
        self._warn_once(
            f"param:{type(value).__qualname__}",
            f"AimLogger: hyperparameter of type {type(value).__qualname__} stored as str.",
        )
        return str(value)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Record the model class and its parameter counts as ``run["model"]``."""
        parameters = getattr(model, "parameters", None)
        if parameters is None:
            return
        params = list(parameters())
        self.experiment["model"] = {
            "class": type(model).__qualname__,
            "num_parameters": sum(p.numel() for p in params),
            "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        }

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record checkpoint paths and scores as ``run["checkpoints"]``."""
        if not self._log_checkpoints:
            return
        callback = checkpoint_callback
        best_k = getattr(callback, "best_k_models", {}) or {}
        self.experiment["checkpoints"] = {
            "dirpath": getattr(callback, "dirpath", None),
            "monitor": getattr(callback, "monitor", None),
            "best_model_path": getattr(callback, "best_model_path", None) or None,
            "best_model_score": checkpoint_score(getattr(callback, "best_model_score", None)),
            "last_model_path": getattr(callback, "last_model_path", None) or None,
            "best_k_models": {str(path): checkpoint_score(score) for path, score in best_k.items()},
        }
