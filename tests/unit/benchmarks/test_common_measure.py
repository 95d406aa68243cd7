"""benchmarks.common.measure: the one latency timer (warm-up and run counts honoured, inputs cycled, result keys) and
the one FLOPs count (no_grad, eval mode, mode restored)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from benchmarks.common import measure


def test_time_calls_honours_warmup_and_run_counts_and_cycles_the_inputs() -> None:
    seen: list[int] = []
    out = measure.time_calls(seen.append, [0, 1, 2], warmup=4, runs=7)
    warm, timed = seen[:4], seen[4:]
    assert warm == [0, 1, 2, 0] and timed == [0, 1, 2, 0, 1, 2, 0]  # 4 untimed, then 7 timed, each from input 0
    assert out["runs"] == 7 and out["warmup"] == 4
    assert set(out) == {"median_ms", "p90_ms", "p99_ms", "mean_ms", "runs", "warmup"}
    assert 0 <= out["median_ms"] <= out["p90_ms"] <= out["p99_ms"]


def test_defaults_are_the_named_constants() -> None:
    calls: list[None] = []
    out = measure.time_calls(calls.append, [None])
    assert len(calls) == measure.WARMUP_RUNS + measure.TIMED_RUNS and out["runs"] == measure.TIMED_RUNS


def test_timer_refuses_empty_inputs_and_zero_runs() -> None:
    with pytest.raises(ValueError, match="at least one input"):
        measure.time_calls(print, [])
    with pytest.raises(ValueError, match="runs >= 1"):
        measure.time_calls(print, [1], runs=0)


def _relu_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["images"], ["out"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_ort_latency_result_keys_and_real_image_inputs(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    img = np.full((20, 30, 3), 255, np.uint8)
    img[:, :15] = 0
    cv2.imwrite(str(tmp_path / "a.png"), img)
    inputs = measure.image_inputs([tmp_path / "a.png", img[..., ::-1].copy()], (8, 8))
    assert [x.shape for x in inputs] == [(1, 3, 8, 8)] * 2 and inputs[0].dtype == np.float32
    assert inputs[0].min() == 0.0 and inputs[0].max() == 1.0
    out = measure.ort_latency(_relu_onnx(tmp_path / "relu.onnx"), inputs, threads=1, runs=5, warmup=2)
    assert out["runs"] == 5 and out["warmup"] == 2 and out["threads"] == 1 and out["inputs"] == 2
    assert {"median_ms", "p90_ms", "p99_ms", "mean_ms"} <= set(out) and out["input"] == measure.INPUT_KIND
    assert f"{measure.WARMUP_RUNS} warm-up" in measure.latency_method()


def test_image_inputs_names_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(FileNotFoundError, match="bad.jpg"):
        measure.image_inputs([tmp_path / "bad.jpg"], (8, 8))


def test_count_flops_no_grad_eval_mode_restored() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8))
    net.train()
    before = net[1].running_mean.clone()
    gflops = measure.count_flops(net, (16, 12))
    assert gflops == pytest.approx(2 * 8 * 16 * 12 * 3 * 3 * 3 / 1e9)  # the convolution's multiply-adds x 2
    assert net.training  # mode restored
    assert torch.equal(net[1].running_mean, before)  # counted in eval mode: BatchNorm statistics untouched
    assert measure.count_params(net) == 8 * 27 + 16
