"""Catalog reads for queries: only the JSON paths a query needs, extracted inside SQLite.

Decoding every catalog entry costs ~25 us per run in Python (250 ms for 10,000 runs), so
a query asks SQLite's JSON functions for the few values it reads (``params.hparams.lr``,
``props.archived``, ...) and rebuilds small partial entries from them; full entries are
loaded only for the runs that match. Any failure of this fast path (an SQLite without
JSON functions, a catalog laid out differently) falls back to ``repo.catalog_entries()``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..repo import Repo

Path_ = tuple[str, ...]
Entry = dict[str, Any]

TABLE = "runs"
SKIP_KEYS = ("__schema__",)
ALWAYS: tuple[Path_, ...] = (("corrupted",), ("props", "archived"))
# run.<property> -> the entry paths it is computed from
PROPERTY_PATHS: dict[str, tuple[Path_, ...]] = {
    **{name: (("props", name),) for name in (
        "name", "description", "experiment", "tags", "creation_time", "end_time", "active",
        "archived")},
    "created_at": (("props", "creation_time"),),
    "duration": (("props", "creation_time"), ("props", "end_time")),
    "status": (("props", "status"), ("props", "active"), ("corrupted",)),
    "hash": (),
    "metrics": (("sequences",),),
}


def needed_paths(tree: ast.AST) -> set[Path_]:
    """The entry paths a validated query reads; a whole ``("params",)`` when not static."""
    paths: set[Path_] = set()
    methods = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    inner = {id(n.value) for n in ast.walk(tree)
             if isinstance(n, (ast.Attribute, ast.Subscript)) and id(n) not in methods}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "metric":
            paths.add(("sequences",))
        if id(node) in inner or id(node) in methods:
            continue  # part of a longer chain, or a method name (`.lower` of `x.lower()`)
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            steps = _chain(node)
            if steps is not None:
                paths.update(_paths_of(steps))
    return paths


def _chain(node: ast.AST) -> list[tuple[bool, Any]] | None:
    """``(is_attribute, key)`` steps of a chain rooted at ``run``; key ``...`` = dynamic."""
    steps: list[tuple[bool, Any]] = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            steps.append((True, node.attr))
        else:
            steps.append((False, _constant_key(node.slice)))
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "run"):
        return None
    return steps[::-1]


def _constant_key(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return tuple(e.value for e in node.elts)
    return ...


def _paths_of(steps: list[tuple[bool, Any]]) -> list[Path_]:
    """Entry paths for ``run`` followed by ``steps``."""
    if not steps or steps[0][1] is ...:
        return [("params",)]
    is_attribute, first = steps[0]
    if is_attribute and first in PROPERTY_PATHS:
        return list(PROPERTY_PATHS[first])  # run.name is a property; run["name"] a param
    path: list[str] = ["params"]
    for is_attribute, key in steps:
        keys = (key,) if is_attribute else key
        if key is ... or any('"' in k for k in keys):  # SQLite paths cannot quote '"'
            break
        path.extend(keys)
    return [tuple(path)]


def scan(repo: Repo, paths: Iterable[Path_]) -> Iterator[tuple[str, Entry]]:
    """Yield ``(hash, partial entry)`` for every run, holding ``paths`` and :data:`ALWAYS`.

    SQLite reads the table once, parses each entry once (one ``json_extract`` of all paths
    per row) and returns the whole table as one JSON array, which Python decodes in one
    call. Missing values come back as null, which a query cannot tell from a missing key
    anyway. Entries holding NaN or infinite numbers (not JSON to SQLite; the catalog writes
    them with a leading space, see ``storage.catalog.entry_text``) come back as their text,
    decoded in Python.
    """
    wanted = _minimal(set(paths) | set(ALWAYS))  # two paths at least: an array of values
    marks = ", ".join("?" * len(wanted))
    sql = ("SELECT json_group_array(CASE WHEN substr(value, 1, 1) != ' ' "
           f"THEN json_array(key, json_extract(value, {marks})) ELSE json_array(key, 0, value) "
           f'END) FROM (SELECT key, value FROM "{TABLE}" ORDER BY rowid)')
    (text,), = _select(repo, sql, tuple(_json_path(p) for p in wanted))
    plan = [(path[:-1], path[-1]) for path in wanted]
    for row in json.loads(text):
        run_hash, values = row[0], row[1]
        if run_hash in SKIP_KEYS:
            continue
        if len(row) == 3:  # an entry SQLite cannot parse: its text, decoded here
            stored = json.loads(row[2])
            values = [_extract(stored, p) for p in wanted]
        entry: Entry = {"props": {}, "params": {}}
        for (parents, leaf), value in zip(plan, values, strict=True):
            if value is None:
                continue
            node = entry
            for key in parents:
                child = node.get(key)
                if child is None:
                    child = node[key] = {}
                node = child
            node[leaf] = value
        yield run_hash, entry


def _extract(entry: Any, path: Path_) -> Any:
    """``json_extract`` in Python: the value at ``path``, or None."""
    for key in path:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    return entry


def load_entries(repo: Repo, hashes: list[str]) -> dict[str, Entry]:
    """Full catalog entries of ``hashes`` (batched), by hash."""
    found: dict[str, Entry] = {}
    for start in range(0, len(hashes), 500):
        batch = hashes[start:start + 500]
        marks = ",".join("?" * len(batch))
        sql = f'SELECT key, value FROM "{TABLE}" WHERE key IN ({marks})'
        for key, value in _select(repo, sql, tuple(batch)):
            found[key] = json.loads(value)
    return found


def _select(repo: Repo, sql: str, args: tuple) -> list[tuple]:
    """Run one read on a private read-only connection after flushing this process's runs."""
    from ..storage import flusher

    flusher.flush_repo(repo.root)
    return repo.catalog.read(sql, args)


def _minimal(paths: set[Path_]) -> list[Path_]:
    """Drop paths inside other wanted paths (``params`` covers ``params.lr``)."""
    return sorted(p for p in paths if not any(p[:len(q)] == q and p != q for q in paths))


def _json_path(path: Path_) -> str:
    """``$."params"."lr"`` (keys never hold '"': see ``_paths_of``)."""
    return "$" + "".join(f'."{key}"' for key in path)
