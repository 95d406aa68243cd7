"""Optional OpenVINO IR from the exported ONNX graph (``pip install 'kdinspect[openvino]'``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

__all__ = ["export_openvino"]

logger = logging.getLogger(__name__)


def export_openvino(onnx_path: str | Path, out_xml: str | Path | None = None, fp16: bool = False) -> Path:
    """Convert ``onnx_path`` to OpenVINO IR (``.xml`` + ``.bin``) and write its kdinspect metadata to
    ``<name>.meta.json`` (read by :class:`kdinspect.deploy.OrtModel`).

    Args:
        onnx_path: an ONNX file written by ``kdinspect export``.
        out_xml: output ``.xml`` (default: beside the ONNX file, ``<name>_openvino/<name>.xml``).
        fp16: compress weights to FP16 (OpenVINO's default for IR); False keeps FP32 weights.
    """
    try:
        import onnx
        import openvino as ov
    except ImportError as err:
        raise ImportError("OpenVINO export needs openvino: pip install 'kdinspect[openvino]'") from err
    onnx_path = Path(onnx_path)
    out_xml = Path(out_xml) if out_xml else onnx_path.parent / f"{onnx_path.stem}_openvino" / f"{onnx_path.stem}.xml"
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(out_xml), compress_to_fp16=fp16)
    meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    meta["kdinspect.precision"] = "fp16" if fp16 else "fp32"
    out_xml.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("OpenVINO IR written to %s", out_xml)
    return out_xml
