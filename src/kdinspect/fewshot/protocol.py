"""The NEU-DET incremental few-shot protocol of DKAN: base training per class split, then fine-tuning for every
requested K and seed and method, then a table of mean and std over seeds beside the paper's Table I.

A protocol file is one YAML with three sections (``protocol``, ``base``, ``finetune``); ``base`` and ``finetune`` are
ordinary run configs whose data section is filled in per job (format ``neu-fewshot``, the split's classes, the K-shot
list of the seed, the test split). Jobs are independent processes' worth of work with stable ids
(``base-s1``, ``dkan-s1-k5-seed1``); a finished job leaves ``result.json`` in its run folder and is skipped when the
protocol runs again, so a protocol can be resumed. ``kdinspect fewshot`` runs the jobs one after the other in its own
process (``run_protocol``) or only the named ones (``--job ID``, ``run_job``); running them as parallel processes is
the benchmark's job (``python -m benchmarks.dkan``, with the benchmarks' shared job runner).
"""

from __future__ import annotations

import copy
import json
import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdinspect.config import RunConfig, apply_overrides, section_from_dict
from kdinspect.fewshot.finetune import METHODS, SELECTIONS, finetune
from kdinspect.utils.io import write_json

__all__ = [
    "Job",
    "ProtocolConfig",
    "ProtocolFile",
    "collect_results",
    "job_dir",
    "load_protocol",
    "protocol_jobs",
    "run_job",
    "run_protocol",
]

logger = logging.getLogger(__name__)


@dataclass
class ProtocolConfig:
    root: str = "../shared/datasets/neu-det"  # NEU-DET folder (IMAGES/, ANNOTATIONS/, splits/, fewshot_split/)
    splits: list[int] = field(default_factory=lambda: [1, 2, 3])  # DKAN class splits
    shots: list[int] = field(default_factory=lambda: [5, 10, 30])  # K
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])  # few-shot split-file seeds (1..10)
    methods: list[str] = field(default_factory=lambda: ["dkan", "tfa"])  # kdinspect.fewshot.METHODS keys
    select: str = "last"  # last | best ("paper protocol": best AP_All on the test set, evaluated every eval_every)
    eval_every: int = 2000  # iterations between evaluations when select = best
    init_seed: int = 0  # seed of the random novel rows of the head surgery
    cap: str = "random"  # K-shot box cap rule of the neu-fewshot reader (random | first)
    out_dir: str = "runs/fewshot"  # protocol folder: base/, finetune/, results.json


@dataclass
class ProtocolFile:
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    base: RunConfig = field(default_factory=RunConfig)  # stage I run config (data filled per split)
    finetune: RunConfig = field(default_factory=RunConfig)  # stage II run config (data and model filled per job)


@dataclass(frozen=True)
class Job:
    """One unit of protocol work: a base training (``method == "base"``) or one fine-tuning run."""

    method: str
    split: int
    shots: int = 0
    seed: int = 0

    @property
    def id(self) -> str:
        return (
            f"base-s{self.split}"
            if self.method == "base"
            else f"{self.method}-s{self.split}-k{self.shots}-seed{self.seed}"
        )

    @classmethod
    def parse(cls, job_id: str) -> Job:
        """Inverse of :attr:`id`."""
        parts = job_id.split("-")
        try:
            if parts[0] == "base" and len(parts) == 2:
                return cls("base", int(parts[1].removeprefix("s")))
            method, split, shots, seed = parts
            return cls(
                method, int(split.removeprefix("s")), int(shots.removeprefix("k")), int(seed.removeprefix("seed"))
            )
        except ValueError as err:
            raise ValueError(f"bad job id {job_id!r}; expected base-s1 or dkan-s1-k5-seed1") from err


def load_protocol(path: str | Path, overrides: list[str] | None = None) -> ProtocolFile:
    """Read a protocol YAML (sections ``protocol``, ``base``, ``finetune``) and apply dotted overrides
    (``protocol.seeds=[1]``, ``finetune.train.max_iters=100``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"protocol file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    pf = apply_overrides(section_from_dict(ProtocolFile, data, base_dir=path.parent), overrides)
    _validate(pf.protocol)
    return pf


def _validate(p: ProtocolConfig) -> None:
    from kdinspect.data.fewshot import NEU_SPLITS

    bad_methods = sorted(set(p.methods) - set(METHODS))
    if bad_methods:
        raise KeyError(f"protocol.methods {bad_methods} unknown; valid: {sorted(METHODS)}")
    bad_splits = sorted(set(p.splits) - set(NEU_SPLITS))
    if bad_splits:
        raise KeyError(f"protocol.splits {bad_splits} unknown; valid: {sorted(NEU_SPLITS)}")
    if p.select not in SELECTIONS:
        raise ValueError(f"protocol.select {p.select!r} not in {list(SELECTIONS)}")


def protocol_jobs(pf: ProtocolFile) -> list[Job]:
    """Every job of the protocol: the base trainings first, then fine-tunings by split, K, seed and method."""
    p = pf.protocol
    jobs = [Job("base", s) for s in p.splits]
    jobs += [Job(m, s, k, seed) for s in p.splits for k in p.shots for seed in p.seeds for m in p.methods]
    return jobs


def job_dir(pf: ProtocolFile, job: Job) -> Path:
    """Run folder of a job under ``protocol.out_dir``."""
    out = Path(pf.protocol.out_dir)
    if job.method == "base":
        return out / "base" / f"split{job.split}"
    return out / "finetune" / job.method / f"split{job.split}" / f"{job.shots}shot" / f"seed{job.seed}"


def base_run_config(pf: ProtocolFile, split: int) -> RunConfig:
    """Stage-I config of a split: the split's base classes, trainval images that hold one, the full test split."""
    from kdinspect.data.fewshot import split_classes

    cfg = copy.deepcopy(pf.base)
    cfg.task = "detection"
    cfg.data.format = "neu-fewshot"
    cfg.data.root = pf.protocol.root
    cfg.data.train, cfg.data.val = "trainval", "test"
    cfg.data.classes = split_classes(split, "base")
    cfg.data.params = dict(cfg.data.params) | {"drop_empty": ["trainval"]}
    run_dir = job_dir(pf, Job("base", split))
    cfg.train.out_dir, cfg.train.name = str(run_dir.parent), run_dir.name
    return cfg


