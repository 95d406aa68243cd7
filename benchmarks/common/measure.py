"""The one latency timer and the one FLOPs / parameter count of the benchmarks.

Latency (:func:`ort_latency`, and :func:`time_calls` for anything else that is timed per call): ``WARMUP_RUNS``
untimed calls, then ``TIMED_RUNS`` timed ones (``time.perf_counter`` around each call); the result holds the median,
p90, p99 and mean in ms, the run and warm-up counts, and for ONNX Runtime the thread count and what the input was.
ONNX Runtime: ``CPUExecutionProvider``, ``intra_op_num_threads`` = ``threads``, ``inter_op_num_threads`` = 1,
sequential execution, all graph optimisations.

Input, everywhere: real test images (``LATENCY_IMAGES`` of them, cycled), decoded as RGB and preprocessed by the
deployed model's own preprocessing, :func:`kdinspect.deploy.postprocess.to_input_tensor` (plain resize to the graph's
input size, float32 in [0, 1]; what ``kdinspect predict`` and the runtime feed the ONNX graph), so that in-graph NMS
sees realistic candidate counts. Decoding and resizing are not timed. :func:`image_inputs` builds them.

FLOPs (:func:`count_flops`): torch's ``FlopCounterMode`` (2 FLOPs per multiply-add) over one batch-1 forward of the
module in eval mode under ``torch.no_grad()``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "INPUT_KIND",
    "LATENCY_IMAGES",
    "TIMED_RUNS",
    "WARMUP_RUNS",
    "count_flops",
    "count_params",
    "image_inputs",
    "latency_method",
    "ort_latency",
    "ort_session",
    "stats_ms",
    "time_calls",
]

WARMUP_RUNS = 10  # untimed calls before the timed ones
TIMED_RUNS = 50  # timed calls (the default of every benchmark's --runs option)
LATENCY_IMAGES = 8  # real test images the timed calls cycle through
INPUT_KIND = (
    "real test images (RGB), preprocessed by kdinspect.deploy.postprocess.to_input_tensor (resize to the input size, "
    "float32 in [0, 1]), cycled"
)


def stats_ms(times_s: Sequence[float]) -> dict[str, Any]:
    """Median / p90 / p99 / mean (ms, 3 decimals) and the count of ``times_s`` (seconds)."""
    if not times_s:
        raise ValueError("no timings to summarise (0 timed runs)")
    ms = sorted(t * 1e3 for t in times_s)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 3),
        "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "runs": len(ms),
    }


def time_calls(
    fn: Callable[[Any], Any], inputs: Sequence[Any], warmup: int = WARMUP_RUNS, runs: int = TIMED_RUNS
) -> dict[str, Any]:
    """``warmup`` untimed then ``runs`` timed calls ``fn(inputs[i % len(inputs)])``: :func:`stats_ms` + ``warmup``."""
    if not inputs:
        raise ValueError("time_calls needs at least one input")
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    times = []
    for i in range(runs):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return stats_ms(times) | {"warmup": warmup}


def ort_session(path: str | Path, threads: int) -> Any:
    """ONNX Runtime CPU session: ``threads`` intra-op threads, 1 inter-op, sequential, all graph optimisations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_latency(
    path: str | Path, inputs: Sequence[np.ndarray], threads: int, runs: int = TIMED_RUNS, warmup: int = WARMUP_RUNS
) -> dict[str, Any]:
    """Batch latency of the ONNX graph ``path`` on ``inputs`` (cycled; :func:`image_inputs`) with ``threads``
    intra-op threads: median_ms, p90_ms, p99_ms, mean_ms, runs, warmup, threads, inputs, input."""
    sess = ort_session(path, threads)
    name = sess.get_inputs()[0].name
    out = time_calls(lambda x: sess.run(None, {name: x}), inputs, warmup, runs)
    return out | {"threads": threads, "inputs": len(inputs), "input": INPUT_KIND}


def image_inputs(images: Sequence[str | Path | np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Each image (a path, or an RGB uint8 array) as a (1, 3, H, W) float32 input at ``size`` = (H, W)."""
    import cv2

    from kdinspect.deploy.postprocess import to_input_tensor

    out = []
    for img in images:
        if not isinstance(img, np.ndarray):
            bgr = cv2.imread(str(img))
            if bgr is None:
                raise FileNotFoundError(f"{img}: not a readable image (latency inputs are real test images)")
            img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out.append(to_input_tensor([img], size))
    if not out:
        raise ValueError("no latency input images given")
    return out


def count_params(model: Any) -> int:
    """All parameters of ``model`` (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(module: Any, size: int | tuple[int, int]) -> float:
    """GFLOPs (2 per multiply-add) of one (1, 3, H, W) forward of ``module`` in eval mode under ``torch.no_grad()``
    (the module's train/eval mode is restored afterwards)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    h, w = (size, size) if isinstance(size, int) else size
    was_training = module.training
    module.eval()
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(x)
    finally:
        module.train(was_training)
    return counter.get_total_flops() / 1e9


def latency_method(runs: int = TIMED_RUNS, threads: Sequence[int] = (1, 2), images: int = LATENCY_IMAGES) -> str:
    """One line for a results file: how its latencies were timed (``images``: at most that many inputs)."""
    return (
        f"Latency: median of {runs} timed runs after {WARMUP_RUNS} warm-up runs (benchmarks.common.measure), batch 1, "
        f"inputs: up to {images} {INPUT_KIND}; ONNX Runtime CPU provider with {' or '.join(map(str, threads))} "
        "intra-op thread(s), 1 inter-op thread."
    )
