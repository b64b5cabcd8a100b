"""CSV cells a spreadsheet shows as text: never a formula from a crafted name or param.

A cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is run as a
formula by Excel, LibreOffice and Google Sheets, so such text gets a leading ``'``, which
they show as text. Numbers are left alone (``-0.5`` is a number, not a formula).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: Any) -> Any:
    """``value`` as it is, except a str that a spreadsheet would run, quoted with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def text_row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row through :func:`text_cell`."""
    return [text_cell(value) for value in values]
