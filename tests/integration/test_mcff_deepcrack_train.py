"""A short real training run of the MCFF-L student on DeepCrack crops: the loss must fall, and the crack F1 on crops
of other images (not trained on) must rise: memorising the 8 training crops is not enough."""

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


def _crops(n: int = 8, size: int = 64, start: int = 0) -> tuple[torch.Tensor, list[SegTarget]]:
    """Crops centred on crack pixels of DeepCrack training images ``start`` .. ``start + n - 1`` (sorted)."""
    rng = np.random.default_rng(0)
    images, targets = [], []
    for img_path in sorted((DEEPCRACK / "train_img").glob("*.jpg"))[start : start + n]:
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

    held_images, held_targets = _crops(start=100)  # other images: never trained on

    def held_out_f1() -> float:
        """Pixel F1 at 0.5 of the eval-mode (deployed) output on the held-out crops."""
        model.eval()
        with torch.no_grad():
            pred = model(held_images).prob[:, 0] > 0.5
        model.train()
        gt = torch.stack([t.mask for t in held_targets]) > 0.5
        tp = (pred & gt).sum().item()
        return 2 * tp / (2 * tp + (pred & ~gt).sum().item() + (~pred & gt).sum().item())

    before, f1_before = total(), held_out_f1()
    for step in range(24):
        idx = torch.arange(4) + 4 * (step % 2)
        loss = sum(model(images[idx], [targets[i] for i in idx]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = total()
    assert after < 0.7 * before, (before, after)
    # held-out F1 0.20 -> 0.34 here (0.22 -> 0.59 with torch seed 1 and other crops)
    f1_after = held_out_f1()
    assert f1_after > 0.27 and f1_after > f1_before + 0.07, (f1_before, f1_after)
