"""Train with a sleep after every step (so a test can SIGKILL the process mid-epoch). Args: dotted overrides."""

from __future__ import annotations

import sys
import time

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.engine.trainer import Callback, Trainer


class Sleep(Callback):
    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        time.sleep(0.4)


if __name__ == "__main__":
    train(load_config(None, sys.argv[1:]), callbacks=[Sleep()], progress=False)
