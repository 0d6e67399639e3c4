"""The published numbers fer-bench is compared against (LA-Net, ICCV 2023, and its supplementary).

Accuracy in percent, ResNet-18 pretrained on MS-Celeb-1M. ``SYMMETRIC`` is
LA-Net's Table 1 (its Baseline/SCN/RUL/EAC rows come from the EAC paper and
have no std); ``ASYMMETRIC`` is the supplementary's Table 1, where the LA-Net
authors reproduced the peers. ``USER_STUDY`` is the supplementary's Table 2 (JS
divergence to 50 AffectNet images' user-study distributions).
"""

from __future__ import annotations

from typing import Optional

DATASETS = ("rafdb", "ferplus", "affectnet")
METHODS = ("baseline", "scn", "rul", "eac", "lanet")
Cell = tuple[float, Optional[float]]  # mean, std


def _rows(text: str) -> dict[tuple[float, str, str], Cell]:
    """Parse ``rate method v_rafdb v_ferplus v_affectnet`` lines; a value is ``m`` or ``m±s``."""
    table = {}
    for line in text.strip().splitlines():
        rate, method, *values = line.split()
        for dataset, value in zip(DATASETS, values):
            mean, _, std = value.partition("±")
            table[(float(rate), method, dataset)] = (float(mean), float(std) if std else None)
    return table


SYMMETRIC = _rows("""
0.1 baseline 81.01 83.29 57.24
0.1 scn 82.18 84.28 58.58
0.1 rul 86.17 86.93 60.54
0.1 eac 88.02 87.03 61.11
0.1 lanet 88.75±0.11 88.02±0.08 62.85±0.13
0.2 baseline 77.98 82.34 55.89
0.2 scn 80.10 83.17 57.25
0.2 rul 84.32 85.05 59.01
0.2 eac 86.05 86.07 60.29
0.2 lanet 87.12±0.16 86.85±0.14 61.72±0.21
0.3 baseline 75.50 79.77 52.16
0.3 scn 77.46 82.47 55.05
0.3 rul 82.06 83.90 56.93
0.3 eac 84.42 85.44 58.91
0.3 lanet 85.33±0.18 86.01±0.19 60.82±0.21
""")

ASYMMETRIC = _rows("""
0.1 baseline 80.93±0.49 82.98±0.09 57.05±0.26
0.1 scn 81.55±0.28 83.02±0.16 58.49±0.33
0.1 rul 85.53±0.32 85.12±0.29 60.09±0.10
0.1 eac 87.44±0.18 86.11±0.14 61.03±0.15
0.1 lanet 88.53±0.20 87.21±0.12 62.45±0.17
0.2 baseline 75.62±0.39 80.97±0.27 55.91±0.19
0.2 scn 79.53±0.42 82.03±0.09 57.03±0.09
0.2 rul 83.55±0.29 83.76±0.14 58.45±0.21
0.2 eac 85.09±0.31 84.61±0.28 59.85±0.29
0.2 lanet 86.31±0.21 85.44±0.17 61.58±0.18
0.3 baseline 70.38±0.62 76.09±0.29 50.84±0.30
0.3 scn 74.29±0.39 80.27±0.17 54.56±0.21
0.3 rul 78.78±0.44 80.99±0.14 56.08±0.11
0.3 eac 79.62±0.18 82.09±0.11 58.50±0.19
0.3 lanet 81.03±0.24 83.62±0.16 60.19±0.22
""")

USER_STUDY = {"one-hot labels": 0.2030, "LA-Net label distributions": 0.0909}


def published(noise: str, rate: float, method: str, dataset: str) -> Optional[Cell]:
    """The paper's (mean, std) for a cell, or None where the paper has no such number."""
    table = {"sym": SYMMETRIC, "asym": ASYMMETRIC}.get(noise, {})
    return table.get((round(rate, 4), method, dataset.split("+")[0]))
