"""AimQL parsing: strip ``SELECT ... IF``, check the syntax tree against a whitelist, compile.

A query is parsed once. The validator accepts only data access on ``run``/``metric``,
literals, comparisons, boolean logic, arithmetic, a few builtins, ``re.match/search`` and
whitelisted str methods; every other node is a :class:`QueryError` that names the column.
The checked tree is then rewritten so that data access, ordering comparisons, ``in`` and
arithmetic go through the None-safe helpers of :mod:`aim_core.query.evaluate`, and compiled
into a plain function ``(run, metric) -> value`` whose globals hold no builtins.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import QueryError, QuerySyntaxError
from .catalog import needed_paths
from .evaluate import EVAL_GLOBALS, FUNCTION_ARITY, METHOD_NAMES, RE_FUNCTIONS
from .limits import start_evaluation
from .patterns import check_pattern

MAX_QUERY_CHARS = 10_000
MAX_DEPTH = 64  # syntax-tree levels; deeper trees would exhaust the recursion limit
DATA_NAMES = frozenset({"run", "metric"})
_SELECT_IF = re.compile(r"\s*select\b.*?\bif\b", re.IGNORECASE | re.DOTALL)

_PLAIN_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Not, ast.UAdd, ast.USub,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
    ast.Constant, ast.Load, ast.List, ast.Tuple, ast.Set, ast.IfExp, ast.Slice,
)
_FORBIDDEN = {
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.NamedExpr: "assignment expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Starred: "* unpacking is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
_ORDERING = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.In: "in",
             ast.NotIn: "not_in"}
_NATIVE_CMP = {ast.Eq: "eq", ast.NotEq: "ne", ast.Is: "is", ast.IsNot: "is_not"}
_ARITH = {ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.Div: "_div",
          ast.FloorDiv: "_floordiv", ast.Mod: "_mod", ast.Pow: "_pow"}


@dataclass(frozen=True)
class CompiledQuery:
    """A validated query: the whole test, and its split into run-only and metric parts."""

    source: str
    test: Callable[[Any, Any], Any]
    run_test: Callable[[Any, Any], Any] | None  # the run-only `and` terms, if any
    metric_test: Callable[[Any, Any], Any] | None  # the rest; None when it needs no metric
    uses_metric: bool
    mentions_archived: bool
    paths: frozenset[tuple[str, ...]]  # catalog entry paths the whole query reads
    run_paths: frozenset[tuple[str, ...]]  # ... and those its run-only terms read


def compile_query(query: str, *, allow_metric: bool = True,
                  sequence: str = "metric") -> CompiledQuery:
    """Parse, validate and compile ``query``; raise :class:`QueryError` if it is not allowed.

    ``sequence`` names the query's sequence variable: ``metric``, or ``images``, ``texts``,
    ... for object sequences (compiled as ``metric``: the same fields).
    """
    if not isinstance(query, str):
        raise QueryError(f"a query must be a str, got {type(query).__name__}")
    return _compile_cached(query, allow_metric, sequence)


@functools.lru_cache(maxsize=256)
def _compile_cached(query: str, allow_metric: bool, sequence: str = "metric") -> CompiledQuery:
    body, offset = strip_select(query)
    tree, offset = parse_expression(body, offset, query)
    check_depth(tree)
    if sequence != "metric":
        _rename_sequence(tree, sequence, offset, query)
    _Validator(offset, query, allow_metric).visit(tree)
    run_terms, metric_terms = _split_terms(tree.body)
    uses_metric = bool(metric_terms)
    return CompiledQuery(
        source=query,
        test=_build(tree.body),
        run_test=_build(_and(run_terms)) if run_terms else None,
        metric_test=_build(_and(metric_terms)) if metric_terms else None,
        uses_metric=uses_metric,
        mentions_archived=_mentions_archived(tree),
        paths=frozenset(needed_paths(tree)),
        run_paths=frozenset(needed_paths(_and(run_terms)) if run_terms else ()),
    )


def strip_select(query: str) -> tuple[str, int]:
    """Drop a leading ``SELECT ... IF``; return the expression and its offset in ``query``."""
    match = _SELECT_IF.match(query)
    if match is None:
        return query, 0
    return query[match.end():], match.end()


def parse_expression(body: str, offset: int, query: str) -> tuple[ast.Expression, int]:
    """Parse one expression; return it and the column offset of its first character."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    flat = body.replace("\r", " ").replace("\n", " ")  # one line: offsets are columns
    text = flat.lstrip()
    offset += len(flat) - len(text)
    if not text.strip():
        return ast.Expression(body=ast.Constant(True)), offset  # empty query: everything
    try:
        return ast.parse(text, mode="eval"), offset
    except SyntaxError as exc:
        at_end = not exc.offset or exc.offset > len(text)
        column = offset + (len(text.rstrip()) + 1 if at_end else exc.offset)
        message = "the query ends too early" if at_end and exc.msg == "invalid syntax" else (
            f"invalid syntax ({exc.msg})" if exc.msg != "invalid syntax" else "invalid syntax")
        raise query_error(message, query, column) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise QueryError(f"cannot parse the query: {exc}") from None


