from pathlib import Path

import pytest

from kdinspect.config import RunConfig, apply_overrides, config_from_dict, dump_config, load_config


def test_defaults_round_trip(tmp_path: Path) -> None:
    cfg = RunConfig()
    path = tmp_path / "c.yaml"
    dump_config(cfg, path)
    assert load_config(path) == cfg


def test_overrides_typed() -> None:
    cfg = apply_overrides(
        RunConfig(),
        [
            "train.epochs=5",
            "train.lr=0.5",
            "model.params.width=8",
            "train.milestones=[2,4]",
            "data.classes=a,b",
            "train.deterministic=true",
        ],
    )
    assert cfg.train.epochs == 5 and cfg.train.lr == 0.5 and cfg.model.params == {"width": 8}
    assert cfg.train.milestones == [2, 4] and cfg.data.classes == ["a", "b"] and cfg.train.deterministic is True


def test_int_accepted_for_float() -> None:
    assert apply_overrides(RunConfig(), ["train.lr=1"]).train.lr == 1.0


@pytest.mark.parametrize("bad", ["train.epoch=3", "trian.epochs=3", "model.width=3"])
def test_unknown_override_key(bad: str) -> None:
    with pytest.raises(KeyError, match="unknown config key"):
        apply_overrides(RunConfig(), [bad])


def test_type_mismatch() -> None:
    with pytest.raises(TypeError, match="train.epochs"):
        apply_overrides(RunConfig(), ["train.epochs=abc"])
    with pytest.raises(TypeError, match="train.deterministic"):
        config_from_dict({"train": {"deterministic": "yes"}})


def test_unknown_yaml_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 2\n  learning_rate: 0.1\n")
    with pytest.raises(KeyError, match="train.learning_rate"):
        load_config(path)


def test_section_inlined_from_file(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("format: voc\nroot: /x\n")
    (tmp_path / "run.yaml").write_text("data: data.yaml\ntrain:\n  epochs: 3\n")
    cfg = load_config(tmp_path / "run.yaml")
    assert cfg.data.format == "voc" and cfg.data.root == "/x" and cfg.train.epochs == 3


def test_bad_override_syntax() -> None:
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(RunConfig(), ["train.epochs"])
