"""``kdinspect`` command line: one console script, argparse subcommands, each a thin layer over the Python API."""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType

from kdinspect import __version__
from kdinspect.cli import (
    add_classes_cmd,
    data_cmd,
    demo_cmd,
    eval_cmd,
    export_cmd,
    fewshot_cmd,
    info_cmd,
    keys_cmd,
    predict_cmd,
    receive_cmd,
    serve_cmd,
    softlabels_cmd,
    stream_cmd,
    train_cmd,
    weights_cmd,
)
from kdinspect.utils.logging import setup_logging

__all__ = ["build_parser", "main"]

logger = logging.getLogger("kdinspect.cli")

# Each module defines NAME, HELP, add_arguments(parser) and run(args) -> int.
COMMANDS: list[ModuleType] = [
    train_cmd,
    eval_cmd,
    predict_cmd,
    export_cmd,
    data_cmd,
    info_cmd,
    demo_cmd,
    softlabels_cmd,
    fewshot_cmd,
    add_classes_cmd,
    stream_cmd,
    receive_cmd,
    serve_cmd,
    keys_cmd,
    weights_cmd,
]

# Errors that come from bad input (config, files, data) rather than from bugs: printed without a traceback.
USER_ERRORS = (
    KeyError,
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    RuntimeError,
    ImportError,
    FloatingPointError,  # NaN/Inf weights or outputs: a model or data problem, named in the message
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdinspect",
        description="Lightweight visual defect inspection with knowledge distillation "
        "(HSD detection, MCFF-L crack segmentation, DKAN incremental few-shot detection).",
    )
    parser.add_argument("--version", action="version", version=f"kdinspect {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.NAME, help=cmd.HELP, description=cmd.HELP)
        cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 = success, 1 = check failed, 2 = error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    except USER_ERRORS as err:
        if args.debug:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        logger.error("%s (--debug shows the traceback)", msg)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
