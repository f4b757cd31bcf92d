"""Bar charts drawn on the server as SVG (no script, nothing fetched): the geometry here, the
drawing in templates/chart.html, with the figures also given as a table for screen readers and for
copying. Colours are presentation attributes, which the page's style policy allows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# Distinguishable on a projector and in grey print; one per card service or outlet kind.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#79706e", "#1f77b4", "#8c564b",
)  # fmt: skip
# Drawn at the width of a half-page card on a 1366-pixel screen, so that text is read at its size.
LABEL_WIDTH = 210
BAR_WIDTH = 330
ROW_HEIGHT = 26
WIDTH = LABEL_WIDTH + BAR_WIDTH + 60


@dataclass(frozen=True)
class Segment:
    key: str
    count: int
    x: float
    width: float
    colour: str


@dataclass(frozen=True)
class Bar:
    label: str
    total: int
    y: int
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    keys: list[tuple[str, str]]  # (key, colour) for the legend, in the order of the bars' segments
    height: int
    legend: bool = True  # False when each bar is its own key (the labels say it already)
    width: int = WIDTH

    @property
    def empty(self) -> bool:
        return not any(bar.total for bar in self.bars)


def stacked(rows: Sequence[tuple[str, Counter]], keys: Sequence[str]) -> Chart:
    """One bar per (label, counts), its segments in the order of `keys`, scaled to the longest bar."""
    colours = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}
    longest = max((sum(counts.values()) for _, counts in rows), default=0) or 1
    bars = []
    for i, (label, counts) in enumerate(rows):
        x, segments = float(LABEL_WIDTH), []
        for key in keys:
            if counts.get(key):
                width = BAR_WIDTH * counts[key] / longest
                segments.append(Segment(key, counts[key], x, width, colours[key]))
                x += width
        bars.append(Bar(label, sum(counts.values()), i * ROW_HEIGHT, segments))
    used = [key for key in keys if any(counts.get(key) for _, counts in rows)]
    return Chart(bars, [(key, colours[key]) for key in used], len(rows) * ROW_HEIGHT)


def simple(counts: Counter, order: Sequence[str] | None = None) -> Chart:
    """One single-colour bar per key (largest first unless `order` is given)."""
    keys = list(order) if order is not None else [key for key, _ in counts.most_common()]
    chart = stacked([(key, Counter({key: counts[key]})) for key in keys if counts.get(key)], keys)
    return Chart(chart.bars, chart.keys, chart.height, legend=False)
