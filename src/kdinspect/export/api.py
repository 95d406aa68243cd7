"""Export a checkpoint and verify every exported file on real validation images.

For each file (ONNX FP32, optional INT8 and OpenVINO IR) the report holds the max abs difference to PyTorch on real
images and the main metric (mAP50 or F1) on a validation subset before/after. It is printed, saved next to the model
as ``<name>.verify.json`` (``status``: ``passed`` / ``failed``), and a failed check raises :class:`ExportCheckError`
(the CLI exits non-zero). The files of an export whose check failed, or did not finish, are renamed
(``best.onnx`` -> ``best.failed.onnx``, listed under ``failed_files``), so a deployable name never holds an unverified
model; a later export that passes removes those leftovers.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdinspect.engine.checkpoint import LoadedModel, load_model
from kdinspect.export.onnx import export_onnx, inference_module
from kdinspect.export.verify import ExportMismatchError, compare_outputs, parity_failures
from kdinspect.utils.io import write_json

__all__ = ["ExportCheckError", "export_checkpoint", "parse_imgsz"]

logger = logging.getLogger(__name__)


class ExportCheckError(ExportMismatchError):
    """An exported model failed its parity or metric check."""


def parse_imgsz(value: str | int | None) -> tuple[int, int] | None:
    """``640`` -> (640, 640); ``384x544`` -> (384, 544) (H x W); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return (value, value)
    parts = str(value).lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError as err:
        raise ValueError(f"image size {value!r} is not N or HxW") from err
    if len(dims) not in (1, 2) or min(dims) <= 0:
        raise ValueError(f"image size {value!r} is not N or HxW with positive numbers")
    return (dims[0], dims[-1])


