"""The ``aim-core`` command: create a repo, list, show, query, manage and export runs.

Exit codes: 0 on success, 1 when the repo, a run or an operation fails, 2 for a usage error
or a bad query.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import AimCoreError, QueryError, RunLockedError
from ..query import context_text, flatten, query_metrics, query_runs
from ..query.validate import compile_query
from ..repo import Repo
from . import reindex as reindex_command
from . import server as server_command
from .convert import add_convert_commands
from .output import (
    duration_text,
    format_table,
    iso_time,
    local_time,
    parse_metric_spec,
    progress,
    write_rows,
)
from .repos import existing_repo

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FORMATS = ("table", "csv", "json")
OBJECT_EXPORT_KINDS = ("text", "distribution", "log_record", "image", "audio", "figure")
# catalog paths a listing shows (with the status computed from them)
LIST_FIELDS = tuple(("props", key) for key in (
    "name", "experiment", "creation_time", "end_time", "active", "status")) + (("corrupted",),)


class CommandError(Exception):
    """A failure to report on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args) or EXIT_OK
    except CommandError as exc:
        return _fail(str(exc), exc.code)
    except QueryError as exc:
        return _fail(f"bad query: {exc}", EXIT_USAGE)
    except AimCoreError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except BrokenPipeError:  # `aim-core runs ls | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _fail(message: str, code: int) -> int:
    print(f"aim-core: error: {message}", file=sys.stderr)
    return code


# -- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repo", default=argparse.SUPPRESS, metavar="PATH",
                        help="repo folder (default: $AIM_CORE_REPO, else the nearest "
                             ".aim_core above the working directory)")
    parser = argparse.ArgumentParser(
        prog="aim-core", parents=[common],
        description="aim-core: list, query, manage and export tracked runs.",
        epilog="Exit codes: 0 ok, 1 failure (missing repo, unknown run, ...), "
               "2 usage error or bad query.")
    parser.add_argument("--version", action="version", version=f"aim-core {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    init = commands.add_parser("init", parents=[common], help="create a repo")
    init.add_argument("path", nargs="?", help="folder to create the repo in (default: cwd)")
    init.set_defaults(handler=cmd_init)

    runs = commands.add_parser("runs", parents=[common], help="list and manage runs")
    runs.set_defaults(handler=lambda args: _usage(runs))
    _add_runs_commands(runs.add_subparsers(title="runs commands", metavar="ACTION"), common)

    query = commands.add_parser("query", parents=[common], help="run an AimQL query")
    query.add_argument("query", help='e.g. \'run.hparams.lr > 1e-3\' or, with --metrics, '
                                     '\'metric.name == "loss"\'')
    query.add_argument("--metrics", action="store_true", help="match metrics, not runs")
    query.add_argument("--format", choices=FORMATS, default="table")
    query.set_defaults(handler=cmd_query)

    export = commands.add_parser("export", parents=[common],
                                 help="export metric points or object sequences")
    export.add_argument("hashes", nargs="*", metavar="HASH", help="runs to export")
    export.add_argument("-q", "--query", help="AimQL query selecting what to export (over "
                                              "metric, or images/texts/... with --kind)")
    export.add_argument("--kind", default="metric", choices=("metric", *OBJECT_EXPORT_KINDS),
                        help="what to export: metrics (default), text/distribution/log_record "
                             "rows, or image/audio/figure files into the folder -o names")
    export.add_argument("--format", choices=("csv", "parquet", "json"),
                        help="csv, json or parquet (metrics); csv or json (rows)")
    export.add_argument("-o", "--output", help="output file (default: stdout; required "
                                               "for parquet), or the folder for files")
    export.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    export.set_defaults(handler=cmd_export)

    up = commands.add_parser("up", parents=[common], help="serve the dashboard (extra [ui])")
    up.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    up.add_argument("--port", type=int, default=43800, help="0 picks a free port")
    up.add_argument("--allow-writes", action="store_true",
                    help="allow archive/unarchive/delete from the browser")
    up.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                    help="also answer to this host name (repeatable; localhost and IP "
                         "addresses always work)")
    up.set_defaults(handler=cmd_up)
    server_command.add_command(commands, common)

    reindex_command.add_command(commands, common)
    add_convert_commands(commands, common)
    return parser


