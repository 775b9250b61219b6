"""Statistics for the portal: counts per list and per grade over time, from ``status_history``.

Only aggregates leave this module (no subject keys). The status of a subject under a rulebook on a
day is the latest history row with ``from_date <= day``; a list membership counts on that day when
``since <= day < until``; a grade counts when the scheme's grade is set. Before a subject's first
recorded status, list memberships are back-filled from that first status (a membership knows the
day it began); grades are not (they have no start day): before the registry's first evaluation a
grade count is unknown (None, a gap in the chart). Charts are rendered on the
server as SVG with matplotlib (no JavaScript), each with a text table next to it.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit.rulebooks.durations import add_months
from socialcredit.status.schema import status_history

__all__ = ["Series", "Stats", "compute_stats", "month_ends", "svg_chart"]


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[int | None, ...]  # None: not known that day (grades before any evaluation)


@dataclass(frozen=True)
class Stats:
    days: tuple[dt.date, ...]
    lists: dict[str, list[Series]] = field(default_factory=dict)  # rulebook id -> per list
    grades: dict[str, list[Series]] = field(default_factory=dict)  # "rb/scheme" -> per grade
    subjects: int = 0


def month_ends(first: dt.date, last: dt.date, *, most: int = 24) -> list[dt.date]:
    """Sample days: the first of each month from ``first`` to ``last`` (at most ``most``), and last."""
    start = dt.date(first.year, first.month, 1)
    out: list[dt.date] = []
    d = start
    while d <= last:
        out.append(d)
        d = add_months(d, 1)
    if not out or out[-1] != last:
        out.append(last)
    return out[-most:]


_CACHE: dict[tuple[str, int, dt.date], Stats] = {}
_LOCK = threading.Lock()


def compute_stats(engine: sa.Engine, today: dt.date, *, months: int = 24) -> Stats:
    """Counts per list and grade on the first of each month up to ``today`` (cached per change)."""
    with engine.connect() as conn:
        top = int(conn.execute(sa.select(sa.func.max(status_history.c.id))).scalar() or 0)
        first = conn.execute(sa.select(sa.func.min(status_history.c.from_date))).scalar()
    key = (str(engine.url), top, today)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    if first is None:
        return Stats(days=(today,))
    # memberships carry the day they began, so list counts reach back before the first evaluation
    days = month_ends(add_months(today, -months), today, most=months + 2)
    list_counts: dict[str, dict[str, list[int]]] = {}
    grade_counts: dict[str, dict[str, list[int]]] = {}
    subjects: set[str] = set()
    q = sa.select(
        status_history.c.subject,
        status_history.c.rulebook_id,
        status_history.c.from_date,
        status_history.c.status,
    ).order_by(status_history.c.subject, status_history.c.rulebook_id, status_history.c.id)
    current: tuple[str, str] | None = None
    rows: list[tuple[dt.date, str]] = []

    def flush() -> None:
        if current is None or not rows:
            return
        rb = current[1]
        # the status in effect on each sample day
        idx = 0
        parsed: dict[int, dict[str, Any]] = {}
        for n, day in enumerate(days):
            while idx + 1 < len(rows) and rows[idx + 1][0] <= day:
                idx += 1
            before_first = rows[idx][0] > day  # back-filled from the first known status
            st = parsed.get(idx)
            if st is None:
                st = parsed[idx] = orjson.loads(rows[idx][1])
            for m in st.get("memberships", ()):
                since = dt.date.fromisoformat(m["since"])
                until = dt.date.fromisoformat(m["until"]) if m.get("until") else None
                if since <= day and (until is None or day < until):
                    per = list_counts.setdefault(rb, {}).setdefault(m["list"], [0] * len(days))
                    per[n] += 1
            if before_first:
                continue  # grades have no start day: only counted from the first evaluation
            for s in st.get("schemes", ()):
                if s.get("grade"):
                    gk = f"{rb}/{s['scheme']}"
                    per = grade_counts.setdefault(gk, {}).setdefault(s["grade"], [0] * len(days))
                    per[n] += 1

    with engine.connect() as conn:
        for r in conn.execute(q).yield_per(5000):
            k = (r.subject, r.rulebook_id)
            if k != current:
                flush()
                current, rows = k, []
                subjects.add(r.subject)
            # several changes recorded on one day: the last one of the day holds
            if rows and rows[-1][0] == r.from_date:
                rows[-1] = (r.from_date, r.status)
            else:
                rows.append((r.from_date, r.status))
        flush()
    out = Stats(
        days=tuple(days),
        lists={
            rb: [Series(k, tuple(v)) for k, v in sorted(per.items())]
            for rb, per in sorted(list_counts.items())
        },
        grades={
            g: [
                Series(k, tuple(None if d < first else n for d, n in zip(days, v, strict=True)))
                for k, v in sorted(per.items())
            ]
            for g, per in sorted(grade_counts.items())
        },
        subjects=len(subjects),
    )
    with _LOCK:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = out
    return out


def svg_chart(title: str, days: Sequence[dt.date], series: Sequence[Series]) -> str:
    """A line chart as an inline SVG document (text kept as text, with a <title>); cached."""
    return _svg_chart(title, tuple(days), tuple(series))


@functools.lru_cache(maxsize=64)
def _svg_chart(title: str, days: tuple[dt.date, ...], series: tuple[Series, ...]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "socialcredit"
    fig, ax = plt.subplots(figsize=(7.0, 3.2), dpi=100)
    try:
        styles = ["-", "--", "-.", ":"]
        for i, s in enumerate(series):
            ax.plot(
                list(days),  # type: ignore[arg-type]
                [float("nan") if v is None else v for v in s.values],
                label=s.label,
                linestyle=styles[i % len(styles)],
                marker="o" if len(days) < 30 else None,
                markersize=3,
            )
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("subjects")
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if series:  # beside the plot, never over the lines
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.autofmt_xdate()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Title": title})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:]
    # an accessible name for the image; the page also shows the numbers as a table
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_esc(title)}" ', 1).replace(
        "\n", " "
    )


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
