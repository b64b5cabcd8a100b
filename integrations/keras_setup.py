"""What ``AimCallback`` reads from a Keras model (never from batch hooks): the optimizer's
step and learning rate, and the training setup it stores as params."""

from __future__ import annotations

import contextlib
from typing import Any

import keras

from aim_core import Run
from aim_core.params import to_json


def to_number(value: Any) -> float:
    """A scalar backend tensor or variable as a Python float."""
    return float(keras.ops.convert_to_numpy(value))


class ModelSetup:
    """Reading Keras state for ``AimCallback``, which supplies ``model``, ``params`` and
    ``_warn``."""

    def _iterations(self) -> int | None:
        optimizer = getattr(self.model, "optimizer", None)
        return None if optimizer is None else int(to_number(optimizer.iterations))

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        return None if optimizer is None else to_number(optimizer.learning_rate)

    def _store_params(self, run: Run) -> None:
        model = self.model
        hparams: dict[str, Any] = dict(self.params or {})
        if getattr(model, "optimizer", None) is not None:
            hparams["optimizer"] = model.optimizer.get_config()
        info: dict[str, Any] = {"class": type(model).__name__}
        with contextlib.suppress(Exception):  # subclassed models may lack get_config
            info["config"] = model.get_config()
        info["num_params"] = model.count_params()
        for key, value in (("hparams", hparams), ("model", info)):
            for sub, item in value.items():
                self._set_param(run, (key, sub), item)

    def _set_param(self, run: Run, path: tuple[str, str], value: Any) -> None:
        run[path] = to_json(value, ".".join(path), fallback=self._as_str)

    def _as_str(self, value: Any, path: str) -> str:
        self._warn("params", f"param {path} ({type(value).__qualname__}) is stored with str()")
        return str(value)
