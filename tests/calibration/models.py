"""Small scenarios whose posteriors are known, for the calibration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MU0, S0 = 10.0, 2.0  # the prior of `a`
MONTHS = 12

# A stock that gains `a` each month: after 12 months it holds 12·a exactly (no noise).
# `b` is read by nothing an observation sees.
LINEAR: dict[str, Any] = {
    "name": "linear",
    "start": "2024-01",
    "months": MONTHS,
    "seed": 5,
    "parameters": {
        "a": {"dist": "normal", "mean": MU0, "sd": S0, "unit": "kg/month", "source": "test"},
        "b": {"dist": "uniform", "low": 0, "high": 1, "source": "test"},
    },
    "stocks": {"src": {"unit": "kg", "kind": "source"}, "s": {"unit": "kg", "initial": 0}},
    "flows": {"grow": {"from": "src", "to": "s", "rate": "a"}},
    "outcomes": {"s_end": {"of": "s", "stat": "final"}},
}

# One month: the stock ends at a + C·U, U ~ uniform(0.5, 1.5) the flow's noise, so the
# likelihood of an observation y with error sd σ integrates the noise in closed form:
# p(y | a) = Φ((y − a − 0.5C)/σ) − Φ((y − a − 1.5C)/σ), up to a constant.
C = 4.0
NOISY: dict[str, Any] = {
    "name": "noisy",
    "start": "2024-01",
    "months": 1,
    "seed": 5,
    "parameters": {
        "a": {"dist": "normal", "mean": MU0, "sd": S0, "unit": "kg/month", "source": "test"},
        "b": {"dist": "uniform", "low": 0, "high": 1, "source": "test"},
    },
    "stocks": {"src": {"unit": "kg", "kind": "source"}, "s": {"unit": "kg", "initial": 0}},
    "flows": {
        "grow": {"from": "src", "to": "s", "rate": "a"},
        "jitter": {
            "from": "src",
            "to": "s",
            "rate": C,
            "noise": {"dist": "uniform", "low": 0.5, "high": 1.5},
        },
    },
    "outcomes": {"s_end": {"of": "s", "stat": "final"}},
}


def write_yaml(folder: Path, name: str, data: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def observations(**targets: dict[str, Any]) -> dict[str, Any]:
    return {"observations": targets}
