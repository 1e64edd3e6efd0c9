"""Small charts as inline SVG, drawn on the server: no script library, no CDN, works offline.

Each returns markup whose every interpolated text is escaped here, so templates insert it as is
(`|safe`)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 600, 140
PAD = 28  # room for the axis labels


def bars(counts: Sequence[int], title: str, unit: str = "per minute") -> str:
    """A bar per value, oldest left; the y axis from 0 to the largest value."""
    top = max(max(counts, default=0), 1)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(len(counts), 1)
    parts = [_frame(title, f"{top} {unit}")]
    for i, count in enumerate(counts):
        h = inner_h * count / top
        x, y = PAD + i * step, PAD + inner_h - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}"><title>{count} ({len(counts) - i} min ago)</title></rect>'
        )
    parts.append(
        f'<text class="axis" x="{PAD}" y="{HEIGHT - 8}">{len(counts)} min ago</text>'
        f'<text class="axis" x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">now</text>'
    )
    return _svg(title, parts)


def latency(rows: Sequence[tuple[str, float | None, float | None]], title: str) -> str:
    """Horizontal bars per function: p50 filled, p99 outlined, in milliseconds."""
    shown = [(name, p50 or 0.0, p99 or 0.0) for name, p50, p99 in rows if p99 is not None]
    line = 22
    height = max(len(shown), 1) * line + 2 * PAD
    top = max((p99 for _, _, p99 in shown), default=1.0) or 1.0
    label_w = 120
    inner_w = WIDTH - label_w - 2 * PAD
    parts = [_frame(title, f"{top:g} ms", height)]
    if not shown:
        parts.append(f'<text class="axis" x="{PAD}" y="{PAD + 14}">no invocations yet</text>')
    for i, (name, p50, p99) in enumerate(shown):
        y = PAD + i * line
        parts.append(
            f'<text class="label" x="{PAD}" y="{y + 14}">{escape(name)}</text>'
            f'<rect class="p99" x="{PAD + label_w}" y="{y + 3}" width="{inner_w * p99 / top:.1f}" '
            f'height="14"><title>p99 {p99:g} ms</title></rect>'
            f'<rect class="bar" x="{PAD + label_w}" y="{y + 3}" width="{inner_w * p50 / top:.1f}" '
            f'height="14"><title>p50 {p50:g} ms</title></rect>'
        )
    return _svg(title, parts, height)


def _frame(title: str, scale: str, height: int = HEIGHT) -> str:
    return (
        f'<text class="title" x="{PAD}" y="16">{escape(title)}</text>'
        f'<text class="axis" x="{WIDTH - PAD}" y="16" text-anchor="end">{escape(scale)}</text>'
        f'<line class="base" x1="{PAD}" y1="{height - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{height - PAD}"/>'
    )


def _svg(title: str, parts: Sequence[str], height: int = HEIGHT) -> str:
    body = "".join(parts)
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} '
        f'{height}" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )
