"""What ``Run`` does with object sequences: track elements, log records, read them back.

``Run`` inherits these methods; they use its writer (a live run) or its stored sequence
infos (a read-only run). ``track`` only appends the element (or a copy of the list) to the
sequence's buffer: the flusher encodes it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..context import canonical_context, context_key
from ..storage import flusher as registry
from ..storage.run_file import summary_of
from ..values import to_epoch, to_step
from .base import LOG_RECORDS, kind_of, nbytes_of

if TYPE_CHECKING:
    from ..storage.object_chunks import PayloadReader
    from .sequence import ObjectSequence
OBJECT_FLUSH_BYTES = 64 << 20  # a sequence buffering about this much is flushed early
_KINDS_BY_NAME = {"images": "image", "texts": "text", "distributions": "distribution",
                  "audios": "audio", "figures": "figure", "log_records": "log_record"}
_EMPTY: dict[str, Any] = {}


def object_kind(kind: str) -> str:
    """An object kind from its name or Aim's plural (``"images"`` -> ``"image"``)."""
    return _KINDS_BY_NAME.get(kind, kind)


class RunObjects:
    """Object-sequence methods of ``Run`` (tracking, log records, reading)."""

    # -- tracking ----------------------------------------------------------------------------
    def _track_object(self, value: Any, name: Any, step: Any, epoch: Any, context: Any) -> None:
        """``track`` of an element or a list of elements of one type."""
        kind = kind_of(value, name)
        if isinstance(value, (list, tuple)):
            value = list(value)  # the caller may reuse their list
        writer = self._writer
        if writer is None:
            raise self._not_writable()
        if not context:
            context = _EMPTY
        for seq in writer.by_name.get(name, ()):
            if seq.context == context and (seq.exact or seq.same_context(context)):
                if seq.kind is not kind:
                    seq = self._new_sequence(name, context, kind)  # raises: another kind
                break
        else:
            seq = self._new_sequence(name, context, kind)
        if step is not None and type(step) is not int:
            step = to_step(step)
        if epoch is None:
            epoch = float("nan")
        elif type(epoch) is not float:
            epoch = to_epoch(epoch)
        seq.add(step, value, epoch)
        waiting = len(seq.pending)
        if not waiting & 63 and waiting * nbytes_of(value) >= OBJECT_FLUSH_BYTES:
            writer.next_flush = 0.0  # due now: the flusher encodes and writes this buffer
            registry.flusher().wake()

    def _log_message(self, level: int, msg: str, **kwargs: Any) -> None:
        from .log_record import LogRecord

        caller = sys._getframe(2)
        record = LogRecord(msg, level, logger_info=(caller.f_code.co_filename, caller.f_lineno),
                           **kwargs)
        self.track(record, name=LOG_RECORDS)

    def log_debug(self, msg: str, **kwargs: Any) -> None:
        """Store a DEBUG message (with ``kwargs`` as extra values) in the run's log records."""
        self._log_message(10, msg, **kwargs)  # logging.DEBUG

    def log_info(self, msg: str, **kwargs: Any) -> None:
        """Store an INFO message in the run's log records."""
        self._log_message(20, msg, **kwargs)  # logging.INFO

    def log_warning(self, msg: str, **kwargs: Any) -> None:
        """Store a WARNING message in the run's log records."""
        self._log_message(30, msg, **kwargs)  # logging.WARNING

    def log_error(self, msg: str, **kwargs: Any) -> None:
        """Store an ERROR message in the run's log records."""
        self._log_message(40, msg, **kwargs)  # logging.ERROR

    # -- reading -----------------------------------------------------------------------------
    def get_image_sequence(self, name: str, context: Any = None) -> ObjectSequence | None:
        """The image sequence ``(name, context)``, or None (missing, or another type)."""
        return self._object_sequence("image", name, context)

    def get_text_sequence(self, name: str, context: Any = None) -> ObjectSequence | None:
        """The text sequence ``(name, context)``, or None."""
        return self._object_sequence("text", name, context)

    def get_distribution_sequence(self, name: str, context: Any = None
                                  ) -> ObjectSequence | None:
        """The distribution sequence ``(name, context)``, or None."""
        return self._object_sequence("distribution", name, context)

    def get_audio_sequence(self, name: str, context: Any = None) -> ObjectSequence | None:
        """The audio sequence ``(name, context)``, or None."""
        return self._object_sequence("audio", name, context)

    def get_figure_sequence(self, name: str, context: Any = None) -> ObjectSequence | None:
        """The figure sequence ``(name, context)``, or None."""
        return self._object_sequence("figure", name, context)

    def get_log_records(self) -> ObjectSequence | None:
        """The messages of ``log_info`` and friends, or None when none was logged."""
        return self._object_sequence("log_record", LOG_RECORDS, None)

    def sequences(self, kinds: Any = None) -> Iterator[Any]:
        """Every sequence of the run (metrics and objects), or those of ``kinds``
        (``"metric"``, ``"image"``/``"images"``, ...)."""
        wanted = None if kinds is None else {object_kind(k) for k in
                                              ([kinds] if isinstance(kinds, str) else kinds)}
        if self._writer is not None:
            for seq in list(self._writer.sequences):
                if wanted is None or seq.kind in wanted:
                    yield (self._live_metric(seq) if seq.kind == "metric"
                           else self._live_objects(seq))
            return
        for info in list(self._seq_infos().values()):
            kind = info.get("kind", "metric")
            if wanted is None or kind in wanted:
                yield (self._stored_metric(info) if kind == "metric"
                       else self._stored_objects(info))

    def _object_sequence(self, kind: str, name: str, context: Any) -> ObjectSequence | None:
        context = canonical_context(context)
        if self._writer is not None:
            seq = self._writer.find_sequence(name, context)
            return None if seq is None or seq.kind != kind else self._live_objects(seq)
        info = self._info_index().get((name, context_key(context)))
        if info is None or info.get("kind", "metric") != kind:
            return None
        return self._stored_objects(info)

    def _stored_objects(self, info: dict[str, Any]) -> ObjectSequence:
        from .sequence import sequence_class

        name, context = info["name"], info["context"]
        key = context_key(context)
        cls = sequence_class(info["kind"])
        return cls(self, name, context, summary_of(info),
                   lambda: (self._read_stored_objects(name, key), self._payload_reader()))

    def _read_stored_objects(self, name: str, key: str) -> Any:
        from ..storage.object_chunks import empty_object_columns
        from ..storage.object_reads import read_object_columns

        return self._read_stored_columns(name, key, read_object_columns, empty_object_columns)

    def _read_stored_columns(self, name: str, key: str, read: Callable[[Any, int], Any],
                             empty: Callable[[], Any]) -> Any:
        """A stored sequence's columns, ``read(run_file, seq_id)``; ``empty()`` if none."""
        if getattr(self, "_file_ids", None) is None:
            self._open_read_only()
        seq_id = self._file_ids.get((name, key))
        if seq_id is None:
            return empty()
        return self._with_file(lambda run_file: read(run_file, seq_id))

    def _live_objects(self, seq: Any) -> ObjectSequence:
        from ..storage.object_chunks import concat_object_columns, object_columns
        from ..storage.object_reads import live_object_columns
        from .sequence import sequence_class

        writer = self._writer
        cls = sequence_class(seq.kind)

        def load() -> tuple[Any, PayloadReader]:
            stored, pending = live_object_columns(writer, seq)
            live = object_columns([p[0] for p in pending], [p[1] for p in pending],
                                  [p[2] for p in pending], [p[3] for p in pending])
            return concat_object_columns([stored, live]), self._payload_reader()

        return cls(self, seq.name, seq.context, None, load)

    def _payload_reader(self) -> PayloadReader:
        """Reads payloads of this run's stored elements, on whichever thread asks."""
        from ..storage.blobs import BlobStore
        from ..storage.object_chunks import PayloadReader

        blobs = BlobStore.of_repo(self.repo.root)
        run_hash = self.hash
        return PayloadReader(lambda key: self._with_file(lambda run_file: run_file.get(key)),
                             lambda sha, length: blobs.read(run_hash, sha, length))

