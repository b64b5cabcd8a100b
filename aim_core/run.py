"""``Run``: one training run's params, properties and tracked sequences."""

from __future__ import annotations

import copy
import os
import re
import time
import uuid
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .context import canonical_context, context_key
from .deferred import DeviceValue, capture
from .errors import (
    AimCoreError,
    ReadOnlyRunError,
    RunCorruptedError,
    RunNotFoundError,
    RunUnavailableError,
)
from .objects.base import is_object_value
from .objects.run_objects import RunObjects
from .params import del_path, get_path, normalize_path, set_path, to_json
from .remote.urls import remote_url_of
from .run_props import RunProperties, check_experiment
from .sequence import Metric
from .storage import flusher as registry
from .storage.points import empty_columns
from .storage.run_file import summary_of
from .storage.run_reader import RunFile, cached_reader, drop_reader
from .storage.writer import RunWriter, default_props
from .values import MAX_STEP, MIN_STEP, NAN, step_out_of_range, to_epoch, to_step, to_value

if TYPE_CHECKING:
    from .repo import Repo

_HASH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY: dict[str, Any] = {}
_FLUSH_AT = registry.FLUSH_AT_POINTS
_time = time.time
_MISSING = object()
_METRIC = "metric"
_OPEN_ATTEMPTS = 4


def default_flush_interval() -> float:
    """The flush interval: env ``AIM_CORE_FLUSH_INTERVAL``, else one second."""
    return float(os.environ.get("AIM_CORE_FLUSH_INTERVAL", "1.0"))


def check_hash(run_hash: str) -> str:
    """Return ``run_hash`` if it is a safe file name, else raise ValueError."""
    if not isinstance(run_hash, str) or not _HASH.match(run_hash):
        raise ValueError(f"Invalid run hash {run_hash!r}: use letters, digits, '-' or '_'.")
    return run_hash