def _add_runs_commands(actions: Any, common: argparse.ArgumentParser) -> None:
    ls = actions.add_parser("ls", parents=[common], help="list runs")
    ls.add_argument("-q", "--query", default="", help="AimQL run query")
    ls.add_argument("--format", choices=FORMATS, default="table")
    ls.add_argument("-p", "--param", action="append", default=[], metavar="KEY",
                    help="add a param column, e.g. -p hparams.lr (repeatable)")
    ls.add_argument("-m", "--metric", action="append", default=[], metavar="NAME[:K=V,...]",
                    help="add the last value of a metric, e.g. -m loss:subset=val")
    ls.add_argument("-a", "--all", action="store_true", help="include archived runs")
    ls.set_defaults(handler=cmd_ls)

    show = actions.add_parser("show", parents=[common], help="params and sequences of a run")
    show.add_argument("hash")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(handler=cmd_show)

    rm = actions.add_parser("rm", parents=[common], help="delete runs")
    rm.add_argument("hashes", nargs="+", metavar="HASH")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=cmd_rm)

    for name, verb in (("cp", "copy"), ("mv", "move")):
        sub = actions.add_parser(name, parents=[common], help=f"{verb} runs to another repo")
        sub.add_argument("hashes", nargs="+", metavar="HASH")
        sub.add_argument("--dest", required=True, metavar="PATH", help="destination repo")
        sub.set_defaults(handler=cmd_copy_or_move, verb=verb)

    close = actions.add_parser("close", parents=[common],
                               help="end runs left open (e.g. crashed ones)")
    close.add_argument("hashes", nargs="+", metavar="HASH")
    close.add_argument("--status", choices=("finished", "failed"), default="finished")
    close.set_defaults(handler=cmd_close)

    for name, value in (("archive", True), ("unarchive", False)):
        sub = actions.add_parser(name, parents=[common], help=f"{name} runs")
        sub.add_argument("hashes", nargs="+", metavar="HASH")
        sub.set_defaults(handler=cmd_archive, archived=value)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


# -- helpers -------------------------------------------------------------------------------
def open_repo(args: argparse.Namespace) -> Repo:
    """The repo named by --repo, $AIM_CORE_REPO, or found above the working directory."""
    return existing_repo(getattr(args, "repo", None))


def resolve_hashes(repo: Repo, given: Sequence[str]) -> list[str]:
    """Full hashes for full hashes or unique prefixes; CommandError for unknown ones."""
    known = repo.list_runs()
    known_set = set(known)
    resolved = []
    for text in given:
        if text in known_set:
            resolved.append(text)
            continue
        found = [h for h in known if h.startswith(text)] if text else []
        if len(found) != 1:
            why = "matches several runs" if found else "is not a run"
            raise CommandError(f"{text!r} {why} in repo {repo.path}; list the runs with "
                               "`aim-core runs ls`")
        resolved.append(found[0])
    return resolved


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


# -- init, runs ls / show ------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    """aim-core init [PATH]"""
    path = args.path or getattr(args, "repo", None) or os.getcwd()
    try:
        repo = Repo(path)
        _emit(f"Repo already exists at {repo.root}")
    except AimCoreError:
        repo = Repo(path, init=True)
        _emit(f"Initialized an aim-core repo at {repo.root}")
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    """aim-core runs ls"""
    try:
        metrics = [parse_metric_spec(spec) for spec in args.metric]
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    repo = open_repo(args)
    fields = list(LIST_FIELDS) + [("params", *key.split(".")) for key in args.param]
    if metrics:
        fields.append(("sequences",))
    query = _with_archived(args.query) if args.all else args.query
    matches = query_runs(repo, query, skip_corrupted=False, fields=fields)
    columns = ["hash", "name", "experiment", "status", "created", "duration",
               *args.param, *(label for label, _, _ in metrics)]
    rows = [_run_row(m, args.param, metrics, args.format) for m in matches]
    _emit(write_rows(columns, rows, args.format))
    return EXIT_OK


def _with_archived(query: str) -> str:
    """The query widened to archived runs too (checked first, so errors keep their columns)."""
    compile_query(query, allow_metric=False)
    both = "(run.archived or not run.archived)"
    return f"({query}) and {both}" if query.strip() else both


def _run_row(match: Any, params: list[str], metrics: list, fmt: str) -> list[Any]:
    props = match.props
    created, duration = props.get("creation_time"), None
    if created is not None:
        import time

        duration = (props.get("end_time") or time.time()) - created
    flat = flatten(match.params)
    table = fmt == "table"
    row = [match.hash, props.get("name"), props.get("experiment"), match.status,
           local_time(created) if table else iso_time(created),
           duration_text(duration) if table else duration]
    row += [flat.get(key) for key in params]
    for _, name, context in metrics:
        row.append(next((s.get("last") for s in match.sequences
                         if s["name"] == name and s.get("context", {}) == context), None))
    return row


