"""Pack / unpack the results of a remote ``python -m benchmarks.mcff`` run (used through its ``--pack / --unpack``).

The archive holds each job's small files (``results.json``, ``config.yaml``, ``env.json``, ``steps.csv``, logs), the
work folder's ``jobs.json`` / ``train_env.json``, and the trained weights of every row except the teacher, slimmed to
the model tensors in float16 (optimizer and RNG state dropped; the checkpoint header is kept, so
``kdinspect.engine.checkpoint.load_model`` loads them into the float32 model). The teacher (32.9 M parameters) is too
big to ship: only its checkpoint header comes back, and ``unpack`` rebuilds the same architecture with seeded random
weights (``arch_untrained.safetensors``) for the parameter / GFLOPs / latency measurement, which do not depend on the
weight values. Its test metrics come from ``results.json`` (computed on the training machine with the trained weights).
Archives over ``max_part_bytes`` are split into ``<stem>.partK<suffix>`` files.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

log = logging.getLogger(__name__)

SMALL_SUFFIXES = (".json", ".yaml", ".csv", ".log", ".txt", ".md")
SMALL_MAX_BYTES = 2 << 20
TEACHER_HEADER = "teacher_header.json"
ARCH_CKPT = "arch_untrained.safetensors"


def slim_checkpoint(src: Path) -> bytes:
    """The bytes of a copy of ``src`` with only the ``model.*`` tensors (floating ones in float16) and its header."""
    with safe_open(str(src), framework="pt", device="cpu") as fh:
        meta = dict(fh.metadata() or {})
        tensors = {}
        for k in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
            if k.startswith("model."):
                t = fh.get_tensor(k)
                tensors[k] = t.half() if t.is_floating_point() else t
    state = json.loads(meta["kdinspect"])
    for key in ("optimizer", "rng"):
        state.pop(key, None)
    state["slimmed"] = "model tensors only, float16"
    meta["kdinspect"] = json.dumps(state)
    tmp = src.with_suffix(".slim.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def _members(work: Path, teacher_row: str) -> list[tuple[str, bytes]]:
    out = []
    for f in sorted(work.rglob("*")):
        rel = f.relative_to(work)
        if not f.is_file() or rel.parts[0] in ("softlabels", "onnx", "predict"):
            continue
        if f.suffix in SMALL_SUFFIXES and f.stat().st_size <= SMALL_MAX_BYTES and "eval" not in rel.parts[:-1]:
            out.append((rel.as_posix(), f.read_bytes()))
        elif f.name == "best.safetensors" and rel.parts[0] == "runs":
            if rel.parts[1] == teacher_row:
                with safe_open(str(f), framework="pt", device="cpu") as fh:
                    header = (fh.metadata() or {})["kdinspect"]
                out.append(((rel.parent / TEACHER_HEADER).as_posix(), header.encode()))
            else:
                out.append((rel.as_posix(), slim_checkpoint(f)))
    return out


def pack(work: Path, dest: Path, teacher_row: str, max_part_bytes: int = 15 << 20) -> list[Path]:
    """Write ``work``'s results (see the module docstring) to one or more gzip tar files; returns their paths."""
    members = _members(work, teacher_row)
    if not members:
        raise ValueError(f"{work}: nothing to pack (no finished or started jobs)")
    parts: list[list[tuple[str, bytes]]] = [[]]
    size = 0
    for name, data in members:
        if parts[-1] and size + len(data) + 1024 > max_part_bytes:
            parts.append([])
            size = 0
        parts[-1].append((name, data))
        size += len(data) + 1024
    dest.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, part in enumerate(parts):
        path = dest if k == 0 else dest.with_name(f"{dest.stem}.part{k}{dest.suffix}")
        with tarfile.open(path, "w:gz") as tar:
            for name, data in part:
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), int(time.time())
                tar.addfile(info, io.BytesIO(data))
        paths.append(path)
        log.info("packed %d files into %s (%.1f MiB)", len(part), path, path.stat().st_size / 2**20)
    return paths


def unpack(archives: list[Path], work: Path, teacher_row: str) -> list[str]:
    """Extract archives (files or folders of ``*.tar``) into ``work`` (which must hold no ``runs/`` yet) and write
    the teacher's architecture-only checkpoint; returns the extracted member names."""
    if (work / "runs").exists():
        raise ValueError(f"{work / 'runs'} exists: unpack into a fresh --work folder")
    files = []
    for a in archives:
        found = sorted(a.glob("*.tar")) if a.is_dir() else [a]
        if not found or not all(f.is_file() for f in found):
            raise ValueError(f"{a}: no archive found")
        files += found
    names = []
    for f in files:
        with tarfile.open(f, "r:*") as tar:
            bad = [m.name for m in tar.getmembers() if not m.isfile() or m.name.startswith("/") or ".." in m.name]
            if bad:
                raise ValueError(f"{f}: unexpected archive members {bad[:5]}")
            tar.extractall(work, filter="data")
            names += tar.getnames()
    header = work / "runs" / teacher_row / TEACHER_HEADER
    if header.is_file():
        arch_checkpoint(header.read_text(), header.parent / ARCH_CKPT)
    return names


def arch_checkpoint(header: str, dest: Path, seed: int = 0) -> Path:
    """A checkpoint with ``header`` (a kdinspect checkpoint header) and the model it names at a seeded random init."""
    from kdinspect.config import config_from_dict
    from kdinspect.models import build_model

    state = json.loads(header)
    cfg = config_from_dict(state["config"])
    torch.manual_seed(seed)
    model = build_model(cfg.model.name, cfg.model.num_classes or len(state["classes"]), dict(cfg.model.params))
    state["slimmed"] = "architecture only: seeded random weights (the trained teacher stayed on the training machine)"
    tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(dest), metadata={"kdinspect": json.dumps(state)})
    return dest
