"""How ``AimCallback`` reads the Trainer: logged keys to names and contexts, the model to
params, and which process is the main one."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from aim_core.integrations.naming import MetricNaming

_TRAIN = {"subset": "train"}
# Keys the Trainer logs without a split prefix (loss, learning_rate, grad_norm) are training keys.
TRAINING_LOG_NAMING = MetricNaming(
    prefixes={"eval_": {"subset": "eval"}, "test_": {"subset": "test"}, "train_": _TRAIN},
    default=_TRAIN,
)
NOT_METRICS = frozenset({"epoch", "step"})


def naming_for(logs: Mapping[str, Any], cache: dict[str, MetricNaming]) -> MetricNaming:
    """Naming for one logged dict, from the exact prefix the Trainer gave its metrics."""
    prefix = metric_key_prefix(logs)
    if prefix is None:
        return TRAINING_LOG_NAMING
    naming = cache.get(prefix)
    if naming is None:
        naming = cache[prefix] = MetricNaming(prefixes={f"{prefix}_": prefix_context(prefix)})
    return naming


def metric_key_prefix(logs: Mapping[str, Any]) -> str | None:
    """The ``metric_key_prefix`` of an evaluate/predict result, else None.

    The Trainer always adds ``<prefix>_runtime`` and prefixes every metric with
    ``<prefix>_``, so the shortest ``*_runtime`` key names the prefix exactly, including
    ``eval_<name>`` for a dict of eval datasets (names with ``_`` in them too). Training
    logs carry no ``*_runtime`` key except ``train_runtime`` with token counting.
    """
    prefixes = [key[: -len("_runtime")] for key in logs if key.endswith("_runtime")]
    prefixes = [p for p in prefixes if p and p != "train"]
    return min(prefixes, key=len) if prefixes else None


def prefix_context(prefix: str) -> dict[str, Any]:
    """``eval`` -> eval; ``eval_<name>`` -> eval with dataset; any other prefix -> its subset."""
    if prefix.startswith("eval_"):
        return {"subset": "eval", "dataset": prefix[len("eval_") :]}
    return {"subset": prefix}


def model_params(model: Any) -> dict[str, Any]:
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


def is_main_process() -> bool:
    """Rank 0 by ``torch.distributed`` once initialised, else by the launcher's ``RANK``."""
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0") or 0) == 0