def _input_size(cfg: Any, kind: str, imgsz: tuple[int, int] | None, samples: list[Any]) -> tuple[int, int]:
    """The export input size: ``imgsz`` if given, else the size the model was validated at.

    Detection: ``data.imgsz``. Segmentation: ``data.eval_imgsz`` if set, else (full-resolution evaluation) the size
    of the validation images, padded to a multiple of 32 as the evaluation batches are; ``data.imgsz`` is only the
    training crop there.
    """
    if imgsz:
        return imgsz
    if kind == "detection" or cfg.data.eval_imgsz:
        size = cfg.data.imgsz if kind == "detection" else cfg.data.eval_imgsz
        return (size, size)
    from kdinspect.data.datasets import PAD_MULTIPLE

    sizes = Counter(tuple(s.meta.input_size) for s in samples)
    if not sizes:
        return (cfg.data.imgsz, cfg.data.imgsz)
    (h, w), n = sizes.most_common(1)[0]
    padded = (-(-h // PAD_MULTIPLE) * PAD_MULTIPLE, -(-w // PAD_MULTIPLE) * PAD_MULTIPLE)
    if len(sizes) > 1:
        logger.warning(
            "validation images have %d sizes (%s); exporting at the most common one, %dx%d (pass --imgsz HxW)",
            len(sizes),
            ", ".join(f"{a}x{b}" for a, b in sorted(sizes)),
            *padded,
        )
    logger.info("export size %dx%d: the validation image size (%d of %d checked images)", *padded, n, len(samples))
    return padded


def _inputs(samples: list[Any], size: tuple[int, int], n: int, align: str | None = None) -> list[Any]:
    """(1, 3, H, W) float32 runtime inputs made from the original files, as the deployed runtime makes them; with
    ``align`` (a reference-aware model) ``(image, reference)`` tuples, the reference registered like the runtime
    does it."""
    from kdinspect.deploy.align import align_reference
    from kdinspect.deploy.imageio import read_image
    from kdinspect.deploy.postprocess import to_input_tensor

    out: list[Any] = []
    for s in samples[:n]:
        image = read_image(s.meta.path)
        x = to_input_tensor([image], size)
        if align is None:
            out.append(x)
            continue
        ref = align_reference(image, read_image(s.meta.extra["reference"]), align, s.meta.path)
        out.append((x, to_input_tensor([ref], size)))
    return out


def _tensors(inputs: list[Any]) -> list[Any]:
    return [tuple(torch.from_numpy(a) for a in x) if isinstance(x, tuple) else torch.from_numpy(x) for x in inputs]


def _batch2(inputs: list[Any]) -> list[Any]:
    """One batch of two inputs (repeating the first when there is only one)."""
    pair = (inputs * 2)[:2]
    if isinstance(pair[0], tuple):
        return [tuple(np.concatenate([p[k] for p in pair]) for k in range(len(pair[0])))]
    return [np.concatenate(pair)]


def _parity(
    loaded: LoadedModel, path: Path, inputs: list[np.ndarray], nms: bool, atol: float, report: dict[str, Any], key: str
) -> None:
    """Store the parity report of ``path`` under ``report[key]`` (so it is saved), then raise if it failed."""
    module = inference_module(loaded.model, loaded.kind, nms)
    report[key] = compare_outputs(module, path, _tensors(inputs), atol=atol, raise_on_fail=False)
    if bad := parity_failures(report[key], atol):
        raise ExportCheckError(f"{path}: runtime outputs differ from PyTorch beyond atol={atol}: {bad}")


def _int8(
    loaded: LoadedModel,
    fp32: Path,
    inputs: list[np.ndarray],
    calib: list[np.ndarray],
    fmt: str,
    threads: int,
    keep_slower: bool,
) -> tuple[Path | None, dict[str, Any]]:
    from kdinspect.export.quantize import quantize_onnx, time_model

    path = _outputs(fp32)["int8"]
    quantize_onnx(fp32, path, calib, fmt=fmt)
    t32, t8 = time_model(fp32, inputs[0], threads), time_model(path, inputs[0], threads)
    speedup = t32["median_ms"] / t8["median_ms"]
    info: dict[str, Any] = {
        "file": str(path),
        "format": fmt,
        "calibration_images": len(calib),
        "fp32_latency": t32,
        "int8_latency": t8,
        "speedup": round(speedup, 3),
        "size_mb": round(path.stat().st_size / 1e6, 3),
    }
    module = inference_module(loaded.model, loaded.kind, True)
    info["parity"] = compare_outputs(module, path, _tensors(inputs), raise_on_fail=False)
    if speedup <= 1.0 and not keep_slower:
        logger.warning(
            "INT8 (%s) is not faster than FP32 on this CPU (%.2f ms vs %.2f ms, %d thread(s)): removed",
            fmt,
            t8["median_ms"],
            t32["median_ms"],
            threads,
        )
        path.unlink()
        info["kept"] = False
        return None, info
    info["kept"] = True
    return path, info


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    imgsz: int | str | tuple[int, int] | None = None,
    opset: int = 17,
    dynamic: bool = False,
    nms: bool = True,
    verify_images: int = 8,
    atol: float = 1e-3,
    metric_images: int = 32,
    max_metric_drop: float = 0.01,
    int8: str | None = None,
    calib_images: int = 32,
    max_int8_drop: float = 0.02,
    keep_slower_int8: bool = False,
    openvino: bool = False,
    threads: int = 1,
    data_root: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Export ``checkpoint`` to ONNX (and optionally INT8 / OpenVINO IR) and check each file.

    Args:
        checkpoint: a ``.safetensors`` checkpoint.
        out: output ``.onnx`` (default: beside the checkpoint).
        imgsz: input size ``N`` or ``(H, W)`` / ``"HxW"`` (default: the size the model was validated at: detection
            ``data.imgsz``; segmentation ``data.eval_imgsz``, or the validation images' size when that is 0).
        opset: ONNX opset.
        dynamic: dynamic batch axis (else batch 1).
        nms: detectors: NMS inside the graph (``dets``) or on the host (``boxes``/``scores``).
        verify_images: real validation images for the output comparison.
        atol: largest accepted abs difference between PyTorch and the runtime (FP32 and OpenVINO).
        metric_images: validation images for the metric check (0 = skip).
        max_metric_drop: largest accepted drop of the main metric (absolute) for FP32 / OpenVINO.
        int8: ``qdq`` or ``qoperator`` to also write ``<name>.int8.onnx`` (None = no INT8).
        calib_images: training images used to calibrate INT8.
        max_int8_drop: largest accepted drop of the main metric for INT8.
        keep_slower_int8: keep the INT8 file even when it is not faster than FP32 here.
        openvino: also write an OpenVINO IR.
        threads: threads for the runtime check and the INT8 timing.
        data_root: dataset folder for the checks (default: ``data.root`` of the run config).
        overrides: dotted ``key=value`` changes to the stored config before export, for inference-time settings
            baked into the graph (e.g. ``model.params.rpn_post_nms_top_n=[1000,100]``); the checks use them too.

    Raises:
        ExportCheckError: a parity or metric check failed (the report is still written; the files are renamed to
            ``<name>.failed<suffix>``).
    """
    from kdinspect.export.check import load_val_subset, metric_check

    loaded = load_model(checkpoint, overrides=overrides)
    if data_root is not None:
        loaded.cfg.data.root = str(data_root)
    samples = load_val_subset(loaded, max(verify_images, metric_images, 1))
    requested = parse_imgsz(imgsz) if not isinstance(imgsz, tuple) else imgsz
    size = _input_size(loaded.cfg, loaded.kind, requested, samples)
    out = Path(out) if out else Path(checkpoint).with_suffix(".onnx")
    from kdinspect.models.pair import takes_reference

    pair = takes_reference(loaded.model)
    align = str(loaded.cfg.data.params.get("align", "none")) if pair else None
    if pair and openvino:
        raise ValueError(
            "OpenVINO export of a reference-aware (two-input) model is not supported yet; export the FP32 or INT8 "
            "ONNX graph (docs/template.md)"
        )
    meta = {"kdinspect.align": align} if pair else {}
    if loaded.mask_thr is not None:  # the threshold chosen on validation travels with the graph
        meta["kdinspect.mask_thr"] = str(loaded.mask_thr)
    export_onnx(
        loaded.model,
        out,
        size,
        loaded.kind,
        loaded.classes,
        str(loaded.cfg.model.name),
        opset,
        dynamic,
        nms,
        meta or None,
    )
    inputs = _inputs(samples, size, max(verify_images, 1), align)
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "onnx": str(out),
        "input_size": list(size),
        "input_size_from": "--imgsz" if requested else "run config / validation images",
        "dynamic_batch": dynamic,
        "nms": "graph" if nms else "host",
        "atol": atol,
        "verify_images": len(inputs),
        "size_mb": round(out.stat().st_size / 1e6, 3),
    }
    if overrides:
        report["overrides"] = list(overrides)
    verify_path = out.with_suffix(".verify.json")
    models: dict[str, Path] = {"onnx": out}
    try:
        _parity(loaded, out, inputs, nms, atol, report, "parity")
        if dynamic:
            _parity(loaded, out, _batch2(inputs), nms, atol, report, "parity_batch2")
        if openvino:
            from kdinspect.export.openvino import export_openvino

            models["openvino"] = _outputs(out)["openvino"]  # named before it is written: a failure renames it too
            models["openvino"] = export_openvino(out, models["openvino"])
            _parity(loaded, models["openvino"], inputs, nms, atol, report, "openvino")
            report["openvino"]["file"] = str(models["openvino"])
        if int8:
            models["int8"] = _outputs(out)["int8"]  # named before it is written: a failure renames it too
            calib = _inputs(load_val_subset(loaded, calib_images, split="train"), size, calib_images, align)
            path, report["int8"] = _int8(loaded, out, inputs, calib, int8, threads, keep_slower_int8)
            if path is None:  # not faster here: deleted
                del models["int8"]
        if metric_images:
            report["metric_check"] = metric_check(loaded, models, samples[:metric_images], threads)
            _check_drops(report["metric_check"], max_metric_drop, max_int8_drop)
        report["status"] = "passed"
        for stale in _failed_names(_outputs(out)).values():  # leftovers of an earlier failed export to the same name
            _remove(stale)
    except Exception as err:
        report["status"] = "failed"
        report["error"] = f"{type(err).__name__}: {err}"
        report["failed_files"] = [str(p) for p in _mark_failed(models)]
        write_json(verify_path, report)
        note = f"; the unverified file(s) were renamed to {', '.join(report['failed_files'])} (report {verify_path})"
        if isinstance(err, ExportCheckError):
            raise ExportCheckError(f"{err}{note}") from err
        logger.error("export check did not finish%s", note)
        raise
    write_json(verify_path, report)
    logger.info("export verified: %s (report %s)", out, verify_path)
    return report


def _outputs(out: Path) -> dict[str, Path]:
    """Every file an export to ``out`` may write: the ONNX file, its INT8 version and its OpenVINO IR."""
    return {
        "onnx": out,
        "int8": out.with_name(f"{out.stem}.int8.onnx"),
        "openvino": out.parent / f"{out.stem}_openvino" / f"{out.stem}.xml",
    }


def _failed_names(models: dict[str, Path]) -> dict[Path, Path]:
    """Written file -> its ``failed`` name: ``best.onnx`` -> ``best.failed.onnx``, ``best.int8.onnx`` ->
    ``best.int8.failed.onnx``; an OpenVINO IR's folder ``best_openvino`` -> ``best_openvino.failed``."""
    names = {}
    for key, path in models.items():
        if key == "openvino":
            names[path.parent] = path.parent.with_name(f"{path.parent.name}.failed")
        else:
            names[path] = path.with_name(f"{path.stem}.failed{path.suffix}")
    return names


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _mark_failed(models: dict[str, Path]) -> list[Path]:
    """Rename every file of a failed export to its ``failed`` name (so no deployable name points at it)."""
    renamed = []
    for src, dst in _failed_names(models).items():
        if src.exists():
            _remove(dst)
            src.replace(dst)
            renamed.append(dst)
    return renamed


def _check_drops(check: dict[str, Any], max_drop: float, max_int8_drop: float) -> None:
    for key, delta in check.items():
        if not key.startswith("delta_"):
            continue
        limit = max_int8_drop if key == "delta_int8" else max_drop
        if delta < -limit:
            raise ExportCheckError(
                f"{check['metric']} drops by {-delta:.4f} for {key[6:]} "
                f"(PyTorch {check['pytorch']:.4f}, limit {limit}) on {check['images']} images"
            )
