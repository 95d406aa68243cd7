"""Export a trained model to ONNX following the kdinspect ONNX contract (see docs/dev/contracts.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdinspect import __version__

__all__ = ["export_onnx", "inference_module"]

logger = logging.getLogger(__name__)


def inference_module(model: nn.Module, kind: str, nms: bool = True) -> nn.Module:
    """The model's export wrapper: ``images (B,3,H,W) RGB [0,1] -> NamedTuple`` of named outputs."""
    if not hasattr(model, "inference_module"):
        raise TypeError(f"{type(model).__name__} has no inference_module(); it cannot be exported")
    build = model.inference_module
    module = build(nms=nms) if kind == "detection" else build()  # type: ignore[operator]
    return module.eval()


# Attribute names under which detectors keep their in-graph thresholds (ours, GFL, torchvision RoIHeads).
_THRESHOLDS = {"score_thr": ("score_thr", "score_thresh"), "iou_thr": ("iou_thr", "nms_iou", "nms_thresh")}


def _nms_metadata(*modules: nn.Module) -> dict[str, str]:
    """``kdinspect.score_thr`` / ``kdinspect.iou_thr`` of the graph: the first matching attribute found on the
    modules or their ``roi_heads`` (two-stage detectors; not the RPN's proposal thresholds)."""
    holders = [h for m in modules for h in (m, getattr(m, "roi_heads", None)) if isinstance(h, nn.Module)]
    out = {}
    for key, names in _THRESHOLDS.items():
        for m in holders:
            hit = next((getattr(m, n) for n in names if hasattr(m, n)), None)
            if isinstance(hit, int | float):
                out[f"kdinspect.{key}"] = str(float(hit))
                break
    return out


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int],
    kind: str,
    classes: list[str],
    model_name: str = "",
    opset: int = 17,
    dynamic: bool = False,
    nms: bool = True,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``path`` (.onnx) with input ``images`` and the wrapper's NamedTuple fields as output names.

    A wrapper with ``input_names`` (the reference-aware detectors: ``("images", "references")``) gets one input per
    name, each float32 ``(B, 3, H, W)`` RGB in [0, 1].

    Args:
        model: trained model (eval mode is set here).
        path: output file.
        input_size: (H, W) the graph is traced at (fixed unless ``dynamic``).
        kind: ``detection`` or ``segmentation``.
        classes: class names, stored in the metadata.
        model_name: config model name, stored in the metadata.
        opset: ONNX opset.
        dynamic: dynamic batch axis.
        nms: detection only: NMS inside the graph (output ``dets``) or on the host (``boxes``/``scores``).
        extra_metadata: more ``metadata_props`` entries.

    Raises:
        ValueError: ``dynamic`` for a model whose graph is traced per image (``supports_dynamic_batch = False``:
            the two-stage Faster R-CNN).
    """
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX export needs the export extra: pip install 'kdinspect[export]'") from err
    if dynamic and not getattr(model, "supports_dynamic_batch", True):
        raise ValueError(
            f"{type(model).__name__} exports at a static batch of 1 only (its per-image RPN/RoI loops are traced at "
            "the export batch; a dynamic-batch graph would fail at batch > 1): export without --dynamic; the runtime "
            "runs a batch image by image"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = inference_module(model.eval(), kind, nms)
    input_names = list(getattr(module, "input_names", ("images",)))
    dummies = tuple(torch.rand(1, 3, *input_size) for _ in input_names)
    with torch.no_grad():
        out = module(*dummies)
    names = list(getattr(out, "_fields", ())) or ["output"]
    dynamic_axes = {n: {0: "batch"} for n in [*input_names, *names]} if dynamic else None
    if dynamic and kind == "detection" and nms:
        dynamic_axes = {n: {0: "batch"} for n in input_names}
    tmp = path.with_suffix(".onnx.tmp")
    try:
        torch.onnx.export(
            module,
            dummies,
            str(tmp),
            input_names=input_names,
            output_names=names,
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        meta = {
            "kdinspect.task": kind,
            "kdinspect.classes": json.dumps(list(classes)),
            "kdinspect.input_size": json.dumps(list(input_size)),
            "kdinspect.model": model_name,
            "kdinspect.version": __version__,
            "kdinspect.nms": "graph" if nms else "host",
            "kdinspect.precision": "fp32",
        }
        if kind == "detection":
            meta |= _nms_metadata(module, model)
        meta |= {k: str(v) for k, v in (extra_metadata or {}).items()}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        tmp.replace(path)
    finally:
        if tmp.exists():  # a failed export leaves no half-written file
            tmp.unlink()
    logger.info("exported %s (%s, outputs %s, %.1f MB)", path, kind, names, path.stat().st_size / 1e6)
    return path
