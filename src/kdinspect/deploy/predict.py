"""``kdinspect predict MODEL.onnx SOURCE`` with the runtime: images, folders and video files -> JSON + overlays."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import cv2

from kdinspect.deploy.imageio import IMAGE_EXTENSIONS, ImageDecodeError, list_images, read_image
from kdinspect.deploy.runtime import OrtModel
from kdinspect.deploy.stream import render

__all__ = ["VIDEO_EXTENSIONS", "predict_files", "reference_for"]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _save(
    out: Path | None, name: str, image: Any, result: Any, model: OrtModel, overlays: bool, read_ms: float = 0.0
) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = result.to_json()
    timing = model.last_timing
    res["ms"] = {
        "pre": round(read_ms + timing.get("preprocess_ms", 0.0), 2),
        "inference": round(timing.get("inference_ms", 0.0), 2),
        "post": round(timing.get("postprocess_ms", 0.0), 2),
    }
    if out is None:
        return res
    if overlays:
        (out / "overlays").mkdir(parents=True, exist_ok=True)
        dst = out / "overlays" / f"{name}.jpg"
        cv2.imwrite(str(dst), cv2.cvtColor(render(image, result, model.info.classes), cv2.COLOR_RGB2BGR))
        res["overlay"] = str(dst)
    if model.info.task == "segmentation":
        (out / "masks").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / "masks" / f"{name}.png"), result.mask.astype("uint8") * 255)
        res["mask"] = str(out / "masks" / f"{name}.png")
    res["ms"]["post"] = round(res["ms"]["post"] + (time.perf_counter() - t0) * 1e3, 2)  # + drawing and writing
    return res


def reference_for(image: Path, reference: str | Path) -> Path:
    """The reference image of ``image``: ``reference`` itself when it is a file (one reference for every image),
    else the file in folder ``reference`` with the image's stem (any image extension; a DeepPCB ``X_test`` image also
    finds ``X_temp``).

    Raises:
        FileNotFoundError: naming the image and where its reference was looked for.
    """
    ref = Path(reference)
    if ref.is_file():
        return ref
    if not ref.is_dir():
        raise FileNotFoundError(f"--reference {ref}: no such file or folder")
    stems = [image.stem] + ([image.stem.removesuffix("_test") + "_temp"] if image.stem.endswith("_test") else [])
    for stem in stems:
        for ext in IMAGE_EXTENSIONS:
            if (ref / f"{stem}{ext}").is_file():
                return ref / f"{stem}{ext}"
    raise FileNotFoundError(f"no reference for {image.name} in {ref} (looked for {' / '.join(stems)} + image ext)")


def _video_frames(path: Path, stride: int) -> Any:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError(f"{path}: OpenCV could not open this video")
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % stride == 0:
                yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def predict_files(
    model_path: str | Path,
    source: str | Path,
    out_dir: str | Path | None = None,
    score_thr: float | None = None,
    mask_thr: float | None = None,
    overlays: bool = True,
    threads: int | None = None,
    video_stride: int = 1,
    reference: str | Path | None = None,
    align: str | None = None,
) -> list[dict[str, Any]]:
    """Predict every image of ``source`` (file or folder) or every ``video_stride``-th frame of a video file.

    Writes ``results.json``, ``overlays/`` and (segmentation) ``masks/`` under ``out_dir``. Unreadable images are
    reported in the results with an ``error`` and do not stop the run.

    A reference-aware model needs ``reference``: one image file for every image (and every video frame), or a folder
    with one reference per image, same stem (:func:`reference_for`). An image whose reference is missing or
    unreadable is reported with an ``error``. ``align`` overrides the model's registration method.
    """
    model = OrtModel(model_path, threads=threads, score_thr=score_thr, mask_thr=mask_thr, align=align)
    if model.info.reference and reference is None:
        raise ValueError(f"{model_path} compares each image with a reference: pass --reference FILE|DIR")
    if reference is not None and not model.info.reference:
        raise ValueError(f"{model_path} takes the test image only; --reference is for reference-aware models")
    if reference is not None and not Path(reference).exists():
        raise FileNotFoundError(f"--reference {reference}: no such file or folder")
    out = Path(out_dir) if out_dir else None
    src = Path(source)
    results: list[dict[str, Any]] = []
    if src.is_file() and src.suffix.lower() in VIDEO_EXTENSIONS:
        if reference is not None and not Path(reference).is_file():
            raise ValueError(f"a video needs one reference image file, got the folder {reference}")
        line_ref = None if reference is None else read_image(reference)
        for i, frame in _video_frames(src, max(1, video_stride)):
            res = _save(out, f"{src.stem}_{i:06d}", frame, model.predict(frame, line_ref), model, overlays)
            results.append({"video": str(src), "frame": i} | res)
    else:
        if src.is_file() and src.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(f"{src}: unsupported file type; images {IMAGE_EXTENSIONS} or videos {VIDEO_EXTENSIONS}")
        for path in list_images(src):
            t0 = time.perf_counter()
            try:
                image = read_image(path)
                ref = None if reference is None else read_image(reference_for(path, reference))
            except ImageDecodeError as err:
                logger.warning("skipping %s", err)
                results.append({"image": str(path), "error": err.reason})
                continue
            except FileNotFoundError as err:
                logger.warning("skipping %s: %s", path, err)
                results.append({"image": str(path), "error": str(err)})
                continue
            read_ms = (time.perf_counter() - t0) * 1e3
            result = model.predict(image, ref)
            results.append({"image": str(path)} | _save(out, path.stem, image, result, model, overlays, read_ms))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"model": str(model_path), "results": results}, indent=1) + "\n")
    logger.info("predicted %d item(s) with %s", len(results), model_path)
    return results
