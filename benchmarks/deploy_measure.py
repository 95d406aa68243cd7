"""Measurement helpers of ``python -m benchmarks.deploy``: latency/throughput per backend (the shared timer of
:mod:`benchmarks.common.measure`), the CPU peak, end-to-end per-frame time on a video, the ZeroMQ stream over loopback,
the HTTP service under load, and YOLO11n's ONNX.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.common.measure import WARMUP_RUNS, ort_session, stats_ms, time_calls
from kdinspect.deploy.postprocess import DetectionResult, SegmentationResult, host_nms, to_input_tensor
from kdinspect.deploy.stream import encode_jpeg, render


def has_openvino() -> bool:
    """Whether the optional OpenVINO runtime is installed."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def input_size(loaded: Any, samples: Sequence[Any]) -> tuple[int, int]:
    """(H, W) a checkpoint is deployed at: a detector's ``imgsz``; a segmenter's ``eval_imgsz``, else the full size of
    its validation images (segmenters trained that way run at full resolution)."""
    d = loaded.cfg.data
    if loaded.kind == "detection":
        return (d.imgsz, d.imgsz)
    if d.eval_imgsz:
        return (d.eval_imgsz, d.eval_imgsz)
    return tuple(samples[0].meta.orig_size)


def make_runner(backend: str, target: Any, threads: int) -> Callable[[np.ndarray], Any]:
    """``batch (B, 3, H, W) float32 -> outputs`` for ``pytorch`` (an eager module), an ONNX file or an OpenVINO IR."""
    if backend == "pytorch":
        import torch

        torch.set_num_threads(threads)

        def run_torch(x: np.ndarray) -> Any:
            with torch.inference_mode():
                return target(torch.from_numpy(x))

        return run_torch
    if str(target).endswith(".xml"):
        import openvino as ov

        core = ov.Core()
        precision = "bf16" if backend.endswith("bf16") else "f32"
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision}
        compiled = core.compile_model(core.read_model(str(target)), "CPU", config)
        request = compiled.create_infer_request()
        return lambda x: request.infer({0: x})
    sess = ort_session(target, threads)
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})


def latency(
    backend: str, target: Any, threads: int, x1: Sequence[np.ndarray], x8: np.ndarray | None, runs: int
) -> dict[str, Any]:
    """Batch-1 latency on the inputs ``x1`` (cycled; :func:`benchmarks.common.measure.image_inputs`) with the shared
    timer, and batch-8 throughput (when ``x8`` is given and the target takes a batch axis, ``max(5, runs // 4)``
    timed runs)."""
    run = make_runner(backend, target, threads)
    out: dict[str, Any] = {"threads": threads, "batch1": time_calls(run, x1, WARMUP_RUNS, runs)}
    if x8 is not None:
        t = time_calls(run, [x8], WARMUP_RUNS, max(5, runs // 4))
        out["batch8"] = t | {"images_per_s": round(8000 / t["median_ms"], 2)}
    return out


def cpu_peak(threads: Sequence[int], n: int = 2048) -> dict[str, Any]:
    """Practical peak: FP32 GFLOP/s of a large matmul (torch, MKL/oneDNN); and the theoretical one from the CPU
    flags: cores x clock x FLOP/cycle, with 2 AVX-512 FMA pipes x 16 FP32 lanes x 2 = 64 FLOP/cycle/core when the
    CPU reports avx512f (the count of a full-width AVX-512 core; double-pumped designs reach half of it)."""
    import torch

    flags = Path("/proc/cpuinfo").read_text()
    mhz = [float(line.split(":")[1]) for line in flags.splitlines() if line.startswith("cpu MHz")]
    per_cycle = 64 if "avx512f" in flags else (32 if "fma" in flags else 8)
    a, b = torch.rand(n, n), torch.rand(n, n)
    out: dict[str, Any] = {
        "method": f"torch.mm {n}x{n} float32, median of 10",
        "flop_per_cycle_per_core": per_cycle,
        "clock_mhz": mhz[0] if mhz else None,
    }
    for t in threads:
        torch.set_num_threads(t)
        med = time_calls(lambda _: torch.mm(a, b), [None], warmup=3, runs=10)["median_ms"] / 1e3
        out[f"measured_gflops_{t}t"] = round(2 * n**3 / med / 1e9, 1)
        if mhz:
            out[f"theoretical_gflops_{t}t"] = round(t * mhz[0] * 1e6 * per_cycle / 1e9, 1)
    return out


def make_video(images: Sequence[Path], out: Path, size: tuple[int, int] | None = None, fps: float = 10.0) -> Path:
    """Write the images (resized to the first one's size) as an mp4v video."""
    first = cv2.imread(str(images[0]))
    h, w = size or first.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for p in images:
        img = cv2.imread(str(p))
        writer.write(img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h)))
    writer.release()
    return out


