"""Run an exported kdinspect model with ONNX Runtime (or an OpenVINO IR): image in, results in image pixels out.

Only numpy, OpenCV and onnxruntime are imported here (never torch or training code), so an edge box needs just
``pip install onnxruntime opencv-python-headless numpy``. The model's task, classes, input size and NMS mode come from
the ONNX ``metadata_props`` written by ``kdinspect export`` (docs/dev/contracts.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kdinspect.deploy.align import ALIGN_METHODS, align_reference
from kdinspect.deploy.postprocess import DetectionResult, SegmentationResult, host_nms, split_dets, to_input_tensor

__all__ = ["GPU_PROVIDERS", "ModelInfo", "OrtModel", "Result", "default_providers"]

logger = logging.getLogger(__name__)

Result = DetectionResult | SegmentationResult
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
DEFAULT_MASK_THR = 0.5  # segmentation, when the model stores no threshold of its own
DEFAULT_SCORE_THR = 0.25  # shown/returned detections; the graph keeps more (its own threshold is for mAP)


@dataclass
class ModelInfo:
    """What the runtime needs to know about an exported model (from its metadata)."""

    task: str
    classes: list[str]
    input_size: tuple[int, int]
    model: str = ""
    version: str = ""
    nms: str = "graph"
    score_thr: float = 0.25
    iou_thr: float = 0.5
    mask_thr: float | None = None  # segmentation: the threshold chosen on validation (ODS), stored at export
    dynamic_batch: bool = False
    precision: str = "fp32"
    reference: bool = False
    align: str = "none"
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _parse_metadata(
    meta: dict[str, str], input_shape: Sequence[Any], source: str, input_names: Sequence[str] = ("images",)
) -> ModelInfo:
    """ModelInfo from ``kdinspect.*`` metadata, the ``images`` input shape and the graph's input names (a
    reference-aware detector has a second input ``references``)."""
    missing = [k for k in ("kdinspect.task", "kdinspect.input_size") if k not in meta]
    if missing:
        raise ValueError(
            f"{source}: not a kdinspect export, metadata lacks {missing} "
            f"(found keys {sorted(meta)}); export it with 'kdinspect export'"
        )
    task = meta["kdinspect.task"]
    if task not in ("detection", "segmentation"):
        raise ValueError(f"{source}: kdinspect.task {task!r} not in ['detection', 'segmentation']")
    h, w = json.loads(meta["kdinspect.input_size"])
    known = {"task", "classes", "input_size", "model", "version", "nms", "score_thr", "iou_thr", "mask_thr"}
    known |= {"precision", "align"}
    align = meta.get("kdinspect.align", "none")
    if align not in ALIGN_METHODS:
        raise ValueError(f"{source}: kdinspect.align {align!r} not in {list(ALIGN_METHODS)}")
    return ModelInfo(
        task=task,
        classes=list(json.loads(meta.get("kdinspect.classes", "[]"))),
        input_size=(int(h), int(w)),
        model=meta.get("kdinspect.model", ""),
        version=meta.get("kdinspect.version", ""),
        nms=meta.get("kdinspect.nms", "graph"),
        score_thr=float(meta.get("kdinspect.score_thr", 0.25)),
        iou_thr=float(meta.get("kdinspect.iou_thr", 0.5)),
        mask_thr=float(meta["kdinspect.mask_thr"]) if "kdinspect.mask_thr" in meta else None,
        dynamic_batch=not isinstance(input_shape[0], int),
        precision=meta.get("kdinspect.precision", "fp32"),
        reference="references" in input_names,
        align=align,
        extra={k: v for k, v in meta.items() if k.removeprefix("kdinspect.") not in known},
    )


def stored_or_default(mask_thr: float | None) -> float:
    """A segmenter's threshold: the one stored with the model, else :data:`DEFAULT_MASK_THR`."""
    return DEFAULT_MASK_THR if mask_thr is None else float(mask_thr)


