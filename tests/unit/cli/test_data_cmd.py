from __future__ import annotations

import json
import shutil

from kdinspect.cli.main import main


def _run(argv: list[str]) -> int:
    return main(argv)


def test_data_synth_then_check_ok(tmp_path, capsys):
    out = tmp_path / "det"
    assert _run(["data", "synth", str(out), "--n-train", "4", "--n-val", "2", "--imgsz", "64"]) == 0
    assert _run(["data", "check", str(out), "--json", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "format voc (detection)" in text and text.rstrip().splitlines()[-1].startswith("OK")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] and report["total"]["images"] == 6


def test_data_check_exits_nonzero_on_errors(synthetic_seg, tmp_path, capsys):
    root = tmp_path / "seg"
    shutil.copytree(synthetic_seg, root)
    (root / "masks" / "val" / "val_0000.png").unlink()
    assert _run(["data", "check", str(root), "--split", "val", "--quiet"]) == 1
    assert capsys.readouterr().out.startswith("FAILED")