def cmd_show(args: argparse.Namespace) -> int:
    """aim-core runs show HASH"""
    repo = open_repo(args)
    run_hash = resolve_hashes(repo, [args.hash])[0]
    entry = repo.catalog.get(run_hash) or {}
    props, params = entry.get("props", {}), entry.get("params", {})
    sequences = entry.get("sequences", [])
    status = repo.status_of(run_hash, entry)
    if args.format == "json":
        _emit(json.dumps({"hash": run_hash, "status": status, "props": props,
                          "params": params, "sequences": sequences}, indent=2, default=str))
        return EXIT_OK
    lines = [f"run {run_hash}"]
    for key, value in (("name", props.get("name")), ("experiment", props.get("experiment")),
                       ("status", status), ("created", local_time(props.get("creation_time"))),
                       ("ended", local_time(props.get("end_time"))),
                       ("tags", ", ".join(props.get("tags") or [])),
                       ("archived", props.get("archived")),
                       ("description", props.get("description"))):
        lines.append(f"  {key + ':':<13}{'' if value is None else value}")
    lines.append("params:")
    lines += [f"  {key} = {json.dumps(value)}" for key, value in flatten(params).items()]
    lines.append("sequences:")
    table = format_table(
        ["name", "context", "kind", "count", "first_step", "last_step", "last", "min", "max"],
        [[s["name"], context_text(s.get("context")), s.get("kind", "metric"), s.get("count"),
          s.get("first_step"), s.get("last_step"), s.get("last"), s.get("min"), s.get("max")]
         for s in sequences])
    lines += ["  " + line for line in table.splitlines()]
    _emit("\n".join(lines))
    return EXIT_OK


