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
        # A light track behind every bar: a stage nobody reached reads as "0", not as a stray line.
        value_css = "value" if bar > 90 else "value dark"
        body.append(
            _text(label_w - 10, y + row / 2 + 5, label, anchor="end")
            + f'<rect x="{label_w}" y="{y}" width="{plot}" height="{row}" rx="6" class="track"/>'
            + f'<rect x="{x:.1f}" y="{y}" width="{bar:.1f}" height="{row}" rx="6" '
            f'fill="{PALETTE[index % 6]}"/>'
            + _text(label_w + plot / 2, y + row / 2 + 5, f"{count}{share}", value_css, "middle")
        )
    description = ", ".join(f"{label}: {count}" for label, count in stages)
    return _svg(width, len(stages) * (row + gap), title, description, body)


def _fit(label: str, room: int) -> str:
    """Cut a label to ``room`` narrow characters (CJK ones count double), keeping its start."""
    used, kept = 0, []
    for char in label:
        used += 2 if ord(char) > 0x2E80 else 1
        if used > room:
            return "".join(kept).rstrip() + "…"
        kept.append(char)
    return label


def bars(
    items: list[tuple[str, float]], title: str, unit: str = "", shown: list[str] | None = None
) -> Markup:
    """Horizontal bars, one per item, in the order given; each label on its own line above its bar,
    so long questions (in any script) are never cut at the front or run into each other. ``shown``:
    each value as the reader reads it (e.g. money in their locale), else the number."""
    width, label_h, row, gap = 360, 18, 16, 10
    top = max((value for _, value in items), default=0) or 1
    texts = shown or [f"{value:g}{unit}" for _, value in items]
    longest = max((len(text) for text in texts), default=0)
    room = width - 12 - 8 * longest  # the value fits beside the longest bar
    body: list[str] = []
    for index, (label, value) in enumerate(items):
        y = index * (label_h + row + gap)
        bar = max(room * value / top, 2)
        body.append(
            _text(0, y + 13, _fit(label, 52), "label")
            + f'<rect x="0" y="{y + label_h}" width="{bar:.1f}" height="{row}" rx="4" fill="{PALETTE[1]}"/>'
            + _text(bar + 6, y + label_h + 13, texts[index], "label")
        )
    description = ", ".join(f"{label}: {text}" for (label, _), text in zip(items, texts, strict=True))
    return _svg(width, max(len(items), 1) * (label_h + row + gap), title, description, body)


def grouped_bars(groups: list[tuple[str, list[int]]], series: list[str], title: str) -> Markup:
    """Per group (a journey) its name on a line of its own, then one thin horizontal bar per series
    (sent, delivered, clicked, converted) with its number: as readable on a phone as on a desk."""
    width, label_h, bar_h, gap = 360, 20, 12, 14
    legend_w = width // min(max(len(series), 1), 4)  # up to four names side by side, as wide as fits
    top = max((v for _, values in groups for v in values), default=0) or 1
    body: list[str] = []
    y = 0.0
    for s_index, name in enumerate(series):  # the legend, once, on top
        x = (s_index % 4) * legend_w
        body.append(f'<rect x="{x}" y="{y + 2}" width="10" height="10" fill="{PALETTE[s_index % 6]}"/>'
                    + _text(x + 14, y + 11, _fit(name, (legend_w - 18) // 7), "small"))
    y += 24
    for label, values in groups:
        body.append(_text(0, y + 14, _fit(label, 52), "label"))
        y += label_h
        for s_index, value in enumerate(values):
            bar = max((width - 60) * value / top, 1.5)
            body.append(f'<rect x="0" y="{y:.1f}" width="{bar:.1f}" height="{bar_h}" rx="2" '
                        f'fill="{PALETTE[s_index % 6]}"><title>{escape(series[s_index])}: {value}</title>'
                        "</rect>" + _text(bar + 4, y + bar_h - 2, value, "small"))
            y += bar_h + 2
        y += gap
    description = "; ".join(
        f"{label}: " + ", ".join(f"{name} {value}" for name, value in zip(series, values, strict=False))
        for label, values in groups
    )
    return _svg(width, int(y), title, description, body)


def line(points: list[tuple[str, float | None]], title: str, low: float = 1, high: float = 5,
         counts: list[int] | None = None) -> Markup:
    """A line over time (e.g. weekly CSAT on a 1–5 scale); gaps where there is no data. ``counts``:
    how many answers each point rests on, printed in brackets beside its value."""
    width, height, left, bottom = 360, 210, 28, 180
    step = (width - left - 20) / max(len(points) - 1, 1)
    every = max(1, -(-len(points) // 5))  # at most five dates under the axis: they never run together
    body = [f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" class="axis"/>']
    for tick in range(int(low), int(high) + 1):
        y = bottom - (bottom - 20) * (tick - low) / (high - low)
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="small">{tick}</text>'
                    f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" class="grid"/>')
    path: list[str] = []
    for index, (label, value) in enumerate(points):
        x = left + index * step
        if index % every == 0 or (index == len(points) - 1 and len(points) <= 5):
            body.append(_text(x, bottom + 18, label, "small", "middle"))
        if value is None:
            path.append("")
            continue
        y = bottom - (bottom - 20) * (value - low) / (high - low)
        path.append(f"{x:.1f},{y:.1f}")
        shown = f"{value:.1f}" + (f" ({counts[index]})" if counts else "")
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{PALETTE[0]}"><title>{escape(label)}: '
                    f"{escape(shown)}</title></circle>"
                    # Up to six points there is room for the count beside each value.
                    + _text(x, y - 10, shown if len(points) <= 6 else f"{value:.1f}", "small", "middle"))
    segment: list[str] = []
    for point in [*path, ""]:
        if point:
            segment.append(point)
            continue
        if len(segment) > 1:
            body.insert(1, f'<polyline points="{" ".join(segment)}" fill="none" stroke="{PALETTE[0]}" '
                           'stroke-width="2"/>')
        segment = []
    description = ", ".join(f"{label}: {'—' if v is None else f'{v:.2f}'}" for label, v in points)
    return _svg(width, height, title, description, body)