def check_depth(tree: ast.AST) -> None:
    """Refuse a syntax tree deeper than ``MAX_DEPTH`` (checked without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise QueryError(f"the query nests more than {MAX_DEPTH} levels deep (such as "
                             "a + b + c + ... or run.a.b.c... very many times); simplify it")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def query_error(message: str, query: str, column: int) -> QueryError:
    """Build a QueryError that shows the query with a caret under ``column`` (1-based)."""
    line = query.replace("\r", " ").replace("\n", " ")
    error = QuerySyntaxError(f"{message} at column {column}\n  {line}\n  {' ' * (column - 1)}^")
    error.column = column
    return error


class _Validator(ast.NodeVisitor):
    """Walk the tree and raise QueryError on the first node outside the whitelist."""

    def __init__(self, offset: int, query: str, allow_metric: bool) -> None:
        self.offset, self.query, self.allow_metric = offset, query, allow_metric
        self.call_funcs: set[int] = set()  # ids of Attribute/Name nodes in call position

    def fail(self, node: ast.AST, message: str) -> None:
        """Raise a QueryError pointing at ``node``."""
        column = self.offset + getattr(node, "col_offset", 0) + 1
        raise query_error(message, self.query, column)

    def generic_visit(self, node: ast.AST) -> None:
        if type(node) in _FORBIDDEN:
            self.fail(node, _FORBIDDEN[type(node)])
        if not isinstance(node, _PLAIN_NODES):
            self.fail(node, f"{type(node).__name__} is not allowed in a query")
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("_"):
            self.fail(node, f"name {name!r} is not allowed (names starting with '_' are private)")
        if name == "metric" and not self.allow_metric:
            self.fail(node, "'metric' is only available in a metric query (query_metrics)")
        if name in DATA_NAMES:
            return
        if name in FUNCTION_ARITY or name == "re":
            if id(node) not in self.call_funcs:
                self.fail(node, f"{name!r} can only be called, as in {name}(...)")
            return
        known = ", ".join(sorted(DATA_NAMES | {n for n in FUNCTION_ARITY if "." not in n} | {"re"}))
        self.fail(node, f"unknown name {name!r}; a query can use {known}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not (isinstance(node.value, ast.Name) and node.value.id == "re"):
            self.visit(node.value)  # report the innermost problem first
        if node.attr.startswith("_"):
            self.fail(node, f"attribute {node.attr!r} is not allowed (for a param whose name "
                            f"starts with '_', write run[{node.attr!r}])")
        is_call = id(node) in self.call_funcs
        if isinstance(node.value, ast.Name) and node.value.id == "re":
            if not is_call or node.attr not in RE_FUNCTIONS:
                self.fail(node, "only re.match(...), re.search(...) and re.fullmatch(...) "
                                "are available")
            return
        if is_call:
            if node.attr not in METHOD_NAMES:
                self.fail(node, f"method {node.attr!r} is not allowed; "
                                "only str methods such as startswith() can be called")
        elif not _is_data(node.value):
            self.fail(node, "attribute access is only allowed on run and metric data")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.slice, ast.Tuple) and any(
            isinstance(e, ast.Slice) for e in node.slice.elts
        ):
            self.fail(node, "multi-dimensional slices are not allowed")
        self.visit(node.value)
        self.visit(node.slice)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, (ast.Name, ast.Attribute)):
            self.fail(node, "only functions and str methods can be called")
        if isinstance(func, ast.Name):
            self._check_arity(node, func.id)
        elif isinstance(func.value, ast.Name) and func.value.id == "re":
            self._check_arity(node, "re." + func.attr)
            self._check_pattern(node)
        for kw in node.keywords:
            if kw.arg is None:
                self.fail(kw.value, "** unpacking is not allowed")
            if kw.arg.startswith("_"):
                self.fail(kw.value, f"keyword {kw.arg!r} is not allowed")
        self.call_funcs.add(id(func))
        self.visit(func)
        for arg in node.args:
            self.visit(arg)
        for kw in node.keywords:
            self.visit(kw.value)

    def _check_arity(self, node: ast.Call, name: str) -> None:
        low, high = FUNCTION_ARITY.get(name, (0, 99))
        count = len(node.args) + len(node.keywords)
        if not low <= count <= high:
            self.fail(node, f"{name}() takes {low}..{high} arguments, got {count}")
        if node.keywords and name != "round":
            self.fail(node, f"{name}() takes no keyword arguments")

    def _check_pattern(self, node: ast.Call) -> None:
        pattern = node.args[0] if node.args else None
        if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
            try:
                check_pattern(pattern.value)
            except QueryError as exc:
                self.fail(pattern, str(exc))

    def visit_Dict(self, node: ast.Dict) -> None:
        if any(key is None for key in node.keys):
            self.fail(node, "** unpacking is not allowed")
        for child in [*node.keys, *node.values]:
            self.visit(child)

    def visit_Compare(self, node: ast.Compare) -> None:
        for child in [node.left, *node.comparators]:
            self.visit(child)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in _ARITH:
            self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Invert):
            self.fail(node, "operator ~ is not allowed")
        self.visit(node.operand)


def _rename_sequence(tree: ast.AST, sequence: str, offset: int, query: str) -> None:
    """Make ``sequence`` (``images``, ...) the ``metric`` variable; ``metric`` is unknown."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id == sequence:
                node.id = "metric"
            elif node.id == "metric":
                raise query_error(f"'metric' is not available here: this query's sequences "
                                  f"are '{sequence}' (e.g. {sequence}.name)", query,
                                  offset + node.col_offset + 1)


