"""Safety checks before a run continues from ``last.safetensors``: same settings, no stale temporary files.

A resumed run must train what its checkpoint was trained with; a changed ``train.lr`` or ``train.epochs`` is refused
(listing the changed keys) unless the caller allows it, and then the change is recorded in ``resume_changes.json``.
Settings of the machine rather than of the training (:data:`MACHINE_KEYS`) may always change.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from kdinspect.config import RunConfig, config_from_dict
from kdinspect.engine.checkpoint import CheckpointError
from kdinspect.utils.io import write_json

__all__ = ["MACHINE_KEYS", "ResumeConfigError", "check_resume_config", "config_changes", "remove_stale_tmp"]

logger = logging.getLogger(__name__)

# dotted keys that may differ between a run and its resume: where and how fast it runs, not what it trains (the run
# folder is found by out_dir/name, so those two name the same folder, perhaps spelt differently)
MACHINE_KEYS = frozenset(
    {"train.resume", "train.device", "train.threads", "data.workers", "train.out_dir", "train.name"}
)


class ResumeConfigError(ValueError):
    """``--resume`` was given settings that differ from the ones the checkpoint was trained with."""


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):  # an empty mapping adds no key
            out |= _flatten(value, f"{name}.")
        else:
            out[name] = value
    return out


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """``{dotted key: [old, new]}`` for every setting that differs (:data:`MACHINE_KEYS` excepted), sorted.

    A key on one side only (a ``params`` entry added or removed) counts as a change with ``None`` on the other side.
    """
    a, b = _flatten(old), _flatten(new)
    diff = {}
    for key in sorted(set(a) | set(b)):
        if key in MACHINE_KEYS or a.get(key) == b.get(key):
            continue
        diff[key] = [a.get(key), b.get(key)]
    return diff


def _stored_state(path: Path) -> dict[str, Any]:
    """The JSON header of a checkpoint, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
        return json.loads(meta["kdinspect"])
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint header to resume ({err!r})") from err


def _with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored config with the defaults of fields added since it was written (an older kdinspect did not have them,
    and their defaults keep its behaviour); as stored when it no longer parses (a key since removed: a change)."""
    try:
        return config_from_dict(stored).to_dict()
    except (KeyError, TypeError, ValueError):
        return stored


def check_resume_config(run_dir: Path, cfg: RunConfig, allow_change: bool = False, record: bool = True) -> dict:
    """Compare ``cfg`` with the config stored in ``run_dir/last.safetensors``.

    Returns the changes (empty when none). With changes and ``allow_change`` False it raises
    :class:`ResumeConfigError` listing them; with ``allow_change`` (and ``record``) they are appended to
    ``run_dir/resume_changes.json`` with the time and the step the run resumes at.
    """
    last = run_dir / "last.safetensors"
    state = _stored_state(last)
    changes = config_changes(_with_defaults(state.get("config", {})), cfg.to_dict())
    if not changes:
        return changes
    listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())
    if not allow_change:
        raise ResumeConfigError(
            f"{run_dir}: --resume with settings that differ from the ones {last.name} was trained with: {listed}. "
            "Resume with the stored settings (they are in config.yaml), start a new run (--name), or pass "
            "--allow-change (api: train(..., allow_change=True)) to continue with the new ones; the change is then "
            "recorded in resume_changes.json"
        )
    logger.warning("resuming %s with changed settings: %s", run_dir, listed)
    if record:
        log_file = run_dir / "resume_changes.json"
        entries = json.loads(log_file.read_text()) if log_file.is_file() else []
        entries.append(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resumed_at_step": int(state.get("trainer", {}).get("global_step", 0)),
                "changes": changes,
            }
        )
        write_json(log_file, entries)
    return changes


def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Delete the temporary files a killed atomic write left in ``run_dir`` and ``run_dir/eval`` (``.<name>.*.tmp``,
    the pattern of :func:`kdinspect.utils.io.atomic_path`); returns them. Other files are never touched."""
    removed = []
    for folder in (run_dir, run_dir / "eval"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(".*.tmp")):
            if path.is_file():
                path.unlink()
                removed.append(path)
    if removed:
        names = ", ".join(map(str, removed))
        logger.warning("removed %d stale temporary file(s) of a killed write: %s", len(removed), names)
    return removed
