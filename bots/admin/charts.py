"""Charts drawn on the server as inline SVG: no script, no external asset, readable on a phone."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 600, 220
LEFT, BOTTOM, TOP = 96, 30, 14  # room for the value axis, the day labels, the top label


def count(value: float) -> str:
    """A count for an axis or a bar: 2.5 where it is not whole, else 2,500."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above `value` (an axis maximum)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    fmt: Callable[[float], str] = count,
) -> Markup:
    """A bar chart of `values` (one bar per label), titled, with hover titles per bar."""
    top = _nice_ceiling(max(values, default=0))
    inner_w, inner_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    step = inner_w / max(len(values), 1)
    bar = max(step * 0.75, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - 4}" '
        f'y2="{TOP + inner_h}"/>',
    ]
    for fraction in (0.5, 1.0):
        y = TOP + inner_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 4}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 8}" y="{y + 6:.1f}" text-anchor="end">'
            f"{escape(fmt(top * fraction))}</text>"
        )
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = inner_h * (value / top) if top else 0
        x = LEFT + i * step + (step - bar) / 2
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + inner_h - h:.1f}" width="{bar:.1f}" '
            f'height="{h:.1f}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
    if labels:
        y = HEIGHT - 4
        parts.append(f'<text class="tick" x="{LEFT}" y="{y}">{escape(labels[0])}</text>')
        parts.append(
            f'<text class="tick" x="{WIDTH - 4}" y="{y}" text-anchor="end">'
            f"{escape(labels[-1])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def meter(fraction: float, label: str) -> Markup:
    """A horizontal bar filled to `fraction` (capped at 1; over 1 is drawn as over the limit)."""
    shown = min(max(fraction, 0.0), 1.0)
    kind = "over" if fraction >= 1 else "high" if fraction >= 0.8 else "ok"
    return Markup(
        f'<svg class="meter {kind}" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}"><rect class="track" width="100" height="8"/>'
        f'<rect class="fill" width="{shown * 100:.1f}" height="8"/></svg>'
    )
