"""Weight and gradient histograms of a plain PyTorch model, as Aim's ``aim.pytorch``.

``track_params_dists(model, run)`` and ``track_gradients_dists(model, run)`` track one
``Distribution`` per leaf layer and parameter: the name is the layer's path with its class
(``encoder.Sequential__0.Linear``), the context ``{"type": "data" | "gradients",
"params": "weights" | "biases"}``.
"""

from __future__ import annotations

from typing import Any

from aim_core import Distribution

_PARAMS = (("weight", "weights"), ("bias", "biases"))


def track_params_dists(model: Any, run: Any, *, step: int | None = None,
                       epoch: float | None = None) -> None:
    """Track the histogram of every layer's weights and biases."""
    _track(model, run, "data", "data", step, epoch)


def track_gradients_dists(model: Any, run: Any, *, step: int | None = None,
                          epoch: float | None = None) -> None:
    """Track the histogram of every layer's weight and bias gradients (where computed)."""
    _track(model, run, "grad", "gradients", step, epoch)


def model_layers(model: Any, attribute: str) -> dict[str, dict[str, Any]]:
    """``{layer name: {"weight": tensor, "bias": tensor}}`` for every leaf layer.

    ``attribute`` is ``"data"`` (the values) or ``"grad"`` (their gradients); a parameter
    without one (no gradient yet, ``bias=False``) is left out.
    """
    layers: dict[str, dict[str, Any]] = {}
    _collect(model, attribute, None, layers)
    return layers


def _collect(module: Any, attribute: str, parent: str | None,
             layers: dict[str, dict[str, Any]]) -> None:
    for name, child in module.named_children():
        layer = f"{parent}__{name}" if parent else name
        layer = f"{layer}.{type(child).__name__}"
        if next(iter(child.named_children()), None) is not None:
            _collect(child, attribute, layer, layers)
            continue
        tensors = {}
        for param, _ in _PARAMS:
            value = getattr(child, param, None)
            tensor = getattr(value, attribute, None) if value is not None else None
            if tensor is not None:
                tensors[param] = tensor
        layers[layer] = tensors


def _track(model: Any, run: Any, attribute: str, kind: str, step: Any, epoch: Any) -> None:
    for layer, tensors in model_layers(model, attribute).items():
        for param, label in _PARAMS:
            if param in tensors:
                run.track(Distribution(tensors[param]), name=layer, step=step, epoch=epoch,
                          context={"type": kind, "params": label})