# -- rm, cp, mv, close, archive ------------------------------------------------------------
def cmd_rm(args: argparse.Namespace) -> int:
    """aim-core runs rm HASH..."""
    repo = open_repo(args)
    hashes = resolve_hashes(repo, args.hashes)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("refusing to delete without confirmation: pass --yes", EXIT_USAGE)
        answer = input(f"Delete {len(hashes)} run(s) from {repo.path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            _emit("Nothing deleted.")
            return EXIT_OK
    repo.repair()
    return _each_reported(hashes, repo.delete_run, "deleted")


def cmd_copy_or_move(args: argparse.Namespace) -> int:
    """aim-core runs cp|mv HASH... --dest PATH"""
    repo = open_repo(args)
    hashes = resolve_hashes(repo, args.hashes)
    target = Repo(args.dest, init=True)
    if target == repo:
        raise CommandError("--dest names this same repo; give another repo folder", EXIT_USAGE)
    repo.repair()
    target.repair()
    action = repo.copy_run if args.verb == "copy" else repo.move_run
    done = "copied" if args.verb == "copy" else "moved"
    return _each_reported(hashes, lambda h: action(h, target), f"{done} to {args.dest}")


def _each_reported(hashes: list[str], action: Callable[[str], Any], done: str) -> int:
    """Apply ``action`` to each hash; report each failure with its own cause."""
    failed = []
    for run_hash in hashes:
        try:
            action(run_hash)
        except (AimCoreError, OSError, ValueError) as exc:
            print(f"aim-core: {run_hash}: {exc}", file=sys.stderr)
            failed.append(run_hash)
    _emit(f"{len(hashes) - len(failed)} run(s) {done}.")
    if failed:
        return _fail(f"failed for {len(failed)} run(s): {' '.join(failed)}", EXIT_FAILED)
    return EXIT_OK


def _report(result: tuple[bool, list[str]], total: int, done: str) -> int:
    all_ok, failed = result
    _emit(f"{total - len(failed)} run(s) {done}.")
    if not all_ok:
        return _fail(f"failed for {len(failed)} run(s): {' '.join(failed)} "
                     "(a run still open for writing cannot be moved or deleted)", EXIT_FAILED)
    return EXIT_OK


def cmd_close(args: argparse.Namespace) -> int:
    """aim-core runs close HASH..."""
    repo = open_repo(args)
    return _each_writable(repo, resolve_hashes(repo, args.hashes), "closed",
                          lambda run: None, status=args.status)


def cmd_archive(args: argparse.Namespace) -> int:
    """aim-core runs archive|unarchive HASH..."""
    repo = open_repo(args)

    def set_archived(run: Any) -> None:
        run.archived = args.archived

    done = "archived" if args.archived else "unarchived"
    return _each_writable(repo, resolve_hashes(repo, args.hashes), done, set_archived)


def _each_writable(repo: Repo, hashes: list[str], done: str, change: Callable[[Any], None],
                   status: str | None = None) -> int:
    """Open each run for writing (resume), apply ``change`` and close it again."""
    from ..run import Run

    failed = []
    for run_hash in hashes:
        try:
            # an edit, not a training: no samples of this command, no capture of its output
            run = Run(run_hash, repo=repo, system_tracking_interval=None,
                      capture_terminal_logs=False)
        except RunLockedError as exc:
            print(f"aim-core: {exc}", file=sys.stderr)
            failed.append(run_hash)
            continue
        try:
            change(run)
        finally:
            run.close(status=status or "finished")  # an untouched run keeps how it ended
    return _report((not failed, failed), len(hashes), done)


# -- query, export -------------------------------------------------------------------------
def cmd_query(args: argparse.Namespace) -> int:
    """aim-core query Q [--metrics]"""
    repo = open_repo(args)
    if not args.metrics:
        matches = query_runs(repo, args.query, fields=LIST_FIELDS)
        columns = ["hash", "name", "experiment", "status", "created", "duration"]
        _emit(write_rows(columns, [_run_row(m, [], [], args.format) for m in matches],
                         args.format))
        return EXIT_OK
    columns = ["run", "run_name", "metric", "context", "count", "last_step", "last", "min",
               "max"]
    rows = [[s["run_hash"], s["run_name"], s["name"],
             context_text(s.get("context")) if args.format != "json" else s.get("context"),
             s.get("count"), s.get("last_step"), s.get("last"), s.get("min"), s.get("max")]
            for s in query_metrics(repo, args.query).summaries()]
    _emit(write_rows(columns, rows, args.format))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """aim-core export HASH... --format csv|parquet|json"""
    from .export import export_metrics, select_metrics

    if not args.hashes and not args.query:
        raise CommandError("name runs to export (HASH...) or a metric query (--query)",
                           EXIT_USAGE)
    if args.kind != "metric":
        return _export_objects(args)
    if args.format is None:
        raise CommandError("metrics need --format csv, json or parquet", EXIT_USAGE)
    if args.format == "parquet" and not args.output:
        raise CommandError("parquet export needs an output file: -o FILE", EXIT_USAGE)
    repo = open_repo(args)
    hashes = resolve_hashes(repo, args.hashes) if args.hashes else None
    metrics = select_metrics(repo, hashes, args.query)
    with progress(len(metrics), "exporting", disable=args.no_progress) as bar:
        count = export_metrics(metrics, args.format, args.output, bar)
    print(f"exported {count} point(s) of {len(metrics)} metric(s)", file=sys.stderr)
    return EXIT_OK


def _export_objects(args: argparse.Namespace) -> int:
    """aim-core export --kind text|distribution|log_record|image|audio|figure"""
    from .export import _open_output
    from .export_objects import FILE_KINDS, export_files, export_rows, select_objects

    files = args.kind in FILE_KINDS
    if files and not args.output:
        raise CommandError(f"{args.kind} export writes files: name a folder with -o FOLDER",
                           EXIT_USAGE)
    if not files and args.format not in ("csv", "json"):
        raise CommandError(f"{args.kind} export needs --format csv or json", EXIT_USAGE)
    repo = open_repo(args)
    hashes = resolve_hashes(repo, args.hashes) if args.hashes else None
    sequences = select_objects(repo, args.kind, hashes, args.query)
    with progress(len(sequences), "exporting", disable=args.no_progress) as bar:
        if files:
            count = export_files(args.kind, sequences, args.output, bar)
        else:
            with _open_output(args.output) as out:
                count = export_rows(args.kind, sequences, args.format, out, bar)
    print(f"exported {count} element(s) of {len(sequences)} sequence(s)", file=sys.stderr)
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    """aim-core up [--host H] [--port P] [--allow-writes] [--allowed-host NAME]"""
    repo = open_repo(args)
    try:
        from ..ui.server import serve
    except ImportError as exc:
        raise CommandError(f"the dashboard needs the [ui] extra ({exc}): "
                           "pip install 'aim-core[ui]'") from None
    try:
        serve(repo.path, host=args.host, port=args.port, allow_writes=args.allow_writes,
              allowed_hosts=args.allowed_host)
    except OSError as exc:
        raise CommandError(str(exc)) from None
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
