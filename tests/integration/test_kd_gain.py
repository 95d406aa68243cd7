"""Distillation improves a student: per system, the distilled student against the same student trained the same way
without distillation, on small seeded synthetic data where the teacher knows something the student's labels lack.

Each test trains a teacher on more (and clean) data, then per seed two students from the same initialisation on the
same batches: plain (its own loss on its corrupted labels) and distilled (the same loss + the system's distiller).
The margins are set below the smallest gain measured over the seeds and above what a broken distiller reaches (the
values are in each test's docstring; the commit that added this file says how each broken variant failed).
"""

from __future__ import annotations

import pytest
import torch
from tests.helpers.kd_gain import (
    crack_set,
    defect_set,
    det_batch,
    fit,
    jittered_boxes,
    partial_masks,
    seg_batch,
    torch_threads,
)

from kdinspect.distill import DISTILLERS
from kdinspect.distill.mcff_kd import teacher_soft_maps
from kdinspect.evaluation.segmentation import evaluate_segmentation
from kdinspect.losses.gfl import aligned_iou, distance2bbox
from kdinspect.models import build_model
from kdinspect.models.gfl import GFL
from kdinspect.models.heads.gfl_head import integral
from kdinspect.models.mcff import MCFFNet
from kdinspect.tasks import SegmentationTask
from kdinspect.tasks.detection import DetectionTask

SEEDS = (0, 1, 2)


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


# ------------------------------------------------------------------------------------------------ MCFF soft labels
def _mcff(width: int, seed: int) -> MCFFNet:
    torch.manual_seed(seed)
    return MCFFNet(width=width, n_blocks=1, dropout=0.0)


def _ods(net: MCFFNet, images: torch.Tensor, masks: torch.Tensor) -> float:
    with torch.no_grad():
        prob = net.eval().predict_prob(images)[:, 0]
    return evaluate_segmentation(list(prob), list(masks))["ods"]


def _soft_map_error(net: MCFFNet, teacher: MCFFNet, images: torch.Tensor, t1: float) -> float:
    """Mean |student - teacher| of the four soft maps at T1, relative to the teacher maps' mean distance from 0.5."""
    want = teacher_soft_maps(teacher.eval(), images, t1)
    got = teacher_soft_maps(net.eval(), images, t1)
    return float((got - want).abs().mean() / (want - 0.5).abs().mean())


def test_mcff_soft_labels_improve_a_student_trained_on_incomplete_masks():
    """MCFF-L offline KD (standard strategy: T1 = 10 soft labels h/x/y/mix + the GT term at T2 = 1).

    Teacher: width 8, trained on 32 clean 32x32 images. Students: width 4, 8 of those images whose masks keep the
    cracks of only 30% of the 8x8 tiles (incomplete annotation), 40 Adam steps. Measured (seeds 0/1/2): ODS plain
    0.452/0.343/0.296, distilled 0.565/0.586/0.602 (gain >= 0.11, mean 0.22); soft-map error plain 0.55-0.59,
    distilled 0.43-0.46. Broken distillers measured: soft labels zeroed -> ODS 0.0; student compared at T = 1
    instead of T1 -> error 0.88; soft-label terms detached -> gain 0.05/0.11/0.11 (mean 0.09), error 0.67-0.72.
    """
    size, t1 = 32, 10.0
    images, masks = crack_set("train", 32, size)
    val_images, val_masks = crack_set("val", 16, size)
    teacher = _mcff(8, 100)
    fit(SegmentationTask(teacher, ["crack"]), lambda i: seg_batch(images[i], masks[i]), 32, 80, 8, 3e-3, 0)
    assert _ods(teacher, val_images, val_masks) > 0.6  # the teacher knows the cracks
    student_images = images[:8]
    soft = teacher_soft_maps(teacher.eval(), student_images, t1)  # what `kdinspect softlabels` stores, unquantised
    gains, errors = [], []
    for seed in SEEDS:
        labels = partial_masks(masks[:8], seed)
        plain = _mcff(4, seed)
        fit(
            SegmentationTask(plain, ["crack"]),
            lambda i, y=labels: seg_batch(student_images[i], y[i]),
            8,
            40,
            4,
            3e-3,
            seed,
        )
        distilled = _mcff(4, seed)
        kd = DISTILLERS["mcff_kd"](SegmentationTask(distilled, ["crack"]), None, strategy="standard")
        fit(kd, lambda i, y=labels: seg_batch(student_images[i], y[i], soft[i]), 8, 40, 4, 3e-3, seed)
        gains.append(_ods(distilled, val_images, val_masks) - _ods(plain, val_images, val_masks))
        errors.append(
            (_soft_map_error(plain, teacher, val_images, t1), _soft_map_error(distilled, teacher, val_images, t1))
        )
    assert min(gains) >= 0.08 and sum(gains) / len(gains) >= 0.15, f"ODS gains {gains}"
    # the student learned the teacher's soft maps at T1 (not only a better ranking of the pixels)
    assert all(kd_err <= plain_err - 0.07 for plain_err, kd_err in errors), f"soft-map errors (plain, KD) {errors}"


