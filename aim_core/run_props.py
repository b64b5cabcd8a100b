"""``Run``'s properties (name, description, experiment, tags, archived, times, status) and
their editing, live or on a stored run."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any


class RunProperties:
    """The properties of :class:`~aim_core.run.Run`, which supplies ``_writer``, ``_meta``,
    ``_stored_meta()``, ``_require_writer()``, ``repo`` and ``hash``."""

    def _props(self) -> dict[str, Any]:
        if self._writer is not None:
            return self._writer.props
        return self._stored_meta()[0]

    def _set_prop(self, key: str, value: Any) -> None:
        self._change_props(lambda props: {**props, key: value})

    def _change_props(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        if self._writer is None and self._meta is not None and not getattr(self, "_closed", False):
            self._edit_stored_props(change)
            return
        writer = self._require_writer()
        writer.props = change(writer.props)
        writer.mark_dirty()

    def _edit_stored_props(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Edit a read-only run's props through a brief writer, as Aim allows (RunLockedError
        while another process writes it); how the run ended is kept."""
        from .run import Run

        editor = Run(self.hash, repo=self.repo, system_tracking_interval=None,
                     log_system_params=False, capture_terminal_logs=False)
        writer = editor._writer
        try:
            editor._change_props(change)
        finally:
            editor.close()
        _, params, infos = self._meta
        self._meta = (dict(writer.props), params, infos)

    @property
    def name(self) -> str | None:
        """The run's display name (``Run: <hash>`` until set); ``None`` clears it."""
        return self._props().get("name")

    @name.setter
    def name(self, value: str | None) -> None:
        self._set_prop("name", None if value is None else str(value))

    @property
    def description(self) -> str | None:
        """Free text about the run; ``None`` clears it."""
        return self._props().get("description", "")

    @description.setter
    def description(self, value: str | None) -> None:
        self._set_prop("description", None if value is None else str(value))

    @property
    def experiment(self) -> str | None:
        """The experiment the run belongs to (a str; ``None`` clears it)."""
        return self._props().get("experiment")

    @experiment.setter
    def experiment(self, value: str | None) -> None:
        self._set_prop("experiment", check_experiment(value))

    @property
    def tags(self) -> list[str]:
        """The run's tags."""
        return list(self._props().get("tags", []))

    def add_tag(self, tag: str) -> None:
        """Add a tag (once)."""
        tag = str(tag)
        self._change_props(lambda props: {**props, "tags": _with_tag(props, tag)})

    def remove_tag(self, tag: str) -> None:
        """Remove a tag if present."""
        self._change_props(lambda props: {**props, "tags": [
            t for t in props.get("tags", []) if t != tag]})

    @property
    def archived(self) -> bool:
        """Archived runs are hidden from queries unless asked for."""
        return bool(self._props().get("archived", False))

    @archived.setter
    def archived(self, value: bool) -> None:
        self._set_prop("archived", bool(value))

    @property
    def creation_time(self) -> float:
        """Unix time of creation."""
        return self._props()["creation_time"]

    @property
    def created_at(self) -> datetime:
        """Creation time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.creation_time, tz=timezone.utc)

    @property
    def end_time(self) -> float | None:
        """Unix time of the last close, None while running."""
        return self._props().get("end_time")

    @property
    def active(self) -> bool:
        """True while a writer has the run open."""
        if self._writer is not None:
            return True
        return self.status == "running"

    @property
    def duration(self) -> float:
        """Seconds from creation to end (or to now while running)."""
        end = self.end_time
        return (end if end is not None else time.time()) - self.creation_time

    @property
    def status(self) -> str:
        """One of running, finished, failed, crashed, corrupted."""
        if self._writer is not None:
            return "running"
        return self.repo.status_of(self.hash, {"props": self._props()})


def check_experiment(value: Any) -> str | None:
    """Return ``value`` if it can name an experiment (a str, or None), else raise TypeError."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"experiment must be a str, got {type(value).__name__} {value!r}")
    return value


def _with_tag(props: dict[str, Any], tag: str) -> list[str]:
    tags = list(props.get("tags", []))
    return tags if tag in tags else [*tags, tag]
