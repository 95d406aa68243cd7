"""``kdinspect train --resume --allow-change`` reaches ``api.train(allow_change=True)``."""

from __future__ import annotations

from typing import Any

import pytest

from kdinspect.cli.main import build_parser


def test_allow_change_flag_is_passed_to_train(monkeypatch: pytest.MonkeyPatch) -> None:
    import kdinspect.api
    from kdinspect.cli import train_cmd

    seen: dict[str, Any] = {}

    def fake_train(cfg: Any, progress: bool = True, allow_change: bool = False) -> Any:
        seen.update(resume=cfg.train.resume, allow_change=allow_change)
        raise SystemExit(0)

    monkeypatch.setattr(kdinspect.api, "train", fake_train)
    args = build_parser().parse_args(["train", "--resume", "--allow-change", "--set", "train.epochs=1"])
    with pytest.raises(SystemExit):
        train_cmd.run(args)
    assert seen == {"resume": True, "allow_change": True}
    assert build_parser().parse_args(["train", "--resume"]).allow_change is False
