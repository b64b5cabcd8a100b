"""The README's code snippets run as written (placeholders filled with real values)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from aim_core import Run

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet(heading: str, contains: str) -> str:
    """The first ```python block after ``heading`` that contains ``contains``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    for block in re.findall(r"```python\n(.*?)```", text[start:], flags=re.S):
        if contains in block:
            return block
    raise AssertionError(f"no python block with {contains!r} after {heading!r}")


def test_the_image_snippet_reads_single_images_and_lists(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    run = Run(repo=tmp_path, system_tracking_interval=None)
    pixels = np.zeros((4, 6, 3), np.uint8)
    namespace = {"run": run, "step": 0, "array_or_tensor_or_pil_or_path": pixels,
                 "batch": [pixels, pixels]}

    exec(snippet("### Image", "seq.data.items()"), namespace)  # noqa: S102 - our own README

    assert (tmp_path / "sample.png").is_file()
    run.close()


def test_the_sqlitedict_snippet_reads_a_run_file(tmp_path, monkeypatch):
    pytest.importorskip("sqlitedict")
    monkeypatch.chdir(tmp_path)
    with Run(repo=tmp_path, experiment="exp", system_tracking_interval=None) as run:
        run["hparams"] = {"lr": 0.1}
    namespace = {"run_hash": run.hash}

    exec(snippet("## Storage and what it promises", "SqliteDict("), namespace)  # noqa: S102

    assert namespace["props"]["experiment"] == "exp"
    assert namespace["params"] == {"hparams": {"lr": 0.1}}