def default_providers() -> list[str]:
    """TensorRT and CUDA execution providers when this onnxruntime build has them, then the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in GPU_PROVIDERS if p in available] + ["CPUExecutionProvider"]


class _OrtBackend:
    def __init__(self, path: Path, threads: int | None, providers: Sequence[str] | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("the runtime needs onnxruntime: pip install 'kdinspect[serve]'") from err
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provs: list[Any] = list(providers or default_providers())
        if "TensorrtExecutionProvider" in provs:
            cache = str(path.parent / "trt_cache")
            provs[provs.index("TensorrtExecutionProvider")] = (
                "TensorrtExecutionProvider",
                {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache},
            )
        self.session = ort.InferenceSession(str(path), opts, providers=provs)
        self.providers = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self.input_shape = list(inp.shape)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, batch: np.ndarray, references: np.ndarray | None = None) -> dict[str, np.ndarray]:
        feed = {"images": batch} if references is None else {"images": batch, "references": references}
        return dict(zip(self.output_names, self.session.run(None, feed)))


class _OpenVINOBackend:
    """OpenVINO IR (``.xml`` + ``.bin``); its kdinspect metadata sits in ``<name>.meta.json`` beside it."""

    def __init__(self, path: Path, threads: int | None, precision: str = "f32") -> None:
        try:
            import openvino as ov
        except ImportError as err:
            raise ImportError(f"{path}: OpenVINO IR needs openvino: pip install 'kdinspect[openvino]'") from err
        core = ov.Core()
        # OpenVINO's CPU plugin computes in bf16 by default on CPUs with bf16 units: exact f32 unless asked
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        model = core.read_model(str(path))
        self.compiled = core.compile_model(model, "CPU", config)
        self.providers = [f"OpenVINO CPU ({precision})"]
        self.input_shape = [d.get_length() if d.is_static else "batch" for d in model.inputs[0].get_partial_shape()]
        self.input_names = [i.get_any_name() for i in model.inputs]
        self.output_names = [o.get_any_name() for o in model.outputs]
        meta_path = path.with_suffix(".meta.json")
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: metadata of the OpenVINO model is missing (written by export)")
        self.metadata = json.loads(meta_path.read_text())
        self.request = self.compiled.create_infer_request()

    def run(self, batch: np.ndarray, references: np.ndarray | None = None) -> dict[str, np.ndarray]:
        res = self.request.infer({0: batch} if references is None else {0: batch, 1: references})
        return {name: np.asarray(res[out]) for name, out in zip(self.output_names, self.compiled.outputs)}


class OrtModel:
    """An exported model ready to predict on RGB images.

    Args:
        path: ``.onnx`` file (or an OpenVINO ``.xml`` written by ``kdinspect export --openvino``).
        threads: intra-op threads (None = the runtime's default, one per core).
        providers: ONNX Runtime execution providers (default: TensorRT, CUDA when present, then CPU).
        score_thr: detection score threshold (default: 0.25, or the graph's own threshold when higher; 0 keeps
            everything the graph returns, as the metric check does).
        mask_thr: segmentation threshold for masks and summaries (default: the threshold stored with the model,
            chosen on its validation data at training time (``info.mask_thr``), else 0.5).
        max_det: most detections kept per image with host NMS.
        ov_precision: OpenVINO IR only: ``f32`` (default, matches the export) or ``bf16`` (faster on CPUs with
            bf16 units, less exact; OpenVINO's own default there).
        align: reference-aware models only: registration of each reference onto its image before the graph
            (``none``/``ecc``/``orb``, see :mod:`kdinspect.deploy.align`); None = the model's ``kdinspect.align``
            metadata (what the training data used).

    A reference-aware model (``info.reference``: inputs ``images`` and ``references``) needs one reference image
    per input image: ``predict(image, reference)``; a single-image model rejects a reference.

    Example:
        >>> model = OrtModel("best.onnx", threads=2)
        >>> result = model.predict(rgb_image)          # DetectionResult or SegmentationResult
        >>> result.to_json()
    """

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        score_thr: float | None = None,
        mask_thr: float | None = None,
        max_det: int = 300,
        ov_precision: str = "f32",
        align: str | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: model file not found")
        if self.path.suffix == ".xml":
            self.backend: _OrtBackend | _OpenVINOBackend = _OpenVINOBackend(self.path, threads, ov_precision)
        elif self.path.suffix == ".onnx":
            self.backend = _OrtBackend(self.path, threads, providers)
        else:
            raise ValueError(f"{self.path}: unsupported model file; valid: .onnx, .xml (OpenVINO IR)")
        self.info = _parse_metadata(
            self.backend.metadata, self.backend.input_shape, str(self.path), self.backend.input_names
        )
        if align is not None and align not in ALIGN_METHODS:
            raise ValueError(f"align {align!r} not in {list(ALIGN_METHODS)}")
        self.align = self.info.align if align is None else align
        self.score_thr = max(DEFAULT_SCORE_THR, self.info.score_thr) if score_thr is None else score_thr
        self.mask_thr = mask_thr if mask_thr is not None else stored_or_default(self.info.mask_thr)
        self.max_det = max_det
        self.last_timing: dict[str, float] = {}
        logger.info(
            "loaded %s (%s, input %s, providers %s)",
            self.path,
            self.info.task,
            self.info.input_size,
            self.backend.providers,
        )

    @property
    def providers(self) -> list[str]:
        return list(self.backend.providers)

    def run(self, batch: np.ndarray, references: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Raw graph outputs for a float32 (B, 3, H, W) batch in [0, 1] (and its references, same shape)."""
        if self.info.reference != (references is not None):
            raise ValueError(self._reference_error())
        refs = None if references is None else np.ascontiguousarray(references, np.float32)
        return self.backend.run(np.ascontiguousarray(batch, np.float32), refs)

    def _reference_error(self) -> str:
        if self.info.reference:
            return f"{self.path}: this model compares each image with a reference image: pass reference(s)"
        return f"{self.path}: this model takes the test image only; a reference image was given"

    def predict(self, image: np.ndarray, reference: np.ndarray | None = None) -> Result:
        """Predict one (H, W, 3) uint8 RGB image (with its (h, w, 3) uint8 RGB reference for a reference-aware
        model; resized to the image and registered with ``align``)."""
        return self.predict_batch([image], None if reference is None else [reference])[0]

    def predict_batch(
        self, images: Sequence[np.ndarray], references: Sequence[np.ndarray] | None = None
    ) -> list[Result]:
        """Predict a list of (H, W, 3) uint8 RGB images (one graph call when the batch axis is dynamic)."""
        if not images:
            return []
        if self.info.reference != (references is not None):
            raise ValueError(self._reference_error())
        if references is not None and len(references) != len(images):
            raise ValueError(f"{len(images)} images but {len(references)} references")
        if not self.info.dynamic_batch and len(images) > 1:
            refs = references or [None] * len(images)
            return [
                r for img, ref in zip(images, refs) for r in self.predict_batch([img], None if ref is None else [ref])
            ]
        t0 = time.perf_counter()
        batch = to_input_tensor(images, self.info.input_size)
        ref_batch = None
        if references is not None:
            aligned = [align_reference(img, ref, self.align) for img, ref in zip(images, references)]
            ref_batch = to_input_tensor(aligned, self.info.input_size)
        t1 = time.perf_counter()
        outputs = self.run(batch, ref_batch)
        t2 = time.perf_counter()
        sizes = [img.shape[:2] for img in images]
        results = self._postprocess(outputs, sizes)
        self.last_timing = {
            "preprocess_ms": (t1 - t0) * 1e3,
            "inference_ms": (t2 - t1) * 1e3,
            "postprocess_ms": (time.perf_counter() - t2) * 1e3,
        }
        return results

    def _postprocess(self, outputs: dict[str, np.ndarray], sizes: Sequence[tuple[int, int]]) -> list[Result]:
        info = self.info
        if info.task == "segmentation":
            import cv2

            probs = outputs["prob"][:, 0]
            return [
                SegmentationResult(
                    cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) if p.shape != (h, w) else p, self.mask_thr
                )
                for p, (h, w) in zip(probs, sizes)
            ]
        if "dets" in outputs:
            return list[Result](
                split_dets(outputs["dets"], len(sizes), self.score_thr, info.input_size, sizes, info.classes)
            )
        if "boxes" not in outputs or "scores" not in outputs:
            raise ValueError(
                f"{self.path}: detection model outputs {sorted(outputs)}; expected 'dets' or 'boxes' and 'scores'"
            )
        results: list[Result] = []
        for b, size in enumerate(sizes):
            boxes, scores, labels = host_nms(
                outputs["boxes"][b], outputs["scores"][b], self.score_thr, info.iou_thr, self.max_det
            )
            results += split_dets(
                np.concatenate(
                    [np.zeros((len(boxes), 1), np.float32), boxes, scores[:, None], labels[:, None].astype(np.float32)],
                    axis=1,
                ),
                1,
                self.score_thr,
                info.input_size,
                [size],
                info.classes,
            )
        return results