class Run(RunObjects, RunProperties):
    """A training run: ``run[...] = params``, ``run.track(value, name, ...)``, ``close()``.

    ``run_hash`` resumes an existing run (``read_only=True`` opens it for reading only).
    ``force_resume`` is accepted for Aim compatibility and changes nothing: the lock of a
    writer that died is released by the kernel, so a stalled run never needs forcing.
    ``system_tracking_interval`` (seconds, None = off), ``log_system_params`` and
    ``capture_terminal_logs`` are Aim's switches for system metrics, system params and
    terminal logs; ``token`` authenticates with a remote tracking server.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Run:
        """A ``RemoteRun`` when ``repo`` (or ``AIM_CORE_REPO``) is a server URL or remote repo."""
        repo = kwargs.get("repo")
        if cls is Run and (remote_url_of(repo) or getattr(repo, "is_remote", False)):
            from .remote.run import RemoteRun

            return super().__new__(RemoteRun)
        return super().__new__(cls)

    def __init__(self, run_hash: str | None = None, *, repo: Any = None,
                 experiment: str | None = None, read_only: bool = False,
                 force_resume: bool = False, flush_interval: float | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = False,
                 capture_terminal_logs: bool = True, token: str | None = None) -> None:
        check_experiment(experiment)
        self._system_options = {"system_tracking_interval": system_tracking_interval,
                                "log_system_params": bool(log_system_params),
                                "capture_terminal_logs": bool(capture_terminal_logs),
                                "token": token}
        self.repo: Repo = self._resolve_repo(repo, token, read_only)
        self._writer: RunWriter | None = None
        self._meta: tuple[dict, dict, dict] | None = None
        self._file_ids: dict[tuple[str, str], str] | None = None
        if read_only:
            self.hash = check_hash(run_hash) if run_hash else self._missing_hash()
            self._open_read_only()
            return
        self.hash = check_hash(run_hash) if run_hash else uuid.uuid4().hex[:24]
        interval = default_flush_interval() if flush_interval is None else flush_interval
        self._writer = registry.get_or_open(
            self.repo.root, self.hash,
            lambda: self._open_writer(run_hash is not None, experiment, interval))
        # Dropped without close(): closed when collected (or at exit); holds no reference to self.
        self._finalizer = weakref.finalize(self, registry.release_dropped, self.repo.root,
                                           self._writer)
        if run_hash is not None and experiment is not None:
            self.experiment = experiment
        if log_system_params:
            from .system.environment import system_params

            self["__system_params"] = system_params()

    # -- opening -----------------------------------------------------------------------
    def _resolve_repo(self, repo: Any, token: str | None, read_only: bool) -> Repo:
        """The repo this run lives in (a remote run overrides it)."""
        from .repo import Repo

        return Repo.resolve(repo, init=not read_only)

    def _missing_hash(self) -> str:
        raise RunNotFoundError("read_only=True needs the hash of an existing run.")

    def _new_writer(self, resume: bool, experiment: str | None, interval: float) -> RunWriter:
        """The storage writer of this run, created or resumed (a remote run overrides it)."""
        writer = RunWriter(self.repo.runs_dir, self.hash, self.repo.catalog, interval)
        if resume:
            if not writer.path.exists():
                raise self.repo.not_found(self.hash)
            writer.resume()
        else:
            writer.create(default_props(self.hash, experiment))
        return writer

    def _open_writer(self, resume: bool, experiment: str | None, interval: float) -> RunWriter:
        """The run's writer with its system sampler and terminal capture (one per run)."""
        writer = self._new_writer(resume, experiment, interval)
        from .system.tracking import start_tracking

        options = self._system_options  # one sampler and one capture per run, not per handle
        writer.system = start_tracking(writer, options["system_tracking_interval"],
                                       options["capture_terminal_logs"])
        return writer

    def _open_read_only(self) -> None:
        path = self.repo.run_path(self.hash)
        if not path.exists():
            raise self.repo.not_found(self.hash)
        registry.flush_repo(self.repo.root)
        meta = self._with_file(RunFile.load_meta)
        self._meta = meta
        self._file_ids = {(info["name"], context_key(info["context"])): seq_id
                          for seq_id, info in meta[2].items()}

    def _with_file(self, action: Any) -> Any:
        """``action(run_file)`` on the run's file. Read-only runs hold no file of their own:
        each thread keeps its few most recent run files open (``cached_reader``), however many
        ``Run`` objects a query keeps."""
        path = self.repo.run_path(self.hash)
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                return action(cached_reader(path, self.hash))
            except RunCorruptedError:
                drop_reader(path)
                self.repo.catalog.set_corrupted(self.hash, True)
                raise
            except RunUnavailableError:
                drop_reader(path)
                if attempt == _OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))  # e.g. its writer was just replacing the file
        raise AssertionError("unreachable")

    @classmethod
    def from_catalog(cls, repo: Repo, run_hash: str, entry: dict[str, Any]) -> Run:
        """A read-only run backed by its catalog entry; its file opens on first point read."""
        run = cls.__new__(cls)
        run.repo, run.hash, run._writer, run._file_ids = repo, run_hash, None, None
        infos = {f"catalog/{i}": info for i, info in enumerate(entry.get("sequences") or [])}
        run._meta = (entry["props"], entry.get("params", {}), infos)
        run._file_params = bool(entry.get("file_params"))  # system params: in the file only
        return run

    def __repr__(self) -> str:
        return f"<Run {self.hash} {'writable' if self._writer else 'read-only'}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(status="failed" if exc_type is not None else "finished")

    # -- tracking (the hot path) -------------------------------------------------------------
    def track(self, value: Any, name: str | None = None, step: int | None = None,
              epoch: float | None = None, *, context: dict[str, Any] | None = None) -> None:
        """Append a point to sequence ``(name, context)``; a dict value tracks each key."""
        if type(value) is not float:
            if type(value) is dict:
                return self._track_dict(value, step, epoch, context)
            if is_object_value(value):
                return self._track_object(value, name, step, epoch, context)
            if type(value) is not DeviceValue:  # an accelerator scalar is held, not waited for
                value = capture(value) or to_value(value, name, context)
        writer = self._writer
        if writer is None:
            raise self._not_writable()
        if not context:
            context = _EMPTY
        for seq in writer.by_name.get(name, ()):
            if seq.context == context and (seq.exact or seq.same_context(context)):
                if seq.kind is not _METRIC:
                    seq = self._new_sequence(name, context)  # raises: another kind
                break
        else:
            seq = self._new_sequence(name, context)
        if step is None:
            step = seq.next_step
        elif type(step) is not int:
            step = to_step(step)
        if step >= seq.next_step:
            if step > MAX_STEP:
                raise step_out_of_range(step, name)
            seq.next_step = step + 1
        elif step < MIN_STEP:
            raise step_out_of_range(step, name)
        if epoch is None:
            epoch = NAN
        elif type(epoch) is not float:
            epoch = to_epoch(epoch)
        pending = seq.pending
        pending.append((step, value, epoch, _time()))
        if len(pending) >= _FLUSH_AT:
            registry.flusher().wake()

    def _track_dict(self, values: dict, step: Any, epoch: Any, context: Any) -> None:
        converted = {}
        for name, value in values.items():
            if type(value) is not float:
                value = capture(value) or to_value(value, name, context)
            converted[name] = value
        if step is not None:
            step = to_step(step)
            if not MIN_STEP <= step <= MAX_STEP:
                raise step_out_of_range(step, next(iter(values), None))
        if epoch is not None:
            epoch = to_epoch(epoch)
        for name, value in converted.items():
            self.track(value, name=name, step=step, epoch=epoch, context=context)

    def _new_sequence(self, name: Any, context: Any, kind: str = "metric") -> Any:
        if not isinstance(name, str) or not name:
            raise TypeError(f"track() needs a non-empty str name, got {name!r}")
        return self._writer.new_sequence(name, canonical_context(context), kind)

    def _not_writable(self) -> AimCoreError:
        if getattr(self, "_closed", False):
            return AimCoreError(f"Run {self.hash} is closed; reopen it with "
                                f"Run(run_hash={self.hash!r}) to write again.")
        return ReadOnlyRunError(f"Run {self.hash} was opened read-only; open it with "
                                f"Run(run_hash={self.hash!r}) to write.")

    def _stored_meta(self) -> tuple[dict, dict, dict]:
        if self._meta is None:
            self._open_read_only()  # a closed handle reads what its writer stored
        return self._meta

    # -- params ------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """A copy of every param as a nested dict."""
        return copy.deepcopy(self._params())

    def _params(self) -> dict[str, Any]:
        if self._writer is not None:
            return self._writer.params
        if getattr(self, "_file_params", False):  # the catalog left some params in the file
            props, _, infos = self._stored_meta()
            self._meta = (props, self._with_file(RunFile.load_meta)[1], infos)
            self._file_params = False
        return self._stored_meta()[1]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.set(key, value, strict=True)

    def set(self, key: Any, value: Any, strict: bool = True) -> None:
        """Set the param at ``key`` (``...`` = all params); ``strict=False`` stores what JSON
        cannot hold as ``str(value)`` instead of raising TypeError, as Aim does."""
        whole = key is Ellipsis
        path = () if whole else normalize_path(key)
        value = to_json(value, ".".join(path), None if strict else _as_str,
                        max(len(path) - 1, 0))
        if whole and not isinstance(value, dict):
            raise TypeError(f"run[...] must be set to a dict of params, got {type(value).__name__}")
        writer = self._require_writer()
        params = value if whole else copy.deepcopy(writer.params)
        if not whole:
            set_path(params, path, value)
        writer.params = params  # swapped whole: the flusher may be serialising the old one
        writer.mark_dirty()

    def __getitem__(self, key: Any) -> Any:
        if key is Ellipsis:
            return copy.deepcopy(self._params())
        return copy.deepcopy(get_path(self._params(), normalize_path(key)))

    def get(self, key: Any, default: Any = None, strict: bool = True,
            resolve_objects: bool = False) -> Any:
        """The param at ``key`` (``...`` = all), else ``default``; Aim's flags change nothing."""
        try:
            return self[key]
        except KeyError:
            return default

    def __delitem__(self, key: Any) -> None:
        writer = self._require_writer()
        if key is Ellipsis:
            params: dict[str, Any] = {}
        else:
            params = copy.deepcopy(writer.params)
            del_path(params, normalize_path(key))
        writer.params = params
        writer.mark_dirty()

    def _require_writer(self) -> RunWriter:
        if self._writer is None:
            raise self._not_writable()
        return self._writer

    # -- reading -------------------------------------------------------------------------
    def metrics(self) -> Iterator[Metric]:
        """Yield every metric of the run."""
        if self._writer is not None:
            for seq in list(self._writer.sequences):
                if seq.kind == _METRIC:
                    yield self._live_metric(seq)
            return
        for info in self._seq_infos().values():
            if info.get("kind", _METRIC) == _METRIC:
                yield self._stored_metric(info)

    def get_terminal_logs(self) -> Any:
        """The captured terminal output: the text sequence ``logs`` (step = line number,
        ``.data`` of each element is the line), or None when nothing was captured."""
        return self.get_text_sequence("logs", None)

    def get_metric(self, name: str, context: dict[str, Any] | None = None) -> Metric | None:
        """Return the metric ``(name, context)``, or None."""
        context = canonical_context(context)
        if self._writer is not None:
            seq = self._writer.find_sequence(name, context)
            return None if seq is None or seq.kind != _METRIC else self._live_metric(seq)
        info = self._info_index().get((name, context_key(context)))
        if info is None or info.get("kind", _METRIC) != _METRIC:
            return None
        return self._stored_metric(info)

    def _seq_infos(self) -> dict[str, dict[str, Any]]:
        return self._stored_meta()[2]

    def _info_index(self) -> dict[tuple[str, str], dict[str, Any]]:
        infos = self._seq_infos()
        index = getattr(self, "_index", None)
        if index is None or index[0] is not infos:
            self._index = (infos, {(i["name"], context_key(i["context"])): i
                                   for i in infos.values()})
        return self._index[1]

    def _stored_metric(self, info: dict[str, Any]) -> Metric:
        name, context = info["name"], info["context"]
        key = context_key(context)
        return Metric(self, name, context, summary_of(info),
                      lambda: self._read_stored(name, key))

    def _read_stored(self, name: str, key: str) -> Any:
        return self._read_stored_columns(name, key, RunFile.read_sequence, empty_columns)

    def _live_metric(self, seq: Any) -> Metric:
        writer = self._writer
        return Metric(self, seq.name, seq.context, None, lambda: writer.read_points(seq))

    # -- ending --------------------------------------------------------------------------
    def flush(self) -> None:
        """Write buffered points and the catalog entry now; raises on failure."""
        self._require_writer().publish()

    def finalize(self) -> None:
        """Aim's name for :meth:`close`: flush, record the end, release the run."""
        self.close()

    def dataframe(self, include_props: bool = True, include_params: bool = True) -> Any:
        """The run as a one-row pandas DataFrame: ``hash``, properties, params by dotted path."""
        from .frames import pandas, run_row

        row = run_row(self.hash, self._props(), self._params(), self.status,
                      include_props, include_params)
        return pandas("Run.dataframe()").DataFrame(row, index=[0])

    def close(self, status: str = "finished") -> None:
        """Flush and release this handle; the last handle ends the run with ``status``."""
        if status not in ("finished", "failed"):
            raise ValueError(f"status must be 'finished' or 'failed', got {status!r}")
        writer, self._writer = self._writer, None
        if writer is not None:
            self._closed = True
            self._finalizer.detach()
            try:
                registry.release(self.repo.root, writer, status)
            except BaseException:
                if not writer.closed:  # interrupted before it began: close() again, or exit
                    self._writer, self._closed = writer, False
                    writer.handles += 1
                raise


def _as_str(value: Any, path: str) -> str:
    return str(value)  # Run.set(..., strict=False): what JSON cannot hold
