"""Table I of the DKAN paper (Sun et al. 2022, NEU-DET incremental few-shot detection), VOC07 AP50 as fractions.

Transcribed from the image ``resources/results.png`` of the official repository (Chan-Sun/DKAN @ 662f496), paper:
Sun, Gao, Li, Gao, arXiv:2209.00519. The paper does not state whether these are single runs or means.
"""

from __future__ import annotations

__all__ = ["PAPER_METHODS", "PAPER_TABLE_I", "paper_row"]

PAPER_METHODS = ("FsDetView", "TFA", "FSCE", "MPSR", "DKAN")

# (method, shots) -> {split: (AP_B, AP_N, AP_All)}
PAPER_TABLE_I: dict[tuple[str, int], dict[int, tuple[float, float, float]]] = {
    ("FsDetView", 5): {1: (0.6256, 0.1282, 0.3769), 2: (0.6219, 0.1174, 0.3696), 3: (0.6891, 0.0376, 0.3634)},
    ("TFA", 5): {1: (0.5947, 0.1800, 0.3873), 2: (0.6156, 0.0070, 0.3113), 3: (0.8205, 0.1342, 0.4774)},
    ("FSCE", 5): {1: (0.5860, 0.3596, 0.4729), 2: (0.6404, 0.2279, 0.4341), 3: (0.7760, 0.1652, 0.4706)},
    ("MPSR", 5): {1: (0.4228, 0.2830, 0.3529), 2: (0.5067, 0.3813, 0.4441), 3: (0.6400, 0.1621, 0.4011)},
    ("DKAN", 5): {1: (0.6501, 0.4286, 0.5394), 2: (0.7313, 0.2579, 0.4946), 3: (0.8042, 0.1963, 0.5003)},
    ("FsDetView", 10): {1: (0.6339, 0.2968, 0.4654), 2: (0.7064, 0.1677, 0.4371), 3: (0.7268, 0.1160, 0.4214)},
    ("TFA", 10): {1: (0.6209, 0.1379, 0.3794), 2: (0.7175, 0.0150, 0.3663), 3: (0.8213, 0.1571, 0.4892)},
    ("FSCE", 10): {1: (0.6281, 0.3916, 0.5098), 2: (0.7073, 0.2568, 0.4820), 3: (0.7936, 0.1915, 0.4926)},
    ("MPSR", 10): {1: (0.4051, 0.3536, 0.3793), 2: (0.5443, 0.3727, 0.4587), 3: (0.6474, 0.1903, 0.4189)},
    ("DKAN", 10): {1: (0.6355, 0.4878, 0.5617), 2: (0.7158, 0.3224, 0.5191), 3: (0.8054, 0.1986, 0.5020)},
    ("FsDetView", 30): {1: (0.6361, 0.4492, 0.5427), 2: (0.6979, 0.2518, 0.4749), 3: (0.7904, 0.2510, 0.5207)},
    ("TFA", 30): {1: (0.6466, 0.1474, 0.3970), 2: (0.7389, 0.0243, 0.3816), 3: (0.8296, 0.2174, 0.5235)},
    ("FSCE", 30): {1: (0.6232, 0.3852, 0.5042), 2: (0.6814, 0.2248, 0.4531), 3: (0.8034, 0.1615, 0.4825)},
    ("MPSR", 30): {1: (0.4697, 0.4794, 0.4745), 2: (0.6013, 0.4033, 0.5023), 3: (0.6755, 0.2863, 0.4809)},
    ("DKAN", 30): {1: (0.6474, 0.5025, 0.5750), 2: (0.7364, 0.3623, 0.5494), 3: (0.8344, 0.3231, 0.5788)},
}


def paper_row(method: str, shots: int, split: int) -> dict[str, float] | None:
    """``{"ap_base", "ap_novel", "ap_all"}`` of the paper, or None when Table I has no such entry."""
    entry = PAPER_TABLE_I.get((method, shots), {}).get(split)
    if entry is None:
        return None
    return dict(zip(("ap_base", "ap_novel", "ap_all"), entry))
