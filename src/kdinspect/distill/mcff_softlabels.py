"""MCFF-L step 2: run a trained teacher over a dataset split and store its soft labels per image."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from kdinspect.distill.mcff_kd import teacher_soft_maps
from kdinspect.distill.soft_labels import (
    SOFT_FORMATS,
    SOFT_OUTPUTS,
    soft_label_dirs,
    write_soft_label,
    write_soft_label_info,
)
from kdinspect.models.mcff.net import MCFFNet

__all__ = ["generate_soft_labels"]

logger = logging.getLogger(__name__)


def generate_soft_labels(
    teacher_ckpt: str | Path,
    out_dir: str | Path,
    t1: float = 10.0,
    fmt: str = "png",
    split: str = "train",
    overrides: Sequence[str] = (),
    device: str = "cpu",
    shard: int = 0,
    num_shards: int = 1,
) -> list[str]:
    """Write the teacher's ``softmax(gated_logits / T1)`` crack maps (h, x, y, mix) for every image of a split.

    Images are processed one at a time at full resolution, without augmentation. The data come from the teacher
    checkpoint's config (``overrides`` such as ``data.root=...`` change it).

    Args:
        teacher_ckpt: checkpoint of a trained MCFF-L teacher.
        out_dir: soft-label root folder.
        t1: soft-label temperature (5, 10 or 15 in the paper; 10 is "the best dataset").
        fmt: ``png`` (8-bit, as released) or ``npy`` (float16).
        split: config split whose images are labelled (``train`` or ``val``).
        overrides: dotted config overrides applied to the stored config.
        device: torch device.
        shard: process only images ``i`` with ``i % num_shards == shard`` (to split the work over processes).
        num_shards: number of shards.

    Returns:
        The folders to set as ``data.params.soft_labels`` for the student run.
    """
    from kdinspect.config import apply_overrides
    from kdinspect.data import build_dataset
    from kdinspect.engine.checkpoint import load_model

    if fmt not in SOFT_FORMATS:
        raise ValueError(f"soft-label format {fmt!r} not in {list(SOFT_FORMATS)}")
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} not in [0, {num_shards})")
    loaded = load_model(teacher_ckpt, device)
    if not isinstance(loaded.model, MCFFNet):
        raise TypeError(f"{teacher_ckpt}: soft labels need an MCFF-L teacher, got {type(loaded.model).__name__}")
    cfg = apply_overrides(loaded.cfg, list(overrides))
    params = {k: v for k, v in cfg.data.params.items() if k != "soft_labels"}  # the teacher's run never had any
    data_cfg = dataclasses.replace(cfg.data, params=params)
    dataset = build_dataset(data_cfg, split, "segmentation", train=False, seed=cfg.train.seed)
    teacher = loaded.model.eval()
    t0, written = time.perf_counter(), 0
    for i in range(shard, len(dataset), num_shards):
        sample = dataset[i]
        if not hasattr(sample, "image"):
            raise ValueError(f"soft labels: cannot read {getattr(sample, 'path', i)}")
        maps = teacher_soft_maps(teacher, sample.image[None].to(device), t1)[0]  # (4, H, W)
        write_soft_label(maps.cpu().numpy(), out_dir, sample.meta.image_id, fmt)
        written += 1
        if written % 25 == 0:
            logger.info("soft labels: %d images (%.1f s/image)", written, (time.perf_counter() - t0) / written)
    info = {
        "teacher": str(teacher_ckpt),
        "t1": t1,
        "format": fmt,
        "outputs": list(SOFT_OUTPUTS),
        "split": getattr(cfg.data, split),
        "data_root": cfg.data.root,
        "images": len(dataset),
    }
    if shard == 0:
        write_soft_label_info(out_dir, info)
    logger.info(
        "soft labels: %d images at T1=%g written to %s in %.0f s", written, t1, out_dir, time.perf_counter() - t0
    )
    return soft_label_dirs(out_dir, fmt)
