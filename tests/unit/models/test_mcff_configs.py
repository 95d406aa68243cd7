"""Every configs/mcff/*.yaml loads, names a registered model with valid parameters and a valid distiller setup."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdinspect.config import load_config
from kdinspect.distill import DISTILLERS
from kdinspect.distill.mcff_kd import STRATEGIES
from kdinspect.models import MODELS
from kdinspect.models.registry import check_params

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs" / "mcff").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_mcff_config_is_valid(path):
    cfg = load_config(path)
    assert cfg.model.name in MODELS and cfg.train.name == path.stem
    check_params(MODELS[cfg.model.name].build, cfg.model.params, cfg.model.name)
    if cfg.distill.method:
        check_params(DISTILLERS[cfg.distill.method], cfg.distill.params, cfg.distill.method)
        t2 = STRATEGIES[cfg.distill.params["strategy"]][2]
        assert cfg.model.params.get("infer_temperature", 1.0) == t2
        assert bool(cfg.distill.teacher) == ("online" in path.stem)
        assert ("soft_labels" in cfg.data.params) == ("online" not in path.stem)


def test_every_row_has_the_same_recipe_per_dataset():
    for ds in ("deepcrack", "crackforest"):
        cfgs = [load_config(p) for p in CONFIGS if p.stem.startswith(ds)]
        assert len(cfgs) == 9  # teacher, 2 students, 4 distilled students, lite student, peer U-Net
        recipe = {(c.train.epochs, c.train.batch_size, c.train.lr, c.data.imgsz, c.train.threads) for c in cfgs}
        assert len(recipe) == 1
