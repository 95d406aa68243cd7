"""INT8 static quantization with ONNX Runtime, calibrated on real images, and an honest FP32-vs-INT8 timing."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["QUANT_FORMATS", "quantize_onnx", "time_model"]

logger = logging.getLogger(__name__)

QUANT_FORMATS = ("qdq", "qoperator")
# Quantizing only the compute-heavy ops keeps element-wise activations and the in-graph decode/NMS in float.
DEFAULT_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def feed(batch: np.ndarray | tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """The ONNX feed of one input: ``images``, or ``images`` + ``references`` for a two-input (reference-aware)
    graph given as an ``(image, reference)`` tuple."""
    if isinstance(batch, tuple):
        return {k: np.ascontiguousarray(v, np.float32) for k, v in zip(("images", "references"), batch, strict=True)}
    return {"images": np.ascontiguousarray(batch, np.float32)}


class _Calibration:
    """onnxruntime ``CalibrationDataReader`` over pre-processed (1, 3, H, W) float32 batches (or
    ``(image, reference)`` tuples of them for two-input graphs)."""

    def __init__(self, batches: Sequence[np.ndarray | tuple[np.ndarray, ...]]) -> None:
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else feed(batch)


def quantize_onnx(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[np.ndarray | tuple[np.ndarray, ...]],
    fmt: str = "qdq",
    per_channel: bool = True,
    op_types: Sequence[str] | None = DEFAULT_OPS,
    method: str = "minmax",
) -> Path:
    """Write an INT8 model (u8 activations, s8 weights) calibrated on ``calibration``.

    Args:
        fp32_path: exported FP32 model.
        out_path: INT8 model to write.
        calibration: (1, 3, H, W) float32 inputs in [0, 1] (real images, pre-processed like the runtime does);
            ``(image, reference)`` tuples for a reference-aware graph (the reference registered as at runtime).
        fmt: ``qdq`` (QuantizeLinear/DequantizeLinear pairs, fused by the runtime) or ``qoperator`` (QLinearConv...).
        per_channel: per-output-channel weight scales.
        op_types: op types to quantize (None = every op ONNX Runtime can quantize).
        method: calibration method: ``minmax``, ``entropy`` or ``percentile``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if fmt not in QUANT_FORMATS:
        raise ValueError(f"quantization format {fmt!r} not in {list(QUANT_FORMATS)}")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ValueError(f"calibration method {method!r} not in {list(methods)}")
    if not calibration:
        raise ValueError("INT8 calibration needs at least one image")
    out_path = Path(out_path)
    pre = out_path.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        src = pre
    except Exception as err:
        logger.warning("quant_pre_process failed (%s); quantizing the unprocessed graph", err)
        src = Path(fp32_path)
    try:
        quantize_static(
            str(src),
            str(out_path),
            _Calibration(calibration),
            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(op_types) if op_types else None,
            calibrate_method=methods[method],
        )
    finally:
        pre.unlink(missing_ok=True)
    _copy_metadata(Path(fp32_path), out_path, {"kdinspect.precision": f"int8-{fmt}"})
    logger.info(
        "INT8 (%s, per_channel=%s) written to %s from %d calibration images",
        fmt,
        per_channel,
        out_path,
        len(calibration),
    )
    return out_path


def _copy_metadata(src: Path, dst: Path, extra: dict[str, str]) -> None:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props} | extra
    proto = onnx.load(str(dst))
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(dst))


def time_model(
    path: str | Path, batch: np.ndarray | tuple[np.ndarray, ...], threads: int, warmup: int = 5, runs: int = 30
) -> dict[str, Any]:
    """Median / p90 latency in ms of one ONNX Runtime session (CPU provider) on ``batch``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inputs = feed(batch)
    for _ in range(warmup):
        sess.run(None, inputs)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, inputs)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "runs": runs,
        "threads": threads,
        "batch": int((batch[0] if isinstance(batch, tuple) else batch).shape[0]),
    }
