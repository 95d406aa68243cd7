"""``kdinspect data check`` on a misspelt class name: reported without --classes, an error with them."""

from __future__ import annotations

from tests.helpers.mini_data import NEU_MINI_CLASSES, neu_mini, rename_class

from kdinspect.cli.main import main


def test_data_check_reports_misspelt_class(shared_data, tmp_path, capsys):
    root = neu_mini(shared_data, tmp_path / "neu")
    rename_class(root / "ANNOTATIONS" / "inclusion_2.xml", "inclusion", "inclsuion")
    assert main(["data", "check", str(root), "--no-decode"]) == 0  # a warning: the name may be meant
    text = capsys.readouterr().out
    assert "7 classes" in text and "train boxes" in text and "val boxes" in text
    line = next(ln for ln in text.splitlines() if "WARNING unexpected_class" in ln)
    assert "inclusion_2.xml" in line and "'inclsuion'" in line and "only in the train split" in line
    row = next(ln for ln in text.splitlines() if ln.startswith("inclusion "))
    assert row.split()[1:] == ["2", "7", "4", "3"]  # images, boxes, train boxes, val boxes (inclusion_2 renamed)
    assert main(["data", "check", str(root), "--no-decode", "--classes", ",".join(NEU_MINI_CLASSES)]) == 1
    assert "ERROR unknown_class" in capsys.readouterr().out