# ------------------------------------------------------------------------------------------------------- HSD LD
def _gfl(name: str, seed: int) -> GFL:
    torch.manual_seed(seed)
    return build_model(name, 4, {"backbone": "mobilenet_v3_small", "channels": 32, "norm_eval": True})  # type: ignore[return-value]


def _localisation_iou(model: GFL, images: torch.Tensor, targets: list) -> float:
    """Mean IoU between the clean boxes and the boxes decoded at their ATSS positives (the output LD distils)."""
    with torch.no_grad():
        out = model.eval().forward_raw(images)
        a = model.assign(out, targets)
        reg = model.positive_reg(out, a).reshape(-1, 4 * (model.reg_max + 1))
        s = a.strides[:, None]
        pred = distance2bbox(a.centres / s, integral(reg, model.reg_max)) * s
    return float(aligned_iou(pred, a.pos_boxes).mean())


def test_hsd_ld_improves_a_student_trained_on_jittered_boxes():
    """HSD localisation distillation (T = 15, weight 5, released normalisation) from a GFL teacher.

    Teacher: HSD teacher (FPN neck), trained 100 steps on 32 clean 64x64 images. Students: HSD student (HKN neck), 8
    of those images with every box side moved by up to 30% of the box size, 40 AdamW steps. Metric: localisation
    IoU on 16 clean validation images. Measured (seeds 0/1/2): plain 0.316/0.407/0.286, distilled 0.334/0.441/0.344
    (gain 0.018/0.033/0.058); the test runs seeds 0 and 1. Broken distillers measured
    (seeds 0/1): teacher outputs zeroed -> gain -0.112/-0.176; T^2 dropped from the LD KL -> -0.010/-0.016; LD term
    detached -> 0.0/0.0 (the same steps as plain).
    """
    size, n_student = 64, 8
    images, targets = defect_set("train", 32, size)
    val_images, val_targets = defect_set("val", 16, size)
    classes = ["scratch", "spot", "inclusion", "patch"]
    teacher = _gfl("hsd_teacher", 100)
    fit(
        DetectionTask(teacher, classes),
        lambda i: det_batch(images[i], [targets[k] for k in i]),
        32,
        100,
        8,
        2e-3,
        0,
        "adamw",
    )
    gains = []
    for seed in SEEDS[:2]:  # two seeds: the GFL pair is the slowest of the three systems
        labels = jittered_boxes(targets[:n_student], seed, 0.3, size)
        batches = lambda i, y=labels: det_batch(images[i], [y[k] for k in i])  # noqa: E731
        plain = _gfl("hsd_student", seed)
        fit(DetectionTask(plain, classes), batches, n_student, 40, 4, 2e-3, seed, "adamw")
        distilled = _gfl("hsd_student", seed)
        kd = DISTILLERS["hsd_ld"](DetectionTask(distilled, classes), teacher, temperature=15.0, weight=5.0)
        fit(kd, batches, n_student, 40, 4, 2e-3, seed, "adamw")
        gains.append(
            _localisation_iou(distilled, val_images, val_targets) - _localisation_iou(plain, val_images, val_targets)
        )
    assert min(gains) >= 0.01 and sum(gains) / len(gains) >= 0.02, f"localisation IoU gains {gains}"


# -------------------------------------------------------------------------------------------------- DKAN FKA/LKA
def _base_class_accuracy(model, images: torch.Tensor, targets: list, num_base: int) -> float:
    """Share of the base-class objects (ground-truth boxes as RoIs) whose best foreground class is their own."""
    with torch.no_grad():
        feats = model.eval().extract_features(images)
        boxes = [t.boxes[t.labels < num_base] for t in targets]
        labels = torch.cat([t.labels[t.labels < num_base] for t in targets])
        pooled = model.roi_heads.box_roi_pool(feats, boxes, [tuple(images.shape[-2:])] * len(images))
        logits, _ = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
    return float((logits[:, 1:].argmax(1) == labels).float().mean())


