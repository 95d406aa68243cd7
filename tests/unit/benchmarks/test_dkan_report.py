"""benchmarks/dkan.py: the report names the machines the jobs ran on, also when re-aggregated elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.dkan import _job_environments, _markdown

from kdinspect.fewshot import Job, load_protocol, summarize
from kdinspect.fewshot.protocol import job_dir

REPO = Path(__file__).resolve().parents[3]


def _env(cpu: str, device: str) -> dict:
    return {"cpu": cpu, "cpu_count": 16, "devices": [device], "python": "3.12.3", "packages": {"torch": "2.11.0"}}


def test_job_environments_grouped_and_rendered(tmp_path: Path) -> None:
    pf = load_protocol(REPO / "configs" / "dkan" / "neu_cpu.yaml", [f"protocol.out_dir={tmp_path}"])
    jobs = [Job("base", 1), Job("dkan", 1, 5, 1), Job("tfa", 1, 5, 1)]
    envs = [_env("Xeon", "NVIDIA H100"), _env("Xeon", "NVIDIA H100"), _env("EPYC", "cpu")]
    rows = []
    for job, env in zip(jobs, envs, strict=True):
        d = job_dir(pf, job)
        d.mkdir(parents=True)
        (d / "env.json").write_text(json.dumps(env))
        rows.append({"job": job.id, "method": job.method, "split": 1, "shots": job.shots, "seed": job.seed})
    rows.append({"job": "dkan-s2-k5-seed1", "method": "dkan", "split": 2, "restored_from": "e9ef109"})  # no folder
    got = _job_environments(pf, rows)
    assert [(e["cpu"], e["devices"], e["jobs"]) for e in got] == [("Xeon", ["NVIDIA H100"], 2), ("EPYC", ["cpu"], 1)]
    assert got[0]["torch"] == "2.11.0" and got[0]["torchvision"] == "?"

    fine = [r | {"ap_base": 0.6, "ap_novel": 0.3, "ap_all": 0.45} for r in rows[1:3]]
    base = [rows[0] | {"ap_base": 0.7, "coco_map": 0.3, "train_s": 10.0}]
    doc = summarize([*base, *fine]) | {
        "command": "x",
        "git_commit": "abc",
        "environment": _env("EPYC", "cpu"),
        "threads_per_job": 1,
        "workers": 2,
        "setup": "s",
        "seeds": [1],
        "finished_jobs": 3,
        "total_jobs": 57,
        "job_wall_s_total": 1.0,
        "bench_wall_s": 1.0,
        "peak_rss_mb": 1.0,
        "dkan_minus_tfa": [],
        "job_environments": got,
    }
    md = _markdown(doc)
    assert "Jobs ran on: Xeon x16 (NVIDIA H100), torch 2.11.0, torchvision ?, python 3.12.3: 2 jobs" in md
    assert "Hardware (where this report ran): EPYC (cpu)" in md


def test_switch_comparison_pairs_rows_of_the_same_split_k_seed() -> None:
    import pytest
    from benchmarks.dkan_switch import _markdown as switch_markdown
    from benchmarks.dkan_switch import compare

    def row(split: int, seed: int, ap_all: float, **extra: object) -> dict:
        return {"method": "dkan", "split": split, "shots": 5, "seed": seed, "ap_base": 0.7, "ap_novel": 0.2,
                "ap_all": ap_all, "wall_s": 100.0, **extra}  # fmt: skip

    default = {"rows": [row(3, 1, 0.50), row(3, 2, 0.40), row(1, 1, 0.30, restored_from="e9ef109")]}
    switched = {"rows": [row(3, 1, 0.52), row(3, 2, 0.39), row(1, 1, 0.35), row(2, 1, 0.1)]}
    doc = compare(default, switched)
    assert doc["n_pairs"] == 2  # split 1 is carried over in the default run, split 2 only switched
    assert [round(p["d_ap_all"], 4) for p in doc["pairs"]] == [0.02, -0.01]
    assert doc["summary"]["d_ap_all_mean"] == pytest.approx(0.005) and doc["summary"]["switched_better_ap_all"] == 1
    md = switch_markdown(doc | {"switch": "x", "command": "c", "git_commit": "g", "default": "a", "switched": "b"})
    assert "| 3 | 5 | 1 | 0.7000 / 0.7000 | 0.2000 / 0.2000 | 0.5000 / 0.5200 | +0.0200 | 100 / 100 |" in md
    assert "(2 pairs of dkan rows" in md and "in 1 of 2 pairs." in md
    one = compare(default, {"rows": [row(3, 1, 0.52)]})
    md1 = switch_markdown(one | {"switch": "x", "command": "c", "git_commit": "g", "default": "a", "switched": "b"})
    assert "(1 pair of dkan rows" in md1 and "in 1 of 1 pair." in md1
    with pytest.raises(ValueError, match="no dkan rows in common"):
        compare(default, {"rows": [row(2, 1, 0.1)]})
