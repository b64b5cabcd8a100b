"""What the Lightning ``AimLogger`` tracks besides metrics: images and texts."""

from __future__ import annotations

from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only

from aim_core import Image, Text


class LoggerObjects:
    """``log_image`` and ``log_text`` of ``AimLoggerCore``, which supplies ``experiment``,
    ``_naming``, ``_prefix`` and ``_warn_once``."""

    @rank_zero_only
    def log_image(self, key: str, images: Any, step: int | None = None,
                  caption: Any = None) -> None:
        """Track an image, or a list of them at one step (arrays, tensors, PIL images or
        paths), under the name and context that ``key`` maps to; ``caption`` is one str or
        one per image."""
        many = isinstance(images, (list, tuple))
        items = list(images) if many else [images]
        captions = caption if isinstance(caption, (list, tuple)) else [caption] * len(items)
        self._track_objects(key, lambda: [
            Image(item, caption="" if text is None else str(text))
            for item, text in zip(items, captions, strict=True)], many, step)

    @rank_zero_only
    def log_text(self, key: str, texts: Any, step: int | None = None) -> None:
        """Track a text, or a list of them at one step, under the name ``key`` maps to."""
        many = isinstance(texts, (list, tuple))
        items = list(texts) if many else [texts]
        self._track_objects(key, lambda: [Text(str(t)) for t in items], many, step)

    def _track_objects(self, key: str, build: Any, many: bool, step: int | None) -> None:
        name, context = self._naming.split(key)
        if self._prefix:
            name = f"{self._prefix}{self.LOGGER_JOIN_CHAR}{name}"
        try:
            elements = build()
            self.experiment.track(elements if many else elements[0], name=name, step=step,
                                  context=context)
        except Exception as err:  # a bad image must never stop training
            self._warn_once(key, f"AimLogger: not tracking {key!r} ({err}).")
