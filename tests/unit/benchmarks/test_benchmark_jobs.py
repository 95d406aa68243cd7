"""The benchmarks hand their jobs to the shared runner: commands are ``python -m`` modules run from the repo root,
dependencies are ``after`` edges, done files are the jobs' result files."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

from benchmarks import dkan, hsd, mcff
from benchmarks.common import REPO

from kdinspect.fewshot import load_protocol


def test_dkan_jobs_are_kdinspect_fewshot_processes_after_their_base(tmp_path: Path) -> None:
    pf = load_protocol(REPO / "configs" / "dkan" / "neu_cpu.yaml", [f"protocol.out_dir={tmp_path}"])
    args = Namespace(config="configs/dkan/neu_cpu.yaml", overrides=[f"protocol.out_dir={tmp_path}"])
    jobs = dkan.runner_jobs(pf, args)
    assert [j.name for j in jobs[:3]] == ["base-s1", "base-s2", "base-s3"] and all(not j.after for j in jobs[:3])
    ft = next(j for j in jobs if j.name.startswith("dkan-s2-"))
    assert ft.after == ("base-s2",) and ft.done == ft.work / "result.json" and ft.work.is_relative_to(tmp_path)
    assert ft.cmd[:4] == [sys.executable, "-m", "kdinspect", "fewshot"] and ft.cmd[-2:] == ["--job", ft.name]
    assert ["--set", f"protocol.out_dir={tmp_path}"] == ft.cmd[6:8]


def test_hsd_jobs_rerun_the_module_and_wait_for_their_teacher() -> None:
    args = hsd.parse_args(["--dataset", "deeppcb", "--smoke", "4", "--epochs", "1"])
    jobs = {j.name: j for j in hsd.runner_jobs(args)}
    assert sorted(jobs) == ["student_hsd_s0", "student_s0", "teacher_s0"]
    j = jobs["student_hsd_s0"]
    assert j.after == ("teacher_s0",) and j.done == j.work / "row.json"
    assert j.cmd[:3] == [sys.executable, "-m", "benchmarks.hsd"] and j.cmd[-2:] == ["--job", "student_hsd_s0"]
    assert args.argv[:3] == ["python", "-m", "benchmarks.hsd"]


def test_mcff_jobs_resume_and_soft_label_shards_have_their_own_folders(tmp_path: Path) -> None:
    jobs = {j.name: j for j in mcff._jobs("deepcrack", tmp_path, ["teacher", "student_kd_standard"], [], "")}
    kd, s0, s1 = jobs["deepcrack_student_kd_standard"], jobs["deepcrack_softlabels_0"], jobs["deepcrack_softlabels_1"]
    assert kd.after == ("deepcrack_softlabels_0", "deepcrack_softlabels_1") and s0.after == ("deepcrack_teacher",)
    assert s0.work != s1.work  # one running marker per job
    assert kd.resume == ("--resume",) and kd.partial == tmp_path / "runs" / kd.name / "last.safetensors"
    assert kd.cmd[:4] == [sys.executable, "-m", "kdinspect", "train"]
    # the teacher is not trained in this run: the shards do not wait for a job that is not there
    alone = {j.name: j for j in mcff._jobs("deepcrack", tmp_path, ["student_kd_standard"], [], "")}
    assert alone["deepcrack_softlabels_0"].after == ()
