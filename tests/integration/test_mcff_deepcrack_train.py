"""A short real training run of the MCFF-L student on DeepCrack crops: the loss must fall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdinspect.data.structures import SegTarget
from kdinspect.models.mcff import mcff_student

DEEPCRACK = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "deepcrack"
if not DEEPCRACK.is_dir():
    DEEPCRACK = Path("/work/shared/datasets/deepcrack")


def _crops(n: int = 8, size: int = 64) -> tuple[torch.Tensor, list[SegTarget]]:
    """Crops centred on crack pixels of the first DeepCrack training images."""
    rng = np.random.default_rng(0)
    images, targets = [], []
    for img_path in sorted((DEEPCRACK / "train_img").glob("*.jpg"))[:n]:
        img = np.asarray(Image.open(img_path).convert("RGB"), dtype=np.float32) / 255.0
        mask = np.asarray(Image.open(DEEPCRACK / "train_lab" / f"{img_path.stem}.png").convert("L")) > 127
        ys, xs = np.nonzero(mask)
        k = rng.integers(len(ys))
        y0 = int(np.clip(ys[k] - size // 2, 0, mask.shape[0] - size))
        x0 = int(np.clip(xs[k] - size // 2, 0, mask.shape[1] - size))
        images.append(torch.from_numpy(img[y0 : y0 + size, x0 : x0 + size]).permute(2, 0, 1))
        targets.append(SegTarget(torch.from_numpy(mask[y0 : y0 + size, x0 : x0 + size].astype(np.float32))))
    return torch.stack(images), targets


@pytest.mark.skipif(not (DEEPCRACK / "train_img").is_dir(), reason="DeepCrack not available")
def test_student_loss_falls_on_real_deepcrack_crops():
    torch.manual_seed(0)
    images, targets = _crops()
    model = mcff_student().train()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)

    def total() -> float:
        with torch.no_grad():
            return float(sum(model(images, targets).values()))

    before = total()
    for step in range(24):
        idx = torch.arange(4) + 4 * (step % 2)
        loss = sum(model(images[idx], [targets[i] for i in idx]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = total()
    assert after < 0.7 * before, (before, after)