def video_frames(video: Path, n: int) -> list[np.ndarray]:
    """The first ``n`` frames of ``video`` (made from test images by :func:`make_video`) as RGB arrays."""
    cap, out = cv2.VideoCapture(str(video)), []
    while len(out) < n and (frame := cap.read())[0]:
        out.append(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
    cap.release()
    if not out:
        raise ValueError(f"{video}: no frames to take latency inputs from")
    return out


def e2e_per_frame(video: Path, predict_draw: Callable[[np.ndarray], Any], warmup: int = 5) -> dict[str, Any]:
    """Per-frame time of decode (OpenCV) + ``predict_draw(rgb)`` (pre-processing, inference, NMS, drawing)."""
    cap = cv2.VideoCapture(str(video))
    times = []
    i = 0
    while True:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        predict_draw(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        i += 1
    cap.release()
    if not times:
        raise ValueError(f"{video}: {i} frames read, none left to time after {warmup} warm-up frames (longer video?)")
    s = stats_ms(times)
    return s | {"fps": round(1000 / s["median_ms"], 1)}


class YoloOnnx:
    """YOLO11n's raw ONNX head ``(1, 4 + nc, A)`` run with the same host steps as ours: plain resize, ONNX Runtime,
    class-wise NMS (OpenCV), boxes mapped back to the image."""

    def __init__(
        self, path: Path, imgsz: int, classes: list[str], threads: int, score_thr: float = 0.25, iou_thr: float = 0.5
    ) -> None:
        self.sess = ort_session(path, threads)
        self.imgsz, self.classes, self.score_thr, self.iou_thr = imgsz, classes, score_thr, iou_thr

    def predict(self, rgb: np.ndarray) -> DetectionResult:
        x = to_input_tensor([rgb], (self.imgsz, self.imgsz))
        out = self.sess.run(None, {self.sess.get_inputs()[0].name: x})[0][0].T  # (A, 4 + nc)
        xyxy = np.concatenate([out[:, :2] - out[:, 2:4] / 2, out[:, :2] + out[:, 2:4] / 2], 1)
        boxes, scores, labels = host_nms(xyxy, out[:, 4:], self.score_thr, self.iou_thr)
        h, w = rgb.shape[:2]
        boxes = boxes * np.array([w, h, w, h], np.float32) / self.imgsz
        return DetectionResult(boxes, scores, labels, self.classes, (h, w))


class YoloSegOnnx:
    """YOLO11n-seg's raw ONNX outputs (``(1, 4 + nc + 32, A)`` and prototypes ``(1, 32, H/4, W/4)``) run with the
    same host steps as our segmenter: plain resize, ONNX Runtime, then NMS (OpenCV), instance masks (coefficients x
    prototypes, sigmoid, cropped to their boxes) merged into one defect-probability map resized to the image, so
    that the same overlay and JPEG follow."""

    def __init__(
        self, path: Path, size: tuple[int, int], nc: int, threads: int, score_thr: float = 0.25, iou_thr: float = 0.5
    ) -> None:
        self.sess = ort_session(path, threads)
        self.size, self.nc, self.score_thr, self.iou_thr = size, nc, score_thr, iou_thr
        self.instances: list[int] = []  # instances kept per frame (random-init weights: the count is reported)

    def predict(self, rgb: np.ndarray) -> SegmentationResult:
        h, w = self.size
        pred, proto = self.sess.run(None, {self.sess.get_inputs()[0].name: to_input_tensor([rgb], self.size)})
        pred, proto = pred[0].T, proto[0]  # (A, 4 + nc + 32), (32, h/4, w/4)
        scores = pred[:, 4 : 4 + self.nc].max(1)
        cand, cand_scores = pred[scores >= self.score_thr], scores[scores >= self.score_thr]
        rects = np.concatenate([cand[:, :2] - cand[:, 2:4] / 2, cand[:, 2:4]], 1)  # (x, y, w, h) for OpenCV
        keep = np.asarray(cv2.dnn.NMSBoxes(rects.tolist(), cand_scores.tolist(), 0.0, self.iou_thr), np.int64)
        cand, rects = cand[keep.reshape(-1)[:300]], rects[keep.reshape(-1)[:300]]
        self.instances.append(len(cand))
        ph, pw = proto.shape[1:]
        prob = np.zeros((ph, pw), np.float32)
        if len(cand):
            masks = 1 / (1 + np.exp(-(cand[:, 4 + self.nc :] @ proto.reshape(len(proto), -1))))
            for m, (x, y, bw, bh) in zip(masks.reshape(-1, ph, pw), rects * np.array([pw / w, ph / h] * 2)):
                ys = slice(max(int(y), 0), max(int(np.ceil(y + bh)), 0))
                xs = slice(max(int(x), 0), max(int(np.ceil(x + bw)), 0))
                np.maximum(prob[ys, xs], m[ys, xs], out=prob[ys, xs])
        ih, iw = rgb.shape[:2]
        return SegmentationResult(cv2.resize(prob, (iw, ih), interpolation=cv2.INTER_LINEAR))


def export_yolo11n(nc: int, imgsz: int | tuple[int, int], out_dir: Path, variant: str = "") -> Path:
    """YOLO11n (``variant=""``) or YOLO11n-seg (``"-seg"``) from its Ultralytics YAML (random init: latency only)
    with ``nc`` classes, exported by Ultralytics at ``imgsz`` (N or (H, W))."""
    import os

    os.environ.update(
        {
            "YOLO_OFFLINE": "1",
            "YOLO_AUTOINSTALL": "False",
            "YOLO_VERBOSE": "False",
            "YOLO_CONFIG_DIR": str(out_dir / "yolo_cfg"),
        }
    )
    import yaml
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load

    name = f"yolo11n{variant}"
    cfg = yaml_model_load(f"{name}.yaml") | {"nc": nc}  # scale "n" comes from the file name
    cfg_dir = out_dir / f"nc{nc}"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / f"{name}.yaml").write_text(yaml.safe_dump({k: v for k, v in cfg.items() if k != "yaml_file"}))
    yolo = YOLO(str(cfg_dir / f"{name}.yaml"))
    size = list(imgsz) if isinstance(imgsz, tuple) else imgsz
    path = Path(yolo.export(format="onnx", imgsz=size, simplify=False, dynamic=False, device="cpu"))
    tag = "x".join(map(str, imgsz)) if isinstance(imgsz, tuple) else str(imgsz)
    dst = out_dir / f"{name}_nc{nc}_{tag}.onnx"
    path.replace(dst)
    return dst


def ultralytics_e2e(onnx_path: Path, video: Path, imgsz: int | tuple[int, int], task: str = "detect") -> dict[str, Any]:
    """Ultralytics' own pipeline on the same video: ``YOLO(onnx).predict(frame)`` + ``result.plot()``."""
    from ultralytics import YOLO

    yolo = YOLO(str(onnx_path), task=task)
    size = list(imgsz) if isinstance(imgsz, tuple) else imgsz

    def run(rgb: np.ndarray) -> Any:
        return yolo.predict(rgb[..., ::-1], imgsz=size, verbose=False, device="cpu")[0].plot()

    return e2e_per_frame(video, run)


def stream_bench(model: Any, video: Path, frames: int, live_fps: float = 25.0) -> dict[str, Any]:
    """``run_stream`` on the video over loopback ZeroMQ to a receiver thread, twice: every frame as fast as possible
    (reliable mode: throughput), and live (the video paced at ``live_fps`` like a camera, newest frame wins: latency
    and drops)."""
    return {
        "every_frame_reliable": _stream_once(model, video, frames, reliable=True, fps=None),
        f"live_{live_fps:g}fps": _stream_once(model, video, frames, reliable=False, fps=live_fps),
    }


def _stream_once(model: Any, video: Path, frames: int, reliable: bool, fps: float | None) -> dict[str, Any]:
    import socket

    from kdinspect.deploy.sources import open_source
    from kdinspect.deploy.stream import run_stream
    from kdinspect.deploy.transport import ResultPublisher, ResultReceiver

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    pub = ResultPublisher(endpoint, reliable=reliable)
    box: dict[str, Any] = {}

    def receive() -> None:
        rx = ResultReceiver(endpoint)
        while rx.recv_latest(timeout=30) is not None:
            pass
        box["rx"] = rx.stats.summary()
        rx.close()

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    pub.wait_for_subscriber(30)
    with open_source(str(video), every_frame=fps is None, fps=fps) as src:
        sender = run_stream(model, src, pub, max_frames=frames)
    pub.close()
    thread.join(60)
    return {"sender": sender, "receiver": box.get("rx")}


def service_bench(model: Any, images: Sequence[Path], requests: int, concurrency: int) -> dict[str, Any]:
    """``POST /predict`` load on loopback (uvicorn in a thread, httpx client): p50/p99 and errors."""
    import httpx
    import uvicorn

    from kdinspect.deploy.service import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(model), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    payloads = [(p.name, p.read_bytes()) for p in images]

    async def load() -> tuple[list[float], list[int], float]:
        sem, lat, codes = asyncio.Semaphore(concurrency), [], []
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:

            async def one(i: int) -> None:
                name, data = payloads[i % len(payloads)]
                async with sem:
                    t0 = time.perf_counter()
                    r = await client.post("/predict", files={"file": (name, data, "image/jpeg")})
                    lat.append(time.perf_counter() - t0)
                    codes.append(r.status_code)

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(requests)))
            return lat, codes, time.perf_counter() - t0

    try:
        lat, codes, wall = asyncio.run(load())
    finally:
        server.should_exit = True
        thread.join(10)
    s = stats_ms(lat)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "errors": requests - codes.count(200),
        "p50_ms": s["median_ms"],
        "p99_ms": s["p99_ms"],
        "requests_per_s": round(requests / wall, 2),
    }


def draw_and_encode(model: Any) -> Callable[[np.ndarray], bytes]:
    """``rgb -> JPEG`` of the overlay (what the stream publishes), for the end-to-end timing."""

    def run(rgb: np.ndarray) -> bytes:
        return encode_jpeg(render(rgb, model.predict(rgb), model.info.classes))

    return run
