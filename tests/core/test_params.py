"""Param conversion: what is converted, what raises, and the adapters' str() fallback."""

from __future__ import annotations

import numpy as np
import pytest

from aim_core.params import to_json


def test_fallback_replaces_only_what_cannot_be_converted():
    seen = []

    def as_str(value, path):
        seen.append(path)
        return str(value)

    marker = object()
    out = to_json({"a": marker, 1: np.float32(0.5), "ok": [1, (2, 3)]}, "cfg", fallback=as_str)
    assert out == {"a": str(marker), "1": 0.5, "ok": [1, [2, 3]]}
    assert seen == ["cfg.a"]


def test_without_fallback_bad_values_raise_naming_the_path():
    with pytest.raises(TypeError, match="cfg.inner.x"):
        to_json({"inner": {"x": object()}}, "cfg")
