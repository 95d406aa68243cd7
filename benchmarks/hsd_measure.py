"""Measurements shared by the HSD benchmark rows: parameters, FLOPs, ONNX Runtime latency, real test inputs.

What is timed (``ort_latency``): one ``InferenceSession.run`` on a (1, 3, S, S) float32 input with ONNX Runtime's
CPU provider, ``intra_op_num_threads`` = 1 or 2, ``inter_op_num_threads`` = 1, sequential execution, all graph
optimisations; inputs cycle through real test images (so NMS sees realistic candidate counts); ``warmup`` untimed
runs, then the median (and p90) of ``runs`` timed runs. Image decoding and resizing are not timed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["count_flops", "count_params", "ort_latency", "test_inputs"]


def count_params(model: nn.Module) -> int:
    """All parameters of ``model`` (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(module: nn.Module, imgsz: int) -> float:
    """FLOPs (2 per multiply-add, ``torch.utils.flop_counter``) of one forward at batch 1, in GFLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    module = module.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        module(torch.rand(1, 3, imgsz, imgsz))
    return counter.get_total_flops() / 1e9


def test_inputs(data_cfg: Any, n: int = 50) -> list[np.ndarray]:
    """Up to ``n`` evaluation-transformed test images, each (1, 3, S, S) float32 RGB in [0, 1]."""
    from kdinspect.data import build_dataset

    ds = build_dataset(data_cfg, "val", "detection", train=False)
    step = max(len(ds) // n, 1)
    out = []
    for i in range(0, len(ds), step):
        sample = ds[i]
        if sample:
            out.append(sample.image[None].numpy().astype(np.float32))
        if len(out) == n:
            break
    return out


def ort_latency(
    path: Path, inputs: list[np.ndarray], threads: int, warmup: int = 20, runs: int = 100
) -> dict[str, float]:
    """Median / p90 / mean latency in ms of ``path`` on ``inputs`` (cycled) with ``threads`` intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for i in range(warmup):
        sess.run(None, {name: inputs[i % len(inputs)]})
    times = []
    for i in range(runs):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "mean_ms": statistics.fmean(times),
        "runs": runs,
    }
