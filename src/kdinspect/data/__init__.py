"""Data: readers (``DATASETS``), paired transforms, datasets, collate, synthetic data and dataset checks.

Every reader has the signature ``reader(root, split, classes=None, **params) -> DatasetIndex``; ``data.params`` in
the run YAML go to the reader (except the transform keys ``hflip``, ``vflip``, ``jitter``, ``resize``, ``scales``,
``max_size``, and the reference keys ``reference``, ``align`` and ``reference_perturb``: docs/template.md).
"""

from __future__ import annotations

from kdinspect.data.build import build_dataset, build_datasets, build_transform, read_split, read_splits
from kdinspect.data.datasets import DetectionDataset, SegmentationDataset, SkippedSample, collate
from kdinspect.data.deeppcb import DEEPPCB_CLASSES, read_deeppcb
from kdinspect.data.detection import read_coco, read_yolo
from kdinspect.data.fewshot import NEU_CLASSES, NEU_SPLITS, filter_classes, load_kshot, read_neu_fewshot
from kdinspect.data.io import ImageReadError, load_image, load_mask
from kdinspect.data.segmentation import read_crackforest, read_deepcrack, read_masks
from kdinspect.data.structures import (
    Batch,
    DatasetIndex,
    DetRecord,
    DetTarget,
    ImageMeta,
    Problem,
    Sample,
    SegRecord,
    SegTarget,
)
from kdinspect.data.synthetic import (
    SYNTHETIC_DET_CLASSES,
    generate_detection_dataset,
    generate_segmentation_dataset,
    read_synthetic_det,
    read_synthetic_seg,
)
from kdinspect.data.transforms import DetectionTransform, SegmentationTransform
from kdinspect.data.voc import read_voc

DATASETS = {
    "voc": read_voc,
    "coco": read_coco,
    "yolo": read_yolo,
    "deeppcb": read_deeppcb,
    "neu-fewshot": read_neu_fewshot,
    "masks": read_masks,
    "deepcrack": read_deepcrack,
    "crackforest": read_crackforest,
    "synthetic-det": read_synthetic_det,
    "synthetic-seg": read_synthetic_seg,
}

__all__ = [
    "DATASETS",
    "DEEPPCB_CLASSES",
    "NEU_CLASSES",
    "NEU_SPLITS",
    "SYNTHETIC_DET_CLASSES",
    "Batch",
    "DatasetIndex",
    "DetRecord",
    "DetTarget",
    "DetectionDataset",
    "DetectionTransform",
    "ImageMeta",
    "ImageReadError",
    "Problem",
    "Sample",
    "SegRecord",
    "SegTarget",
    "SegmentationDataset",
    "SegmentationTransform",
    "SkippedSample",
    "build_dataset",
    "build_datasets",
    "build_transform",
    "collate",
    "filter_classes",
    "generate_detection_dataset",
    "generate_segmentation_dataset",
    "load_image",
    "load_kshot",
    "load_mask",
    "read_coco",
    "read_crackforest",
    "read_deepcrack",
    "read_deeppcb",
    "read_masks",
    "read_neu_fewshot",
    "read_split",
    "read_splits",
    "read_synthetic_det",
    "read_synthetic_seg",
    "read_voc",
    "read_yolo",
]
