"""``kdinspect keys``: CURVE key pairs for encrypted, authenticated result streams."""

from __future__ import annotations

import argparse

NAME = "keys"
HELP = "create CURVE key pairs (server + client) for 'stream --publish' links that leave the machine"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="output folder (secret keys are written with mode 600)")


def run(args: argparse.Namespace) -> int:
    from kdinspect.deploy.transport import create_curve_keys

    for name, path in create_curve_keys(args.folder).items():
        print(f"{name}: {path}")
    return 0
