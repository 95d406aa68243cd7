"""Check an exported graph against the PyTorch model on real inputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["ExportMismatchError", "compare_outputs"]

logger = logging.getLogger(__name__)


class ExportMismatchError(RuntimeError):
    """The exported model's outputs differ from PyTorch's beyond tolerance."""


def compare_outputs(
    module: nn.Module,
    onnx_path: str | Path,
    images: Sequence[torch.Tensor],
    atol: float = 1e-3,
    threads: int = 1,
    raise_on_fail: bool = True,
) -> dict[str, float]:
    """Run the eager export wrapper and ONNX Runtime on each (1, 3, H, W) image; return max abs differences.

    Outputs whose shapes differ (e.g. a different number of detections after NMS) count as a mismatch.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    worst = dict.fromkeys(names, 0.0)
    module.eval()
    for img in images:
        with torch.no_grad():
            ref = module(img)
        ref_t = list(ref) if isinstance(ref, tuple) else [ref]
        got = sess.run(None, {"images": img.numpy().astype(np.float32)})
        for name, r, g in zip(names, ref_t, got):
            r = r.detach().cpu().numpy()
            diff = float("inf") if r.shape != g.shape else float(np.abs(r.astype(np.float64) - g).max(initial=0.0))
            worst[name] = max(worst[name], diff)
    report = {f"max_abs_diff_{k}": v for k, v in worst.items()}
    bad = {k: v for k, v in worst.items() if v > atol}
    if bad and raise_on_fail:
        raise ExportMismatchError(f"{onnx_path}: ONNX Runtime differs from PyTorch beyond atol={atol}: {bad}")
    return report
