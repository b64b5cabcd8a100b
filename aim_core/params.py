"""Convert run params to plain JSON values, and walk nested param paths."""

from __future__ import annotations

import dataclasses
import enum
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

_JSON_SCALARS = (str, bool, int, float, type(None))
MAX_DEPTH = 64  # nesting levels of a param tree
_INT64 = (-(2**63), 2**63 - 1)


Fallback = Callable[[Any, str], Any]


def to_json(value: Any, path: str = "", fallback: Fallback | None = None, _depth: int = 0
            ) -> Any:
    """Return ``value`` as JSON-able data, converting common config types.

    What cannot be converted raises TypeError, or, with ``fallback``, is replaced by
    ``fallback(value, path)`` (adapters pass one that warns once and stores ``str(value)``).
    Ints outside int64 and trees deeper than ``MAX_DEPTH`` raise ValueError: the catalog's
    queries could not hold them.
    """
    if _depth > MAX_DEPTH:
        if fallback is not None:
            return fallback(value, path)
        raise ValueError(f"Param {path or '<root>'} is nested deeper than {MAX_DEPTH} levels "
                         "(or contains itself); flatten it or store part of it as a str.")
    if isinstance(value, _JSON_SCALARS):
        if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            if fallback is not None:
                return fallback(value, path)
            raise ValueError(f"Param {path or '<root>'} = {value} is outside the int64 range; "
                             "store it as a float or a str.")
        return value
    depth = _depth + 1
    if _is_omegaconf(value):  # DictConfig or ListConfig, at the root or nested
        return _omegaconf_to_json(value, path, fallback, _depth)
    if isinstance(value, Mapping):
        return _mapping_to_json(value, path, fallback, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_json(item, f"{path}[{i}]", fallback, depth) for i, item in enumerate(items)]
    if isinstance(value, enum.Enum):
        return to_json(value.value, path, fallback, depth)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if _is_namespace(value):
        return _mapping_to_json(vars(value), path, fallback, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mapping_to_json(dataclasses.asdict(value), path, fallback, depth)
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy and torch values
        return to_json(value.tolist(), path, fallback, depth)
    if fallback is not None:
        return fallback(value, path)
    raise TypeError(
        f"Param {path or '<root>'} has type {type(value).__name__}, which aim-core cannot store. "
        "Use JSON values (None, bool, int, float, str, list, dict with str keys), or convert it "
        "first, e.g. str(value)."
    )


def _mapping_to_json(mapping: Mapping, path: str, fallback: Fallback | None, depth: int
                     ) -> dict[str, Any]:
    out = {}
    for key, item in mapping.items():
        if isinstance(key, enum.Enum):
            key = key.value
        if not isinstance(key, str):
            if fallback is None:
                raise TypeError(f"Param keys must be str; {path or '<root>'} has key {key!r}")
            key = str(key)
        out[key] = to_json(item, f"{path}.{key}" if path else key, fallback, depth)
    return out


def _is_namespace(value: Any) -> bool:
    argparse = sys.modules.get("argparse")  # a Namespace exists only once argparse is loaded
    return argparse is not None and isinstance(value, argparse.Namespace)


def _is_omegaconf(value: Any) -> bool:
    return type(value).__module__.startswith("omegaconf")


def _omegaconf_to_json(value: Any, path: str, fallback: Fallback | None, depth: int) -> Any:
    from omegaconf import OmegaConf  # only present when the user already uses it

    try:
        plain = OmegaConf.to_container(value, resolve=True)
    except Exception as exc:  # a missing value (???) or an interpolation that cannot resolve
        if fallback is not None:
            return fallback(value, path)
        raise TypeError(f"Param {path or '<root>'}: the OmegaConf config cannot be resolved "
                        f"({exc}); resolve it first or pass OmegaConf.to_container(cfg)") from exc
    return to_json(plain, path, fallback, depth)


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys: ``{"hparams": {"lr": 1}}`` -> ``{"hparams.lr": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def normalize_path(key: Any) -> tuple[str, ...]:
    """Turn ``"a"`` or ``("a", "b")`` into a tuple path of str keys."""
    path = key if isinstance(key, tuple) else (key,)
    if not path or not all(isinstance(part, str) for part in path):
        raise TypeError(f"Param keys must be str or a tuple of str, got {key!r}")
    return path


def get_path(params: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """Return the value at ``path``; KeyError when any part is missing."""
    node: Any = params
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path if len(path) > 1 else path[0])
        node = node[part]
    return node


def set_path(params: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``path``, creating (or replacing non-dict) parents."""
    node = params
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def del_path(params: dict[str, Any], path: tuple[str, ...]) -> None:
    """Delete the value at ``path``; KeyError when missing."""
    get_path(params, path)
    node = params
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
