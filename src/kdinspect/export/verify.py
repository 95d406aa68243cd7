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
    model_path: str | Path,
    images: Sequence[torch.Tensor],
    atol: float = 1e-3,
    threads: int = 1,
    raise_on_fail: bool = True,
) -> dict[str, float]:
    """Run the eager export wrapper and the exported model on each (B, 3, H, W) input; report the differences.

    ``model_path`` is an ``.onnx`` file (ONNX Runtime, CPU) or an OpenVINO ``.xml``. Returns
    ``max_abs_diff_<output>`` over the inputs with equal shapes and ``shape_mismatch_<output>``, the number of
    inputs whose output shapes differ (e.g. another number of detections after NMS); both count as a failure.
    """
    run = _runner(Path(model_path), threads)
    worst: dict[str, float] = {}
    mismatch: dict[str, int] = {}
    module.eval()
    for img in images:
        with torch.no_grad():
            ref = module(img)
        ref_t = list(ref) if isinstance(ref, tuple) else [ref]
        got = run(img.numpy().astype(np.float32))
        for (name, g), r in zip(got.items(), ref_t):
            r = r.detach().cpu().numpy()
            worst.setdefault(name, 0.0)
            mismatch.setdefault(name, 0)
            if r.shape != g.shape:
                mismatch[name] += 1
                continue
            worst[name] = max(worst[name], float(np.abs(r.astype(np.float64) - g).max(initial=0.0)))
    report: dict[str, float] = {f"max_abs_diff_{k}": v for k, v in worst.items()}
    report |= {f"shape_mismatch_{k}": float(v) for k, v in mismatch.items()}
    bad = {k: v for k, v in report.items() if (k.startswith("max_abs") and v > atol) or (k.startswith("shape") and v)}
    if bad and raise_on_fail:
        raise ExportMismatchError(f"{model_path}: runtime output differs from PyTorch beyond atol={atol}: {bad}")
    return report


def _runner(path: Path, threads: int):
    """A function ``batch -> {output name: array}`` for an ONNX or OpenVINO file."""
    if path.suffix == ".xml":
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_NUM_THREADS": threads})
        names = [o.get_any_name() for o in compiled.outputs]
        return lambda x: {n: np.asarray(v) for n, v in zip(names, compiled(x).values())}
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return lambda x: dict(zip(names, sess.run(None, {"images": x})))
