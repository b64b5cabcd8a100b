"""``aim-core convert tensorboard|mlflow|aim``: bring existing runs into a repo.

Each prints a progress bar and a summary on stderr and exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..repo import Repo
from .output import progress

EXIT_OK, EXIT_FAILED = 0, 1


def add_convert_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``convert`` and its three sources on the ``aim-core`` parser."""
    convert = commands.add_parser("convert", parents=[common],
                                  help="import runs from TensorBoard, MLflow or Aim")
    convert.set_defaults(handler=lambda args: _usage(convert))
    sources = convert.add_subparsers(title="sources", metavar="SOURCE")
    options = argparse.ArgumentParser(add_help=False, parents=[common])
    options.add_argument("--no-progress", action="store_true", help="no progress bar")

    tb = sources.add_parser("tensorboard", parents=[options],
                            help="event files: one run per run folder (extra [tensorboard])")
    tb.add_argument("logdir", help="folder holding run folders with event files")
    tb.add_argument("--experiment", help="experiment of the runs (default: LOGDIR's name)")
    tb.add_argument("--flat", action="store_true",
                    help="every folder holding event files is a run of its own")
    tb.set_defaults(handler=cmd_tensorboard)

    mlf = sources.add_parser("mlflow", parents=[options],
                             help="an MLflow tracking store (extra [mlflow])")
    mlf.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                     help="e.g. sqlite:///mlflow.db, ./mlruns or http://host:5000 "
                          "(default: $MLFLOW_TRACKING_URI)")
    mlf.add_argument("--experiment", help="convert only the experiment with this name")
    mlf.set_defaults(handler=cmd_mlflow)

    aim = sources.add_parser("aim", parents=[options],
                             help="an Aim 3 repo (needs the aim package in this environment)")
    aim.add_argument("aim_repo", help="folder holding the .aim repo")
    aim.set_defaults(handler=cmd_aim)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _target(args: argparse.Namespace) -> Repo:
    return Repo(getattr(args, "repo", None), init=True)


def _bar(args: argparse.Namespace) -> Any:
    return lambda total: progress(total, "converting", disable=args.no_progress, unit="run")


def _finish(report: Any) -> int:
    print(report.text(), file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_tensorboard(args: argparse.Namespace) -> int:
    """aim-core convert tensorboard LOGDIR [--experiment E] [--flat]"""
    from ..convert.tensorboard import convert_tensorboard

    report = convert_tensorboard(args.logdir, _target(args), experiment=args.experiment,
                                 flat=args.flat, progress=_bar(args))
    return _finish(report)


def cmd_mlflow(args: argparse.Namespace) -> int:
    """aim-core convert mlflow --tracking-uri URI [--experiment NAME]"""
    if not args.tracking_uri:
        print("aim-core: error: give --tracking-uri (or set MLFLOW_TRACKING_URI)",
              file=sys.stderr)
        return 2
    from ..convert.mlflow import convert_mlflow

    report = convert_mlflow(args.tracking_uri, _target(args), experiment=args.experiment,
                            progress=_bar(args))
    return _finish(report)


def cmd_aim(args: argparse.Namespace) -> int:
    """aim-core convert aim AIM_REPO"""
    from ..convert.aim import convert_aim

    report = convert_aim(args.aim_repo, _target(args), progress=_bar(args))
    return _finish(report)
