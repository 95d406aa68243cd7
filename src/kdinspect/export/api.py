"""Export a checkpoint and verify the exported graph on real validation images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from kdinspect.engine.checkpoint import load_model
from kdinspect.export.onnx import export_onnx, inference_module
from kdinspect.export.verify import compare_outputs
from kdinspect.utils.io import write_json

__all__ = ["export_checkpoint"]

logger = logging.getLogger(__name__)


def _input_size(cfg: Any, kind: str, imgsz: int | None) -> tuple[int, int]:
    if imgsz:
        return (imgsz, imgsz)
    size = cfg.data.imgsz if kind == "detection" else (cfg.data.eval_imgsz or cfg.data.imgsz)
    return (size, size)


def _real_images(cfg: Any, kind: str, size: tuple[int, int], n: int) -> list[torch.Tensor]:
    """Up to ``n`` validation images resized to ``size`` as (1, 3, H, W) tensors (empty if the data is missing)."""
    import torch.nn.functional as F

    from kdinspect.data import build_dataset

    try:
        ds = build_dataset(cfg.data, "val", kind, train=False, seed=cfg.train.seed, run_dir=cfg.run_dir)
    except (FileNotFoundError, KeyError, ValueError) as err:
        logger.warning("no validation images for the export check (%s); using random inputs", err)
        return []
    images = []
    for i in range(min(n, len(ds))):
        sample = ds[i]
        if sample is None:
            continue
        img = sample.image[None]
        if tuple(img.shape[-2:]) != size:
            img = F.interpolate(img, size=size, mode="bilinear", align_corners=False)
        images.append(img)
    return images


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    imgsz: int | None = None,
    opset: int = 17,
    dynamic: bool = False,
    nms: bool = True,
    verify_images: int = 8,
    atol: float = 1e-3,
) -> dict[str, Any]:
    """Export ``checkpoint`` to ONNX and compare ONNX Runtime with PyTorch on real validation images.

    Writes ``<out>`` and ``<out>.verify.json``; raises ``ExportMismatchError`` when outputs differ beyond ``atol``.
    """
    loaded = load_model(checkpoint)
    size = _input_size(loaded.cfg, loaded.kind, imgsz)
    out = Path(out) if out else Path(checkpoint).with_suffix(".onnx")
    export_onnx(loaded.model, out, size, loaded.kind, loaded.classes, str(loaded.cfg.model.name), opset, dynamic, nms)
    images = _real_images(loaded.cfg, loaded.kind, size, verify_images) or [torch.rand(1, 3, *size)]
    report: dict[str, Any] = {"onnx": str(out), "input_size": list(size), "verify_images": len(images), "atol": atol}
    report |= compare_outputs(
        inference_module(loaded.model, loaded.kind, nms), out, images, atol=atol, raise_on_fail=False
    )
    write_json(out.with_suffix(".verify.json"), report)
    bad = {k: v for k, v in report.items() if k.startswith("max_abs_diff") and v > atol}
    if bad:
        from kdinspect.export.verify import ExportMismatchError

        raise ExportMismatchError(f"{out}: ONNX Runtime differs from PyTorch beyond atol={atol}: {bad}")
    logger.info("export verified on %d image(s): %s", len(images), report)
    return report
