"""How ``AimCallback`` keeps one run across a training resumed from a checkpoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transformers.trainer_callback import TrainerState

from aim_core import Repo


class CheckpointState:
    """``state()``, which the Trainer saves with each checkpoint, and its reading on resume,
    for ``AimCallback`` (which supplies ``_run``, ``_repo``, ``_experiment``, ``_run_name``,
    ``_run_hash`` and ``_run_options``)."""

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

    def _adopt_checkpoint_state(self, state: TrainerState) -> None:
        """On resume, take the run hash from the callback state stored in the checkpoint."""
        if self._run_hash is not None:
            return
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, Mapping):  # a list means several AimCallbacks: ambiguous
            saved_args = saved.get("args") or {}
            self._run_hash = saved_args.get("run_hash")
            if self._repo is None:
                self._repo = saved_args.get("repo")