def _is_data(node: ast.AST) -> bool:
    """True for ``run``/``metric`` and attribute/item chains rooted at them."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return isinstance(node, ast.Name) and node.id in DATA_NAMES


def _mentions_archived(tree: ast.AST) -> bool:
    """True if the query reads ``run.archived`` (then archived runs are not hidden)."""
    return any(
        isinstance(n, ast.Attribute) and n.attr == "archived"
        and isinstance(n.value, ast.Name) and n.value.id == "run"
        for n in ast.walk(tree)
    )


def _uses_metric(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "metric" for n in ast.walk(node))


def _split_terms(body: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """Split top-level ``and`` terms into those that read only ``run`` and the others."""
    if not _uses_metric(body):
        return [body], []
    terms = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    run_terms = [t for t in terms if not _uses_metric(t)]
    return run_terms, [t for t in terms if _uses_metric(t)]


def _and(terms: list[ast.AST]) -> ast.AST:
    return terms[0] if len(terms) == 1 else ast.BoolOp(op=ast.And(), values=list(terms))


def _build(body: ast.AST) -> Callable[[Any, Any], Any]:
    """Rewrite a validated expression and compile it into ``lambda run, metric: ...``."""
    import copy

    rewritten = _Rewriter().visit(copy.deepcopy(body))
    args = ast.arguments(posonlyargs=[], args=[ast.arg("run"), ast.arg("metric")],
                         kwonlyargs=[], kw_defaults=[], defaults=[])
    tree = ast.Expression(body=ast.Lambda(args=args, body=rewritten))
    ast.fix_missing_locations(tree)
    code = compile(tree, "<aimql>", "eval")
    evaluate = eval(code, dict(EVAL_GLOBALS))  # noqa: S307 - validated tree, no builtins

    def test(run: Any, metric: Any) -> Any:
        start_evaluation()  # the time budget, and a fresh size budget per run or sequence
        return evaluate(run, metric)
    return test


def _call(name: str, *args: ast.AST) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class _Rewriter(ast.NodeTransformer):
    """Route data access, ordering comparisons, ``in`` and arithmetic through safe helpers."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        return _call("_ga", self.visit(node.value), ast.Constant(node.attr))

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        key = node.slice
        if isinstance(key, ast.Slice):
            parts = [self.visit(p) if p else ast.Constant(None)
                     for p in (key.lower, key.upper, key.step)]
            key = _call("_slice", *parts)
        else:
            key = self.visit(key)
        return _call("_gi", self.visit(node.value), key)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        args = [self.visit(a) for a in node.args]
        keywords = [ast.keyword(arg=k.arg, value=self.visit(k.value)) for k in node.keywords]
        if isinstance(func, ast.Name):
            return ast.Call(func=func, args=args, keywords=keywords)
        if isinstance(func.value, ast.Name) and func.value.id == "re":
            return _call("_re_" + func.attr, *args)
        call = _call("_method", self.visit(func.value), ast.Constant(func.attr), *args)
        call.keywords = keywords
        return call

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        values = [self.visit(node.left), *(self.visit(c) for c in node.comparators)]
        if len(node.ops) == 1:
            op = type(node.ops[0])
            if op in _NATIVE_CMP:
                return ast.Compare(left=values[0], ops=node.ops, comparators=values[1:])
            return _call("_" + _ORDERING[op], *values)
        names = [_ORDERING.get(type(op)) or _NATIVE_CMP[type(op)] for op in node.ops]
        return _call("_chain", ast.Constant(tuple(names)), *values)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        return _call(_ARITH[type(node.op)], self.visit(node.left), self.visit(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return ast.UnaryOp(op=node.op, operand=operand)
        if isinstance(operand, ast.Constant):
            return ast.UnaryOp(op=node.op, operand=operand)
        return _call("_neg" if isinstance(node.op, ast.USub) else "_pos", operand)
