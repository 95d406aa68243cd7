"""Check an exported graph against the PyTorch model on real inputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["ExportMismatchError", "compare_dets", "compare_outputs", "parity_failures"]

logger = logging.getLogger(__name__)


class ExportMismatchError(RuntimeError):
    """The exported model's outputs differ from PyTorch's beyond tolerance."""


def compare_outputs(
    module: nn.Module,
    model_path: str | Path,
    images: Sequence[torch.Tensor | tuple[torch.Tensor, ...]],
    atol: float = 1e-3,
    threads: int = 1,
    raise_on_fail: bool = True,
) -> dict[str, float]:
    """Run the eager export wrapper and the exported model on each (B, 3, H, W) input; report the differences.

    An input may be a tuple of tensors, one per graph input (``images``, ``references``) of a two-input graph.

    ``model_path`` is an ``.onnx`` file (ONNX Runtime, CPU) or an OpenVINO ``.xml``. Returns
    ``max_abs_diff_<output>`` and ``mismatch_<output>``: for ``dets``, the detections without a partner (see
    :func:`compare_dets`); for other outputs, the inputs whose output shapes differ. Both count as a failure.
    """
    run = _runner(Path(model_path), threads)
    worst: dict[str, float] = {}
    mismatch: dict[str, int] = {}
    module.eval()
    for img in images:
        args = tuple(img) if isinstance(img, tuple | list) else (img,)
        with torch.no_grad():
            ref = module(*args)
        ref_t = list(ref) if isinstance(ref, tuple) else [ref]
        got = run(*(a.numpy().astype(np.float32) for a in args))
        for (name, g), r in zip(got.items(), ref_t):
            r = r.detach().cpu().numpy()
            worst.setdefault(name, 0.0)
            mismatch.setdefault(name, 0)
            if name == "dets":
                diff, unmatched = compare_dets(r, g)
            elif r.shape != g.shape:
                diff, unmatched = 0.0, 1
            else:
                diff, unmatched = float(np.abs(r.astype(np.float64) - g).max(initial=0.0)), 0
            worst[name] = max(worst[name], diff)
            mismatch[name] += unmatched
    report: dict[str, float] = {f"max_abs_diff_{k}": v for k, v in worst.items()}
    report |= {f"mismatch_{k}": float(v) for k, v in mismatch.items()}
    bad = parity_failures(report, atol)
    if bad and raise_on_fail:
        raise ExportMismatchError(f"{model_path}: runtime output differs from PyTorch beyond atol={atol}: {bad}")
    return report


def parity_failures(report: dict[str, float], atol: float) -> dict[str, float]:
    """The entries of a :func:`compare_outputs` report that fail: differences above ``atol``, any mismatch."""
    return {k: v for k, v in report.items() if (k.startswith("max_abs") and v > atol) or (k.startswith("mis") and v)}


def compare_dets(ref: np.ndarray, got: np.ndarray, iou_thr: float = 0.9, tie_tol: float = 1e-4) -> tuple[float, int]:
    """Compare two ``dets`` outputs ``(N, 7) [batch, x1, y1, x2, y2, score, class]`` as sets of detections.

    Rows are matched greedily by score within (batch, class) at IoU >= ``iou_thr``; the difference is the largest
    abs difference of matched rows. A row without a partner is a mismatch, unless its score ties (within
    ``tie_tol``) the lowest score its side kept: which of several equal-score boxes survives a top-k cut is an
    implementation choice, not an export error.

    Returns:
        (max abs difference of matched rows, number of unmatched rows of both sides)
    """
    ref, got = np.asarray(ref, np.float64).reshape(-1, 7), np.asarray(got, np.float64).reshape(-1, 7)
    used = np.zeros(len(got), bool)
    worst, unmatched_ref = 0.0, []
    for i in np.argsort(-ref[:, 5], kind="stable"):
        r = ref[i]
        cand = np.nonzero(~used & (got[:, 0] == r[0]) & (got[:, 6] == r[6]))[0]
        if cand.size:
            ious = _iou(r[1:5], got[cand, 1:5])
            best = int(np.argmax(ious))
            if ious[best] >= iou_thr:
                used[cand[best]] = True
                worst = max(worst, float(np.abs(r - got[cand[best]]).max()))
                continue
        unmatched_ref.append(r[5])
    unmatched = [s for s in unmatched_ref if ref.size and s > ref[:, 5].min() + tie_tol]
    unmatched += [s for s in got[~used, 5] if s > got[:, 5].min() + tie_tol]
    return worst, len(unmatched)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return inter / np.maximum(area, 1e-12)


def _runner(path: Path, threads: int):
    """A function ``batch -> {output name: array}`` for an ONNX or OpenVINO file."""
    if path.suffix == ".xml":
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        names = [o.get_any_name() for o in compiled.outputs]
        return lambda *xs: {n: np.asarray(v) for n, v in zip(names, compiled(list(xs)).values())}
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    inputs = [i.name for i in sess.get_inputs()]
    return lambda *xs: dict(zip(names, sess.run(None, dict(zip(inputs, xs)))))
