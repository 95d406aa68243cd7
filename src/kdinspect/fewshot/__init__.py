"""Incremental few-shot detection (DKAN): fine-tuning from a base detector, the NEU-DET protocol, add-classes."""

from kdinspect.fewshot.finetune import METHODS, FinetuneResult, MethodSpec, evaluate_incremental, finetune
from kdinspect.fewshot.paper import PAPER_TABLE_I, paper_row
from kdinspect.fewshot.protocol import Job, ProtocolFile, load_protocol, protocol_jobs, run_job, run_protocol
from kdinspect.fewshot.report import aggregate, markdown_table, summarize

__all__ = [
    "METHODS",
    "PAPER_TABLE_I",
    "FinetuneResult",
    "Job",
    "MethodSpec",
    "ProtocolFile",
    "aggregate",
    "evaluate_incremental",
    "finetune",
    "load_protocol",
    "markdown_table",
    "paper_row",
    "protocol_jobs",
    "run_job",
    "run_protocol",
    "summarize",
]
