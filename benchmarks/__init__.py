"""kdinspect's benchmarks, one module per benchmark, each run from the repository root as a module:

    python -m benchmarks.hsd --dataset neu-det
    python -m benchmarks.mcff --dataset deepcrack
    python -m benchmarks.dkan
    python -m benchmarks.deploy

kdinspect itself comes from the installed package (``make install``: an editable install). What every benchmark
shares lives in :mod:`benchmarks.common`: the job runner (``jobs``), the ONNX Runtime latency and FLOPs count
(``measure``) and the results writer (``results``).
"""
