"""The Python API as the README writes it: ``kdinspect.train("x.yaml", epochs=3, ...)``, and config errors as
sentences (``unknown config key 'train.epoch' (did you mean 'train.epochs'?)``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.helpers.runs import seg_overrides

import kdinspect
from kdinspect.cli.main import main
from kdinspect.config import RunConfig, apply_overrides, load_config, resolve_config, with_fields

REPO = Path(__file__).resolve().parents[3]


def test_keyword_fields_resolve_to_their_section() -> None:
    cfg = resolve_config(REPO / "configs/demo/seg_synthetic.yaml", ["model.params.width=4"], epochs=3, lr=0.005)
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.params["width"]) == (3, 0.005, 4)
    assert cfg.data.format == "synthetic-seg"  # the rest comes from the YAML
    cfg = with_fields(RunConfig(), train__name="try1", data__root="/x", teacher="t.safetensors", task="detection")
    got = (cfg.train.name, cfg.data.root, cfg.distill.teacher, cfg.task)
    assert got == ("try1", "/x", "t.safetensors", "detection")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "x"}, "config field 'name' is in several sections; name one: model__name, train__name"),
        ({"epoch": 3}, "unknown config key 'epoch' (did you mean 'epochs'?)"),
        ({"train__epoch": 3}, "unknown config key 'train.epoch' (did you mean 'train.epochs'?)"),
        ({"trian__epochs": 3}, "unknown config key 'trian' (did you mean 'train'?)"),
    ],
)
def test_keyword_errors_are_sentences(fields: dict, message: str) -> None:
    with pytest.raises(KeyError) as err:
        with_fields(RunConfig(), **fields)
    assert err.value.args[0] == message


def test_keyword_values_are_type_checked() -> None:
    with pytest.raises(TypeError, match="train.epochs: expected an integer"):
        with_fields(RunConfig(), epochs="three")


def test_dotted_and_yaml_errors_suggest_the_key(tmp_path: Path) -> None:
    with pytest.raises(KeyError) as err:
        apply_overrides(RunConfig(), ["train.epoch=3"])
    assert err.value.args[0] == "unknown config key 'train.epoch' (did you mean 'train.epochs'?)"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": {"epohcs": 2}}))
    with pytest.raises(KeyError) as err:
        load_config(bad)
    assert err.value.args[0] == "unknown config key 'train.epohcs' (did you mean 'train.epochs'?)"


def test_cli_prints_the_sentence_without_exception_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["train", "--set", "train.epoch=3"]) == 2
    assert "unknown config key 'train.epoch' (did you mean 'train.epochs'?)" in caplog.text
    assert "KeyError" not in caplog.text
    caplog.clear()
    nope = tmp_path / "nope"
    args = ["--set", "data.format=masks", "--set", f"data.root={nope}", "--set", f"train.out_dir={tmp_path / 'runs'}"]
    assert main(["train", *args]) == 2
    assert f"data.root {nope} does not exist" in caplog.text
    assert not (tmp_path / "runs").exists()  # a config error leaves no run folder


def test_train_takes_a_yaml_path_and_keyword_overrides(tmp_path: Path) -> None:
    """``kdinspect.train(path, **fields)``: the YAML is read, the keywords win, and the run folder says so."""
    cfg = load_config(None, seg_overrides(tmp_path / "data", tmp_path / "runs", "from_yaml", epochs=3))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    result = kdinspect.train(path, progress=False, epochs=1, overrides=["train.batch_size=8"], train__name="api")
    assert result.run_dir == tmp_path / "runs" / "api"
    saved = load_config(result.run_dir / "config.yaml")
    assert (saved.train.epochs, saved.train.batch_size, saved.model.params["width"]) == (1, 8, 4)
    assert result.best.is_file() and "f1" in result.metrics
    assert 'kdinspect.train("configs/demo/seg_unet.yaml", epochs=3' in (kdinspect.train.__doc__ or "")
