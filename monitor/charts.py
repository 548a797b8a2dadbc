"""Small inline SVG charts for reports and Datasette pages: no JavaScript, no network.

Every chart carries a <title> and an aria-label, and its numbers are also given in a
table next to it, so a screen reader or a printout loses nothing."""

from __future__ import annotations

from html import escape

SENTIMENT_COLOURS = {"negative": "#c0392b", "neutral": "#a6acaf", "positive": "#1e8449"}
SERIES_COLOURS = ["#1f4e79", "#b9770e", "#6c3483", "#117864", "#922b21", "#5d6d7e"]


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _label(week: str) -> str:
    """'2026-07-13' -> '13 Jul'."""
    import datetime as dt

    d = dt.date.fromisoformat(week)
    return f"{d.day} {d.strftime('%b')}"


def _frame(width: int, height: int, title: str, body: list[str], css_class: str) -> str:
    t = escape(title)
    return (f'<svg class="{css_class}" role="img" aria-label="{t}" viewBox="0 0 {width} {height}" '
            f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{t}</title>" + "".join(body) + "</svg>")


def _x_labels(weeks: list[str], x, y: float, every: int) -> list[str]:
    out = []
    for i, w in enumerate(weeks):
        if i % every == 0 or (i == len(weeks) - 1 and i % every > every // 2):
            out.append(f'<text x="{_fmt(x(i))}" y="{_fmt(y)}" font-size="10" text-anchor="middle" '
                       f'fill="#555">{_label(w)}</text>')
    return out


def sentiment_bars(weeks: list[str], rows: dict[str, dict], title: str, mark_from: str | None = None,
                   width: int = 720, height: int = 220) -> str:
    """Stacked weekly bars of negative / neutral / positive posts; ``rows`` maps week ->
    {"negative": n, "neutral": n, "positive": n}. Weeks from ``mark_from`` on are shaded."""
    left, right, top, bottom = 36, 10, 12, 34
    inner_w, inner_h = width - left - right, height - top - bottom
    top_value = max([sum(rows.get(w, {}).get(s, 0) for s in SENTIMENT_COLOURS) for w in weeks] + [1])
    slot = inner_w / max(len(weeks), 1)
    bar = max(slot * 0.7, 1)
    x = lambda i: left + slot * i + slot / 2  # noqa: E731
    body = []
    if mark_from and mark_from in weeks:
        i = weeks.index(mark_from)
        body.append(f'<rect x="{_fmt(left + slot * i)}" y="{top}" width="{_fmt(inner_w - slot * i)}" '
                    f'height="{inner_h}" fill="#f4f6f7"/>')
    for frac in (0, 0.5, 1):
        v = top_value * frac
        yy = top + inner_h - inner_h * frac
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(yy)}" y2="{_fmt(yy)}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 4}" y="{_fmt(yy + 3)}" font-size="10" text-anchor="end" fill="#555">{_fmt(v)}</text>')
    for i, w in enumerate(weeks):
        base = top + inner_h
        for s, colour in SENTIMENT_COLOURS.items():
            n = rows.get(w, {}).get(s, 0)
            if not n:
                continue
            h = inner_h * n / top_value
            base -= h
            body.append(f'<rect class="bar {s}" x="{_fmt(x(i) - bar / 2)}" y="{_fmt(base)}" width="{_fmt(bar)}" '
                        f'height="{_fmt(h)}" fill="{colour}"><title>{_label(w)}: {n} {s}</title></rect>')
    body += _x_labels(weeks, x, height - bottom + 14, max(1, len(weeks) // 8))
    legend_x = left
    for s, colour in SENTIMENT_COLOURS.items():
        body.append(f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{legend_x + 14}" y="{height - 3}" font-size="10" fill="#333">{s}</text>')
        legend_x += 80
    return _frame(width, height, title, body, "chart sentiment-bars")


def share_lines(weeks: list[str], series: dict[str, dict[str, tuple[float, float, float] | None]], title: str,
                y_label: str = "share", width: int = 720, height: int = 220, band: bool = True) -> str:
    """One line per series of a weekly share (0..1) with its 95% interval as a band;
    ``series`` maps name -> week -> (share, low, high) or None (no posts that week)."""
    left, right, top, bottom = 36, 10, 12, 34 + 14 * ((len(series) + 3) // 4)
    inner_w, inner_h = width - left - right, height - top - bottom
    slot = inner_w / max(len(weeks) - 1, 1)
    x = lambda i: left + slot * i  # noqa: E731
    y = lambda v: top + inner_h * (1 - v)  # noqa: E731
    body = []
    for frac in (0, 0.25, 0.5, 0.75, 1):
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y(frac))}" y2="{_fmt(y(frac))}" stroke="#eee"/>'
                    f'<text x="{left - 4}" y="{_fmt(y(frac) + 3)}" font-size="10" text-anchor="end" fill="#555">'
                    f'{int(frac * 100)}%</text>')
    for k, (name, points) in enumerate(series.items()):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        known = [(i, points[w]) for i, w in enumerate(weeks) if points.get(w) is not None]
        if band and known:
            upper = " ".join(f"{_fmt(x(i))},{_fmt(y(p[2]))}" for i, p in known)
            lower = " ".join(f"{_fmt(x(i))},{_fmt(y(p[1]))}" for i, p in reversed(known))
            body.append(f'<polygon class="band" points="{upper} {lower}" fill="{colour}" fill-opacity="0.12"/>')
        if known:
            path = " ".join(f"{_fmt(x(i))},{_fmt(y(p[0]))}" for i, p in known)
            body.append(f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for i, p in known:
                body.append(f'<circle cx="{_fmt(x(i))}" cy="{_fmt(y(p[0]))}" r="2.5" fill="{colour}">'
                            f'<title>{escape(name)}, {_label(weeks[i])}: {p[0]:.0%} (95% interval '
                            f'{p[1]:.0%} to {p[2]:.0%})</title></circle>')
        lx = left + 170 * (k % 4)
        ly = height - 14 * ((len(series) + 3) // 4) + 14 * (k // 4) - 2
        body.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{lx + 14}" y="{ly}" font-size="10" fill="#333">{escape(name[:26])}</text>')
    body += _x_labels(weeks, x, top + inner_h + 14, max(1, len(weeks) // 8))
    return _frame(width, height, title, body, "chart share-lines")


def interval_dots(items: list[tuple[str, float, float, float]], title: str, width: int = 720) -> str:
    """One row per item: its share as a dot and its 95% interval as a bar (0..100%)."""
    row_h, left, right = 26, 220, 20
    height = row_h * len(items) + 30
    inner_w = width - left - right
    x = lambda v: left + inner_w * v  # noqa: E731
    body = []
    for frac in (0, 0.25, 0.5, 0.75, 1):
        body.append(f'<line x1="{_fmt(x(frac))}" x2="{_fmt(x(frac))}" y1="4" y2="{height - 22}" stroke="#eee"/>'
                    f'<text x="{_fmt(x(frac))}" y="{height - 8}" font-size="10" text-anchor="middle" fill="#555">'
                    f'{int(frac * 100)}%</text>')
    for k, (name, share, low, high) in enumerate(items):
        yy = 16 + row_h * k
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        body.append(f'<text x="{left - 8}" y="{yy + 4}" font-size="11" text-anchor="end" fill="#222">{escape(name[:34])}</text>'
                    f'<line x1="{_fmt(x(low))}" x2="{_fmt(x(high))}" y1="{yy}" y2="{yy}" stroke="{colour}" stroke-width="4" '
                    f'stroke-opacity="0.35"/><circle class="dot" cx="{_fmt(x(share))}" cy="{yy}" r="5" fill="{colour}">'
                    f'<title>{escape(name)}: {share:.0%} (95% interval {low:.0%} to {high:.0%})</title></circle>')
    return _frame(width, height, title, body, "chart interval-dots")


def sparkline(values: list[float | None]) -> str:
    """Unicode block sparkline for Markdown (None: a gap)."""
    blocks = "▁▂▃▄▅▆▇█"
    known = [v for v in values if v is not None]
    if not known:
        return ""
    lo, hi = min(known), max(known)
    span = (hi - lo) or 1
    return "".join(" " if v is None else blocks[int((v - lo) / span * (len(blocks) - 1))] for v in values)
