"""MCFF-L Net (multi-path convolution feature fusion, lightweight) for crack segmentation, ported from TF/Keras.

Builders (``functools.partial`` of :class:`MCFFNet`, so ``MODELS`` checks parameters against its signature):

- ``mcff_teacher``: width 64, 8 residual blocks per path, dropout 0.5 (32,889,152 parameters).
- ``mcff_student``: MCL, width 16, 4 blocks, no dropout (1,179,392 trainable parameters + 96 BN statistics).
- ``mcff_student_dw``: MCLD, the student with depthwise 3x3 + pointwise 1x1 convolutions in the residual blocks.
- ``mcff_student_lite``: not in the paper; the student's three paths at 1/4 resolution (``space_to_depth=4``: 4x4
  pixel blocks in, full-resolution logits out) and width 10, 4 blocks: 512,116 parameters, 2.94 GFLOPs at 384x544
  against the student's 66.6, sized to run faster than YOLO11n-seg on this CPU (``docs/mcff.md``).
"""

from __future__ import annotations

from functools import partial

from kdinspect.models.mcff.net import OUTPUTS, MCFFLogits, MCFFNet, MCFFOutput

__all__ = [
    "OUTPUTS",
    "MCFFLogits",
    "MCFFNet",
    "MCFFOutput",
    "mcff_student",
    "mcff_student_dw",
    "mcff_student_lite",
    "mcff_teacher",
]

mcff_teacher = partial(MCFFNet, width=64, n_blocks=8, dropout=0.5)
mcff_student = partial(MCFFNet, width=16, n_blocks=4, dropout=0.0)
mcff_student_dw = partial(MCFFNet, width=16, n_blocks=4, dropout=0.0, depthwise=True)
mcff_student_lite = partial(MCFFNet, width=10, n_blocks=4, dropout=0.0, space_to_depth=4)
