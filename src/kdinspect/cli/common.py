"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

__all__ = ["add_device", "add_overrides"]


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted config override, repeatable (e.g. --set train.epochs=5 --set model.params.width=8)",
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="torch device (cpu, cuda, cuda:1); default: the config's")
