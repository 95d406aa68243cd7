"""Glue of the distillation-gain tests: in-memory synthetic data, label corruption, a seeded training loop.

The images are drawn by the same functions (and seeds) that write the ``synthetic-seg`` / ``synthetic-det`` sets,
kept in memory because the tests use tiny sizes and a few dozen iterations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kdinspect.data.structures import Batch, DetTarget, ImageMeta, SegTarget
from kdinspect.data.synthetic_draw import _crack_image, _detection_image
from kdinspect.tasks.base import Task

SPLITS = {"train": 0, "val": 1}  # the split codes of kdinspect.data.synthetic


@contextmanager
def torch_threads(n: int = 1):
    """Run the block with ``n`` torch threads (deterministic and fair to a shared CPU), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def crack_set(split: str, n: int, size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(n, 3, size, size) RGB in [0, 1] and (n, size, size) 0/1 crack masks."""
    images, masks = [], []
    for i in range(n):
        img, mask = _crack_image(np.random.default_rng([seed, SPLITS[split], i]), size, size)
        images.append(torch.from_numpy(img).permute(2, 0, 1).float() / 255.0)
        masks.append(torch.from_numpy(mask).float())
    return torch.stack(images), torch.stack(masks)


def defect_set(split: str, n: int, size: int, seed: int = 0) -> tuple[Tensor, list[DetTarget]]:
    """(n, 3, size, size) gray steel images in [0, 1] (3 equal channels) and their boxes (4 classes)."""
    images, targets = [], []
    for i in range(n):
        img, boxes, labels = _detection_image(np.random.default_rng([seed, SPLITS[split], i]), size, size)
        images.append(torch.from_numpy(img).float().div(255.0)[None].expand(3, -1, -1))
        targets.append(DetTarget(torch.tensor(boxes).reshape(-1, 4).float(), torch.tensor(labels).long()))
    return torch.stack(images), targets


def partial_masks(masks: Tensor, seed: int, keep: float = 0.3, block: int = 8) -> Tensor:
    """Incomplete annotation: keep the crack pixels of a random ``keep`` share of ``block`` x ``block`` tiles."""
    n, h, w = masks.shape
    g = torch.Generator().manual_seed(seed)
    tiles = (torch.rand(n, -(-h // block), -(-w // block), generator=g) < keep).float()
    tiles = tiles.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :h, :w]
    return masks * tiles


def jittered_boxes(targets: Sequence[DetTarget], seed: int, amp: float, size: int) -> list[DetTarget]:
    """Sloppy annotation: every box side moved by up to ``amp`` times the box width/height (fixed per seed)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in targets:
        wh = (t.boxes[:, 2:] - t.boxes[:, :2]).repeat(1, 2)
        b = t.boxes + (torch.rand(t.boxes.shape, generator=g) * 2 - 1) * amp * wh
        b = torch.cat([torch.minimum(b[:, :2], b[:, 2:] - 2), b[:, 2:]], 1).clamp(0, size)
        out.append(DetTarget(b, t.labels))
    return out


def seg_batch(images: Tensor, masks: Tensor, soft: Tensor | None = None) -> Batch:
    h, w = images.shape[-2:]
    metas = [ImageMeta(f"{i}.png", str(i), (h, w), (h, w)) for i in range(len(images))]
    targets = [SegTarget(m, None if soft is None else soft[i]) for i, m in enumerate(masks)]
    return Batch(images, targets, metas)


def det_batch(images: Tensor, targets: Sequence[DetTarget]) -> Batch:
    h, w = images.shape[-2:]
    metas = [ImageMeta(f"{i}.png", str(i), (h, w), (h, w)) for i in range(len(images))]
    return Batch(images, list(targets), metas)


def fit(
    task: Task,
    make_batch: Callable[[list[int]], Batch],
    n: int,
    iters: int,
    batch_size: int,
    lr: float,
    seed: int,
    optimizer: str = "adam",
) -> Task:
    """Train ``task`` (a student task or a distiller) for ``iters`` steps on random batches of items ``0..n-1``."""
    g = torch.Generator().manual_seed(seed)
    params = [p for p in task.parameters() if p.requires_grad]
    opt: Any
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    else:
        opt = torch.optim.AdamW(params, lr=lr) if optimizer == "adamw" else torch.optim.Adam(params, lr=lr)
    task.train()
    for _ in range(iters):
        idx = torch.randperm(n, generator=g)[:batch_size].tolist()
        loss = task(make_batch(idx))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return task.eval()
