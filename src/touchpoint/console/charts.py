"""Charts drawn on the server as SVG: no JavaScript, no chart library, readable by screen readers
(each chart has a title and a text description; the numbers are also printed on the bars)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

PALETTE = ("#2457a6", "#2f6fc4", "#3f86d6", "#5aa0e0", "#7bb7e8", "#a2cdf0")


def _svg(width: int, height: int, title: str, description: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, content: object, css: str = "label", anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{css}">{escape(str(content))}</text>'


def funnel(stages: list[tuple[str, int]], title: str = "Customer journey funnel") -> Markup:
    """Centred bars narrowing with each stage, the count and the share of the first stage on each."""
    width, row, gap, label_w = 480, 40, 8, 120
    top = max((count for _, count in stages), default=0) or 1
    body: list[str] = []
    plot = width - label_w - 20
    for index, (label, count) in enumerate(stages):
        y = index * (row + gap)
        bar = max(plot * count / top, 2)
        x = label_w + (plot - bar) / 2
        share = f" · {round(100 * count / stages[0][1])}%" if stages[0][1] else ""
        body.append(
            _text(label_w - 10, y + row / 2 + 5, label, anchor="end")
            + f'<rect x="{x:.1f}" y="{y}" width="{bar:.1f}" height="{row}" rx="6" '
            f'fill="{PALETTE[index % 6]}"/>'
            + _text(label_w + plot / 2, y + row / 2 + 5, f"{count}{share}", "value", "middle")
        )
    description = ", ".join(f"{label}: {count}" for label, count in stages)
    return _svg(width, len(stages) * (row + gap), title, description, body)


def bars(items: list[tuple[str, float]], title: str, unit: str = "") -> Markup:
    """Horizontal bars, one per item, longest first as given."""
    width, row, gap, label_w = 640, 26, 6, 260
    top = max((value for _, value in items), default=0) or 1
    body: list[str] = []
    for index, (label, value) in enumerate(items):
        y = index * (row + gap)
        bar = max((width - label_w - 70) * value / top, 2)
        short = label if len(label) <= 38 else label[:37] + "…"
        body.append(
            _text(label_w - 8, y + row / 2 + 5, short, anchor="end")
            + f'<rect x="{label_w}" y="{y}" width="{bar:.1f}" height="{row}" rx="4" fill="{PALETTE[1]}"/>'
            + _text(label_w + bar + 6, y + row / 2 + 5, f"{value:g}{unit}")
        )
    description = ", ".join(f"{label}: {value:g}{unit}" for label, value in items)
    return _svg(width, max(len(items), 1) * (row + gap), title, description, body)


def grouped_bars(groups: list[tuple[str, list[int]]], series: list[str], title: str) -> Markup:
    """Per group (a journey), one vertical bar per series (sent, delivered, clicked, converted)."""
    group_w, bar_w, height, base = 150, 26, 220, 180
    width = max(len(groups), 1) * group_w + 40
    top = max((v for _, values in groups for v in values), default=0) or 1
    body: list[str] = []
    for g, (label, values) in enumerate(groups):
        x0 = 30 + g * group_w
        for s, value in enumerate(values):
            h = (base - 20) * value / top
            x = x0 + s * (bar_w + 4)
            body.append(
                f'<rect x="{x}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" fill="{PALETTE[s % 6]}">'
                f"<title>{escape(series[s])}: {value}</title></rect>"
                + _text(x + bar_w / 2, base - h - 4, value, "small", "middle")
            )
        short = label if len(label) <= 20 else label[:19] + "…"
        body.append(f'<text x="{x0 + 2 * (bar_w + 4)}" y="{base + 18}" text-anchor="middle" class="label">'
                    f"{escape(short)}</text>")
    legend_y = base + 36
    for s, name in enumerate(series):
        body.append(f'<rect x="{30 + s * 110}" y="{legend_y - 10}" width="12" height="12" '
                    f'fill="{PALETTE[s % 6]}"/>' + _text(46 + s * 110, legend_y, name, "small"))
    description = "; ".join(
        f"{label}: " + ", ".join(f"{name} {value}" for name, value in zip(series, values, strict=False))
        for label, values in groups
    )
    return _svg(width, height + 10, title, description, body)


def line(points: list[tuple[str, float | None]], title: str, low: float = 1, high: float = 5) -> Markup:
    """A line over time (e.g. weekly CSAT on a 1–5 scale); gaps where there is no data."""
    width, height, left, bottom = 640, 220, 40, 180
    step = (width - left - 20) / max(len(points) - 1, 1)
    body = [f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" class="axis"/>']
    for tick in range(int(low), int(high) + 1):
        y = bottom - (bottom - 20) * (tick - low) / (high - low)
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="small">{tick}</text>'
                    f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" class="grid"/>')
    path: list[str] = []
    for index, (label, value) in enumerate(points):
        x = left + index * step
        body.append(_text(x, bottom + 18, label, "small", "middle"))
        if value is None:
            path.append("")
            continue
        y = bottom - (bottom - 20) * (value - low) / (high - low)
        path.append(f"{x:.1f},{y:.1f}")
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{PALETTE[0]}"><title>{escape(label)}: '
                    f"{value:.2f}</title></circle>")
    segment: list[str] = []
    for point in [*path, ""]:
        if point:
            segment.append(point)
            continue
        if len(segment) > 1:
            body.insert(1, f'<polyline points="{" ".join(segment)}" fill="none" stroke="{PALETTE[0]}" '
                           'stroke-width="2"/>')
        segment = []
    description = ", ".join(f"{label}: {'no data' if v is None else f'{v:.2f}'}" for label, v in points)
    return _svg(width, height, title, description, body)
