"""Reference-aware GFL (HSD teacher/student) detectors: the test image and a defect-free reference, fused.

``PairGFL(backbone, neck, head, fusion)`` takes ``forward(images, targets=None, references=None)`` with both
``(B, 3, H, W)`` RGB in [0, 1] (the reference registered onto the image, see :mod:`kdinspect.deploy.align`).
Fusions:

- ``early`` (default): the backbone sees 6 channels, the normalised image and ``|image - reference| / std``. The first
  conv is widened: the image channels keep the ImageNet kernel ``W``, the difference channels get a copy of ``W``
  (an edge/blob detector responds to the difference as it does to the image). Costs one wider first conv.
- ``early_ref``: 9 channels, image + normalised reference + difference; the reference channels start at zero (the
  pretrained response is unchanged until training finds a use for them).
- ``siamese``: one shared backbone runs on the image and the reference (one batch of 2B); at each level
  ``fuse_l([f_img, |f_img - f_ref|])`` (1x1 conv, initialised to pass ``f_img`` through: it starts as the
  single-image detector) feeds the neck. About twice the backbone cost.

The widened first conv always trains (its extra channels are new), even in a frozen stem. Teacher and student both
being ``PairGFL`` (or only the student: a single-image teacher gets the image alone) keeps HSD distillation as is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Detections, DetTarget
from kdinspect.models.gfl import GFL, DetsOutput, GFLOutputs, RawOutput
from kdinspect.models.heads.gfl_decode import flatten_levels

__all__ = [
    "FUSIONS",
    "PairGFL",
    "PairGFLInference",
    "expand_first_conv",
    "hsd_pair_detector",
    "hsd_student_ref",
    "hsd_teacher_ref",
    "reference_kwargs",
    "takes_reference",
]

FUSIONS = ("early", "early_ref", "siamese")


def takes_reference(model: nn.Module) -> bool:
    """Whether ``model`` (or the model under a wrapper with ``.module``) is a reference-aware detector."""
    return bool(getattr(getattr(model, "module", model), "takes_reference", False))


def reference_kwargs(model: nn.Module, batch: Any, strict: bool = True) -> dict[str, Tensor]:
    """``{"references": batch.references}`` for a reference-aware model, ``{}`` for a single-image one.

    Raises (``strict``): ValueError when a reference-aware model gets a batch without references, or a single-image
    model a batch with them (a config with ``data.params.reference`` but a model that ignores it). With
    ``strict=False`` (a distillation teacher) a single-image model just gets no references.
    """
    refs = getattr(batch, "references", None)
    if takes_reference(model):
        if refs is None:
            raise ValueError(
                f"{type(getattr(model, 'module', model)).__name__} needs a reference image per sample: set "
                "data.params.reference (auto or an image file; docs/template.md)"
            )
        return {"references": refs}
    if refs is not None and strict:
        raise ValueError(
            f"the batch carries reference images (data.params.reference) but {type(model).__name__} takes the test "
            "image only: use a reference-aware model (hsd_teacher_ref / hsd_student_ref) or drop data.params.reference"
        )
    return {}


def expand_first_conv(module: nn.Module, extra: list[str]) -> str:
    """Widen the first 3-channel conv of ``module`` by 3 channels per ``extra`` entry, in place.

    ``extra`` names what the added channel groups hold: ``diff`` (initialised with a copy of the RGB kernel) or
    ``reference`` (zeros). Returns the conv's qualified name.
    """
    name, conv = next(
        ((n, m) for n, m in module.named_modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3), ("", None)
    )
    if conv is None:
        raise ValueError(f"{type(module).__name__} has no 3-channel input conv to widen")
    new = nn.Conv2d(
        3 * (1 + len(extra)),
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
    )
    with torch.no_grad():
        w = conv.weight
        parts = [w] + [w.clone() if e == "diff" else torch.zeros_like(w) for e in extra]
        new.weight.copy_(torch.cat(parts, dim=1))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    parent_name, _, attr = name.rpartition(".")
    setattr(module.get_submodule(parent_name) if parent_name else module, attr, new)
    return name


class PairGFL(GFL):
    """A :class:`GFL` detector with a reference input (see the module docstring for the fusions).

    Args:
        backbone, neck, head, **gfl_params: as :class:`GFL`.
        fusion: ``early``, ``early_ref`` or ``siamese``.
    """

    takes_reference = True

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module, fusion: str = "early", **gfl_params):
        if fusion not in FUSIONS:
            raise ValueError(f"fusion {fusion!r} not in {list(FUSIONS)}")
        super().__init__(backbone, neck, head, **gfl_params)
        self.fusion = fusion
        self.stem_conv = ""
        if fusion == "siamese":
            self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in backbone.out_channels)
            for f, c in zip(self.fuse, backbone.out_channels):
                nn.init.zeros_(f.weight)
                nn.init.zeros_(f.bias)
                with torch.no_grad():
                    f.weight[:, :c, 0, 0].copy_(torch.eye(c))
        else:
            extra = ["diff"] if fusion == "early" else ["reference", "diff"]
            self.stem_conv = "backbone." + expand_first_conv(backbone, extra)
            self._unfreeze_stem()

    def _unfreeze_stem(self) -> None:
        for p in self.get_submodule(self.stem_conv).parameters():
            p.requires_grad_(True)

    def train(self, mode: bool = True) -> PairGFL:
        super().train(mode)  # backbones re-freeze their stem here
        if self.stem_conv:
            self._unfreeze_stem()
        return self

    def features(self, images: Tensor, references: Tensor) -> list[Tensor]:
        """Pyramid features of the pair (normalisation inside)."""
        if references.shape != images.shape:
            raise ValueError(f"references {tuple(references.shape)} must match images {tuple(images.shape)}")
        x = (images - self.mean) / self.std
        if self.fusion == "siamese":
            n = images.shape[0]
            feats = self.backbone(torch.cat([x, (references - self.mean) / self.std]))
            fused = [f(torch.cat([a[:n], (a[:n] - a[n:]).abs()], 1)) for f, a in zip(self.fuse, feats)]
            return self.neck(fused)
        diff = (images - references).abs() / self.std
        parts = [x, diff] if self.fusion == "early" else [x, (references - self.mean) / self.std, diff]
        return self.neck(self.backbone(torch.cat(parts, 1)))

    def forward_raw(self, images: Tensor, references: Tensor | None = None) -> GFLOutputs:  # type: ignore[override]
        """images, references: (B, 3, H, W) RGB in [0, 1] -> flattened head outputs."""
        if references is None:
            raise ValueError("a reference-aware detector needs references (B, 3, H, W); see docs/template.md")
        cls_scores, bbox_preds = self.head(self.features(images, references))
        sizes = [(int(c.shape[-2]), int(c.shape[-1])) for c in cls_scores]
        return GFLOutputs(flatten_levels(cls_scores), flatten_levels(bbox_preds), sizes, tuple(images.shape[-2:]))

    def forward(  # type: ignore[override]
        self, images: Tensor, targets: list[DetTarget] | None = None, references: Tensor | None = None
    ) -> dict[str, Tensor] | list[Detections]:
        """Train mode: weighted loss dict (needs ``targets``); eval mode: ``list[Detections]`` in input pixels."""
        return self.losses_or_detections(self.forward_raw(images, references), targets, images.shape[0])

    def inference_module(self, nms: bool = True) -> PairGFLInference:
        """Export wrapper: ``(images, references) -> DetsOutput(dets)`` or ``RawOutput(boxes, scores)``."""
        return PairGFLInference(self, nms)


class PairGFLInference(nn.Module):
    """``images, references (B, 3, H, W) RGB [0, 1]`` -> :class:`DetsOutput` or :class:`RawOutput`."""

    input_names = ("images", "references")

    def __init__(self, model: PairGFL, nms: bool = True) -> None:
        super().__init__()
        self.model = model
        self.nms = nms

    def forward(self, images: Tensor, references: Tensor) -> DetsOutput | RawOutput:
        m = self.model
        outputs = m.forward_raw(images, references)
        return m.graph_outputs(outputs, self.nms)


_GFL_ATTRS = (
    "cls_loss",
    "loss_bbox_weight",
    "loss_dfl_weight",
    "topk",
    "octave_base_scale",
    "center_offset",
    "nms_pre",
    "score_thr",
    "nms_iou",
    "max_per_img",
)


def hsd_pair_detector(num_classes: int, fusion: str = "early", **params: Any) -> PairGFL:
    """An HSD detector (:func:`~kdinspect.models.hsd.hsd_detector`, same ``params``) with a reference input.

    Args:
        num_classes: foreground classes.
        fusion: ``early`` (image + |difference|), ``early_ref`` (image + reference + |difference|) or ``siamese``.
        **params: every :func:`~kdinspect.models.hsd.hsd_detector` parameter (``neck``, ``backbone``, ...).
    """
    from kdinspect.models.hsd import hsd_detector
    from kdinspect.models.registry import check_params

    check_params(hsd_detector, params, "reference-aware HSD model")
    base = hsd_detector(num_classes, **params)
    return PairGFL(base.backbone, base.neck, base.head, fusion, **{a: getattr(base, a) for a in _GFL_ATTRS})


def hsd_teacher_ref(num_classes: int, fusion: str = "early", **params: Any) -> PairGFL:
    """``MODELS["hsd_teacher_ref"]``: the HSD teacher (FPN neck) with a reference input."""
    return hsd_pair_detector(num_classes, fusion, **{"neck": "fpn", **params})


def hsd_student_ref(num_classes: int, fusion: str = "early", **params: Any) -> PairGFL:
    """``MODELS["hsd_student_ref"]``: the HSD student (HKN neck) with a reference input."""
    return hsd_pair_detector(num_classes, fusion, **{"neck": "hkn", **params})