def _lka_divergence(model, teacher, images: torch.Tensor, targets: list, num_base: int, tau: float = 5.0) -> float:
    """LKA's ``tau^2 KL(softmax(t / tau) || softmax(s / tau))`` (written out here, independent of the library's
    loss) between teacher and student base-class outputs on the base objects (ground-truth boxes as RoIs)."""
    from kdinspect.distill.dkan import LKA_TAP
    from kdinspect.distill.taps import FeatureTaps

    outs = []
    for net in (model, teacher):
        taps = FeatureTaps(net, [LKA_TAP])
        with torch.no_grad(), taps:
            feats = net.eval().extract_features(images)
            boxes = [t.boxes[t.labels < num_base] for t in targets]
            pooled = net.roi_heads.box_roi_pool(feats, boxes, [tuple(images.shape[-2:])] * len(images))
            net.roi_heads.box_predictor(net.roi_heads.box_head(pooled))
        outs.append(taps.outputs[LKA_TAP][:, 1 : 1 + num_base])
    log_s, log_t = (torch.log_softmax(z / tau, dim=1) for z in outs)
    return float((log_t.exp() * (log_t - log_s)).sum(1).mean() * tau**2)


def test_dkan_keeps_the_base_classes_of_a_few_shot_student():
    """DKAN fine-tuning (FKA tau 1 weight 5 on P2..P5 + LKA tau 5, aligned RoIs, weight 1) from the base detector.

    Base detector (the teacher): tiny Faster R-CNN trained 200 steps on the 2 base classes (scratch, spot) of 96
    64x64 images (novel boxes removed). Students: the widened detector with a cosine classifier (DKAN freeze: backbone
    frozen), fine-tuned 40 steps on 5 images (every one of the 4 classes in >= 2 of them). Metric: base-class
    accuracy of the 59 base objects of 64 validation images (base detector: 0.88). Measured (seeds 0/1/2): plain
    0.288/0.339/0.186 (forgetting), distilled 0.627/0.525/0.661 (gain 0.34/0.19/0.47); the test runs seeds 0 and 1.
    The price is novel-class accuracy (0.77/0.95 plain -> 0.45/0.62 distilled), not asserted here. LKA weight 1
    and aligned RoIs instead of the released 0.01 / unaligned: with those (24 validation images) the gains were
    +0.18/-0.14/0.00, not a consistent effect. A second check: the distilled student's softened base-class outputs
    are closer to the teacher's (LKA's KL at tau 5, written out in the test) than the plain student's (ratio <= 0.9).
    """
    from tests.helpers.tiny_detector import tiny_faster_rcnn

    from kdinspect.data.structures import DetTarget
    from kdinspect.tasks.incremental import build_incremental_pair

    size, num_base = 64, 2
    images, targets = defect_set("train", 96, size)
    val_images, val_targets = defect_set("val", 64, size)
    base_targets = [DetTarget(t.boxes[t.labels < num_base], t.labels[t.labels < num_base]) for t in targets]
    base = tiny_faster_rcnn(num_base, seed=100)
    fit(
        DetectionTask(base, ["scratch", "spot"]),
        lambda i: det_batch(images[i], [base_targets[k] for k in i]),
        len(images),
        200,
        8,
        2e-3,
        0,
        "adamw",
    )
    assert _base_class_accuracy(base, val_images, val_targets, num_base) > 0.8
    shots, count = [], [0] * 4  # the first images that bring every class into >= 2 images
    for i, t in enumerate(targets):
        present = set(t.labels.tolist())
        if any(count[c] < 2 for c in present):
            shots.append(i)
            for c in present:
                count[c] += 1
        if min(count) >= 2:
            break
    shot_images, shot_targets = images[shots], [targets[i] for i in shots]
    classes = ["scratch", "spot", "inclusion", "patch"]
    gains, divergences = [], []
    for seed in SEEDS[:2]:
        accuracy, divergence = [], []
        for distil in (False, True):
            teacher, student = build_incremental_pair(base, 2, cosine_scale=20.0, freeze="dkan", seed=seed)
            task = DetectionTask(student, classes)
            if distil:
                task = DISTILLERS["dkan"](task, teacher, num_base_classes=num_base, lka_weight=1.0, lka_mode="aligned")
            torch.manual_seed(seed)
            fit(
                task,
                lambda i: det_batch(shot_images[i], [shot_targets[k] for k in i]),
                len(shots),
                40,
                4,
                2e-3,
                seed,
                "adamw",
            )
            accuracy.append(_base_class_accuracy(student, val_images, val_targets, num_base))
            divergence.append(_lka_divergence(student, teacher, val_images, val_targets, num_base))
        gains.append(accuracy[1] - accuracy[0])
        divergences.append(tuple(divergence))
    assert min(gains) >= 0.1 and sum(gains) / len(gains) >= 0.15, f"base-class accuracy gains {gains}"
    # the student follows the teacher's softened base-class outputs, not only its argmax
    assert all(kd <= 0.9 * plain for plain, kd in divergences), f"LKA divergence (plain, KD) {divergences}"
