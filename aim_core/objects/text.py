"""``Text``: a string, stored as UTF-8."""

from __future__ import annotations

from typing import Any

from .base import Encoded, ObjectElement


class Text(ObjectElement):
    """A piece of text, as Aim's ``Text(text)``; ``.data`` gives the string back."""

    kind = "text"
    __slots__ = ()

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"Text needs a str, got {type(text).__name__}.")
        self._init_source(text)  # str is immutable: no copy needed

    def _encode(self, source: Any) -> Encoded:
        return {}, source.encode("utf-8", "surrogatepass")

    @property
    def data(self) -> str:
        """The text."""
        source = self._source
        if source is not None:
            return source
        return self._bytes().decode("utf-8", "surrogatepass")

    def json(self) -> dict[str, Any]:
        """Texts have no metadata beyond the text itself."""
        return {}

    def __str__(self) -> str:
        return self.data

    def __repr__(self) -> str:
        return f"<Text {self.data[:60]!r}>"
