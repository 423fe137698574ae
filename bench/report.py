"""Figures and the one table the benchmark prints."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100): the smallest value with at least q % of values at or below."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Figure:
    """One line of the table: a distribution (``samples``) or one ``value``; ``met`` is None without a target."""

    key: str
    label: str
    unit: str
    samples: list[float] | None = None
    value: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def produced(self) -> bool:
        return bool(self.samples) or (self.value is not None and not math.isnan(self.value))

    @property
    def median(self) -> float | None:
        return percentile(self.samples, 50) if self.samples else None

    @property
    def p99(self) -> float | None:
        return percentile(self.samples, 99) if self.samples else None

    @property
    def max(self) -> float | None:
        return max(self.samples) if self.samples else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("samples")
        data.update(
            n=len(self.samples) if self.samples else None,
            median=self.median,
            p99=self.p99,
            max=self.max,
            produced=self.produced,
        )
        return data


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def get(self, key: str) -> Figure:
        return next(figure for figure in self.figures if figure.key == key)

    def as_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "figures": [figure.as_dict() for figure in self.figures]}

    def table(self) -> str:
        headers = ["figure", "n", "median", "p99", "max", "value", "target", "met"]
        rows = []
        for f in self.figures:
            rows.append(
                [
                    f.label,
                    str(len(f.samples)) if f.samples else "",
                    _fmt(f.median, f.unit),
                    _fmt(f.p99, f.unit),
                    _fmt(f.max, f.unit),
                    _fmt(f.value, f.unit),
                    f.target,
                    {True: "yes", False: "NO", None: ""}[f.met],
                ]
            )
        widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
        numeric = {1, 2, 3, 4, 5}

        def line(cells: list[str]) -> str:
            return (
                "| "
                + " | ".join(
                    cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(cells)
                )
                + " |"
            )

        out = [
            line(headers),
            "|" + "|".join(("-" * (w + 1)) + (":" if i in numeric else "-") for i, w in enumerate(widths)) + "|",
        ]
        out.extend(line(row) for row in rows)
        notes = [f"  {f.label}: {f.note}" for f in self.figures if f.note]
        return "\n".join(out + ([""] + notes if notes else []))


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if unit == "ms":
        return f"{value * 1000:.1f} ms"  # values are kept in seconds
    if unit == "us":
        return f"{value * 1e6:.0f} µs"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value / 1e6:.1f} MB"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "count":
        return f"{value:g}"
    return f"{value:.3g}{(' ' + unit) if unit else ''}"


def machine() -> dict[str, Any]:
    """The facts printed above the table."""
    try:
        import psutil

        usable = len(psutil.Process().cpu_affinity() or []) or None
    except (ImportError, AttributeError, OSError):
        usable = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "processor": platform.machine(),
    }
