"""``Figure``: a plotly figure, stored as its JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

from .base import Encoded, ObjectElement


class Figure(ObjectElement):
    """Aim's ``Figure(obj)``: a plotly figure, its JSON dict, or a matplotlib figure.

    The constructor takes a copy (a dict) of the figure; the JSON is written on the flusher
    thread. A matplotlib figure goes through ``plotly.tools.mpl_to_plotly``, which knows only
    simple plots: ``Image(fig)`` keeps any matplotlib figure exactly.
    """

    kind = "figure"
    __slots__ = ()

    def __init__(self, obj: Any) -> None:
        module = type(obj).__module__
        if module.startswith("matplotlib") and hasattr(obj, "savefig"):
            obj = _from_matplotlib(obj)
            module = type(obj).__module__
        if module.startswith("plotly") and hasattr(obj, "to_dict"):
            source = obj.to_dict()
        elif isinstance(obj, dict):
            source = copy.deepcopy(obj)
        else:
            raise TypeError(f"Figure needs a plotly figure or its JSON dict, got "
                            f"{type(obj).__name__}.")
        self._init_source(source)

    def _encode(self, source: Any) -> Encoded:
        return {"source": "plotly", "format": "raw_json", "version": _plotly_version()}, \
            _to_json(source).encode("utf-8")

    @property
    def data(self) -> str:
        """The figure's plotly JSON text."""
        return self._bytes().decode("utf-8")

    def to_plotly_figure(self) -> Any:
        """Rebuild the plotly figure (needs plotly)."""
        try:
            import plotly.io
        except ImportError as exc:
            raise ImportError("Figure.to_plotly_figure() needs plotly: pip install plotly") from exc
        return plotly.io.from_json(self.data, skip_invalid=True)

    def to_dict(self) -> dict[str, Any]:
        """The figure's JSON as a dict (no plotly needed)."""
        return json.loads(self.data)


def _from_matplotlib(fig: Any) -> Any:
    try:
        from plotly.tools import mpl_to_plotly
    except ImportError as exc:
        raise ImportError("Figure(matplotlib figure) needs plotly; Image(fig) stores the "
                          "figure as a picture without it.") from exc
    try:
        return mpl_to_plotly(fig)
    except Exception as exc:
        raise TypeError(f"plotly could not convert this matplotlib figure ({exc}); track "
                        "Image(fig) instead.") from exc


def _plotly_version() -> str:
    try:
        import plotly
    except ImportError:
        return "unknown"
    return str(getattr(plotly, "__version__", "unknown"))


def _to_json(source: dict[str, Any]) -> str:
    try:
        import plotly.io
    except ImportError:
        return json.dumps(source, default=_plain, separators=(",", ":"))
    return plotly.io.to_json(source, validate=False)


def _plain(value: Any) -> Any:
    """numpy arrays and scalars (and anything else with ``tolist``) as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
