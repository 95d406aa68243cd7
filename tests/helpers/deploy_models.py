"""Small exportable models that follow the ONNX contract, and helpers to export them for runtime tests."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms

from kdinspect.export.onnx import export_onnx

CLASSES = ["scratch", "blob"]


class DetsOut(NamedTuple):
    dets: Tensor


class HostOut(NamedTuple):
    boxes: Tensor
    scores: Tensor


class TinyDetector(nn.Module):
    """A 4x4 grid of fixed anchors whose class scores come from a conv over the image (input-dependent outputs).

    Class 0 fires on dark cells, class 1 on red cells: images with a dark and a red square give two boxes.
    """

    def __init__(self, size: int = 64, score_thr: float = 0.3, iou_thr: float = 0.5) -> None:
        super().__init__()
        self.cls = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.cls.weight.copy_(torch.tensor([[-4.0, -4.0, -4.0], [6.0, -6.0, -6.0]]).view(2, 3, 1, 1))
            self.cls.bias.copy_(torch.tensor([2.0, -1.0]))
        cell = size / 4
        ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
        anchors = torch.stack([xs * cell, ys * cell, (xs + 1) * cell, (ys + 1) * cell], -1).view(-1, 4)
        self.register_buffer("anchors", anchors)
        self.score_thr = score_thr
        self.iou_thr = iou_thr

    def raw(self, images: Tensor) -> tuple[Tensor, Tensor]:
        logits = nn.functional.adaptive_avg_pool2d(self.cls(images), 4)  # (B, 2, 4, 4)
        scores = torch.sigmoid(logits).flatten(2).transpose(1, 2)  # (B, 16, 2)
        return self.anchors.expand(images.shape[0], -1, -1), scores

    def inference_module(self, nms: bool = True) -> nn.Module:
        return _WithNMS(self) if nms else _HostNMS(self)


class _HostNMS(nn.Module):
    def __init__(self, det: TinyDetector) -> None:
        super().__init__()
        self.det = det

    def forward(self, images: Tensor) -> HostOut:
        return HostOut(*self.det.raw(images))


class _WithNMS(nn.Module):
    def __init__(self, det: TinyDetector) -> None:
        super().__init__()
        self.det = det
        self.score_thr = det.score_thr
        self.iou_thr = det.iou_thr

    def forward(self, images: Tensor) -> DetsOut:
        boxes, scores = self.det.raw(images)
        _, a, c = scores.shape
        flat = scores.reshape(-1)
        keep = torch.nonzero(flat > self.score_thr).squeeze(1)
        img_idx = torch.div(keep, a * c, rounding_mode="floor")
        anchor = torch.div(keep, c, rounding_mode="floor")
        label = keep % c
        box = boxes.reshape(-1, 4)[anchor]
        sc = flat[keep]
        kept = batched_nms(box, sc, img_idx * c + label, self.iou_thr)
        dets = torch.cat([img_idx[kept, None].float(), box[kept], sc[kept, None], label[kept, None].float()], 1)
        return DetsOut(dets)


def square_image(size: tuple[int, int] = (96, 128)) -> torch.Tensor:
    """uint8 (H, W, 3) grey image with a dark square in the top-left cell and a red one bottom-right."""
    import numpy as np

    h, w = size
    img = np.full((h, w, 3), 200, np.uint8)
    img[: h // 4, : w // 4] = 10
    img[3 * h // 4 :, 3 * w // 4 :] = (250, 0, 0)
    return img


def export_tiny_detector(path: Path, nms: bool = True, dynamic: bool = False, size: int = 64) -> Path:
    model = TinyDetector(size).eval()
    return export_onnx(model, path, (size, size), "detection", CLASSES, "tiny_det", opset=17, dynamic=dynamic, nms=nms)


def export_tiny_segmenter(path: Path, size: tuple[int, int] = (64, 64), dynamic: bool = False) -> Path:
    from kdinspect.models.unet import UNet

    torch.manual_seed(0)
    model = UNet(width=4, depth=2).eval()
    return export_onnx(model, path, size, "segmentation", ["crack"], "unet", opset=17, dynamic=dynamic)