def finetune_run_config(pf: ProtocolFile, job: Job) -> RunConfig:
    """Stage-II config of a job: K shots per class of the seed's split files, all classes, the test split."""
    from kdinspect.data.fewshot import split_classes

    cfg = copy.deepcopy(pf.finetune)
    cfg.task = "detection"
    cfg.data.format = "neu-fewshot"
    cfg.data.root = pf.protocol.root
    cfg.data.train, cfg.data.val = f"seed{job.seed}_{job.shots}shot", "test"
    cfg.data.classes = split_classes(job.split, "all")
    cfg.data.params = dict(cfg.data.params) | {"cap": pf.protocol.cap}
    if METHODS[job.method].distill:
        cfg.distill.params = {"split": job.split} | dict(cfg.distill.params)
    else:
        cfg.distill.params = {}
    run_dir = job_dir(pf, job)
    cfg.train.out_dir, cfg.train.name = str(run_dir.parent), run_dir.name
    return cfg


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_job(pf: ProtocolFile, job: Job, progress: bool = False) -> dict[str, Any]:
    """Run one job unless its ``result.json`` exists; return its result row."""
    out = job_dir(pf, job) / "result.json"
    if out.exists():
        logger.info("%s: already done (%s)", job.id, out)
        return json.loads(out.read_text())
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    row = _run_job(pf, job, progress)
    row |= {"job": job.id, "wall_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(_peak_rss_mb(), 1)}
    write_json(out, row)
    return row


def _run_job(pf: ProtocolFile, job: Job, progress: bool) -> dict[str, Any]:
    if job.method == "base":
        row = _run_base(pf, job, progress)
    else:
        base_ckpt = job_dir(pf, Job("base", job.split)) / "last.safetensors"
        if not (base_ckpt.parent / "result.json").exists():
            raise FileNotFoundError(f"{job.id} needs the finished base training of split {job.split} ({base_ckpt})")
        p = pf.protocol
        res = finetune(
            finetune_run_config(pf, job), base_ckpt, job.method, p.init_seed, p.select, p.eval_every, progress
        )
        m = res.metrics
        row = {
            "method": job.method,
            "split": job.split,
            "shots": job.shots,
            "seed": job.seed,
            "ap_base": m["ap_base"],
            "ap_novel": m["ap_novel"],
            "ap_all": m["ap_all"],
            "coco_map": m["coco_mAP"],
            "coco_map50": m["coco_mAP50"],
            "checkpoint": res.checkpoint.name,
            "train_s": round(res.train_s, 1),
            "eval_s": round(res.eval_s, 1),
        }
    return row


def _run_base(pf: ProtocolFile, job: Job, progress: bool) -> dict[str, Any]:
    from kdinspect.api import build_loader, train
    from kdinspect.data import build_dataset
    from kdinspect.engine.checkpoint import load_model
    from kdinspect.fewshot.finetune import evaluate_incremental
    from kdinspect.tasks.detection import DetectionTask

    cfg = base_run_config(pf, job.split)
    result = train(cfg, progress=progress)
    t0 = time.perf_counter()
    loaded = load_model(result.last, cfg.train.device)
    ds = build_dataset(cfg.data, "val", "detection", train=False, seed=cfg.train.seed)
    loader = build_loader(ds, cfg.train.batch_size, False, cfg.train.seed, cfg.data.workers)
    m = evaluate_incremental(DetectionTask(loaded.model, loaded.classes), loader, len(loaded.classes), cfg.train.device)
    return {
        "method": "base",
        "split": job.split,
        "shots": 0,
        "seed": 0,
        "ap_base": m["ap_base"],
        "coco_map": m["coco_mAP"],
        "coco_map50": m["coco_mAP50"],
        "checkpoint": result.last.name,
        "train_s": round(result.wall_s, 1),
        "eval_s": round(time.perf_counter() - t0, 1),
    }


def collect_results(pf: ProtocolFile) -> list[dict[str, Any]]:
    """Result rows of every finished job of the protocol (unfinished ones are listed in the log)."""
    rows, missing = [], []
    for job in protocol_jobs(pf):
        path = job_dir(pf, job) / "result.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
        else:
            missing.append(job.id)
    if missing:
        logger.warning("%d job(s) not finished: %s", len(missing), ", ".join(missing[:10]))
    return rows


def run_protocol(pf: ProtocolFile, only: list[str] | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Run the protocol's jobs in order (or only the named job ids), then write ``<out_dir>/results.json`` with the
    rows, the mean/std table and the paper's numbers; return the rows."""
    from kdinspect.fewshot.report import summarize

    jobs = protocol_jobs(pf)
    if only:
        known = {j.id for j in jobs}
        unknown = sorted(set(only) - known)
        if unknown:
            raise KeyError(f"job(s) {unknown} are not part of this protocol; e.g. {sorted(known)[:4]}")
        jobs = [j for j in jobs if j.id in set(only)]
    for job in jobs:
        run_job(pf, job, progress)
    rows = collect_results(pf)
    write_json(Path(pf.protocol.out_dir) / "results.json", summarize(rows, pf.protocol.select))
    return rows
