"""Impact of a rulebook change before adoption: who enters or leaves each list, whose grade moves.

Both rulebooks are evaluated by the batch plan on the same snapshot as of the same day; the
comparison runs in DuckDB over the two Arrow results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class ListImpact:
    list_id: str
    before: int
    after: int
    entering: int
    leaving: int
    examples_entering: list[str] = field(default_factory=list)
    examples_leaving: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GradeImpact:
    scheme_id: str
    transitions: list[tuple[str | None, str | None, int]]  # (before, after, subjects), changes only
    examples: list[tuple[str, str | None, str | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Impact:
    lists: list[ListImpact]
    grades: list[GradeImpact]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lists": [vars(x) for x in self.lists],
            "grades": [
                {
                    "scheme": g.scheme_id,
                    "transitions": [
                        {"from": a, "to": b, "subjects": n} for a, b, n in g.transitions
                    ],
                    "examples": [{"subject": s, "from": a, "to": b} for s, a, b in g.examples],
                }
                for g in self.grades
            ],
        }


def compare(
    old_memberships: pa.Table,
    new_memberships: pa.Table,
    old_schemes: pa.Table,
    new_schemes: pa.Table,
    examples: int = 5,
) -> Impact:
    con = duckdb.connect()
    con.register("om", old_memberships.select(["subject", "list"]))
    con.register("nm", new_memberships.select(["subject", "list"]))
    con.register("os", old_schemes.select(["subject", "scheme", "grade"]))
    con.register("ns", new_schemes.select(["subject", "scheme", "grade"]))
    lists = []
    names = con.execute("SELECT list FROM om UNION SELECT list FROM nm ORDER BY 1").fetchall()
    for (name,) in names:

        def q(sql: str, name: str = name) -> list[Any]:
            return [r[0] for r in con.execute(sql, [name]).fetchall()]

        before = q("SELECT count(*) FROM om WHERE list = ?")[0]
        after = q("SELECT count(*) FROM nm WHERE list = ?")[0]
        entering = (
            "SELECT subject FROM nm WHERE list = $1 EXCEPT SELECT subject FROM om WHERE list = $1"
        )
        leaving = (
            "SELECT subject FROM om WHERE list = $1 EXCEPT SELECT subject FROM nm WHERE list = $1"
        )
        lists.append(
            ListImpact(
                name,
                before,
                after,
                q(f"SELECT count(*) FROM ({entering})")[0],
                q(f"SELECT count(*) FROM ({leaving})")[0],
                q(f"SELECT subject FROM ({entering}) ORDER BY subject LIMIT {int(examples)}"),
                q(f"SELECT subject FROM ({leaving}) ORDER BY subject LIMIT {int(examples)}"),
            )
        )
    grades = []
    joined = """
        SELECT coalesce(o.subject, n.subject) AS subject, coalesce(o.scheme, n.scheme) AS scheme,
               o.grade AS before, n.grade AS after
        FROM os o FULL OUTER JOIN ns n ON o.subject = n.subject AND o.scheme = n.scheme
        WHERE o.grade IS DISTINCT FROM n.grade
    """
    schemes = con.execute("SELECT scheme FROM os UNION SELECT scheme FROM ns ORDER BY 1").fetchall()
    for (scheme,) in schemes:
        moves = con.execute(
            f"SELECT before, after, count(*) FROM ({joined}) WHERE scheme = ? GROUP BY ALL ORDER BY 3 DESC, 1, 2",
            [scheme],
        ).fetchall()
        ex = con.execute(
            f"SELECT subject, before, after FROM ({joined}) WHERE scheme = ? ORDER BY subject LIMIT {int(examples)}",
            [scheme],
        ).fetchall()
        grades.append(
            GradeImpact(scheme, [(a, b, int(n)) for a, b, n in moves], [tuple(e) for e in ex])
        )
    return Impact(lists, grades)
