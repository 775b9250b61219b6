"""Building the city into a real ledger: zero rejects, lineage applied, status, keys and cases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.ledger.schema import entries
from socialcredit.sim.build import RULEBOOKS, build_city, city_loaded, reuse_city
from socialcredit.sim.city import CityConfig, generate_city
from socialcredit.status.service import StatusService
from socialcredit.web.keys import KeyCache, list_keys


@pytest.mark.slow
def test_build_imports_everything_and_makes_it_ready(ledger: Ledger, clock: FixedClock) -> None:
    city = generate_city(
        CityConfig(people=150, companies=60, seed=3), ledger.today(), ledger.catalogue
    )
    phases: dict[str, tuple[int, int]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        assert 0 <= done <= total or total == 0
        phases[phase] = (done, total)

    assert not city_loaded(ledger)
    report = build_city(ledger, city, progress=progress)
    assert report.rejected == 0, report.problems
    assert report.stored == city.record_count
    assert phases["import"] == (city.record_count, city.record_count)
    assert sum(report.lineage.values()) == len(city.lineage)
    assert ledger.verify().ok
    with ledger.engine.connect() as conn:
        furnished = conn.execute(
            sa.select(sa.func.count()).select_from(entries).where(entries.c.op == "furnish")
        ).scalar()
        ended = conn.execute(
            sa.select(sa.func.count())
            .select_from(entries)
            .where(entries.c.op.in_(("retract", "overturn", "correct")))
        ).scalar()
    assert furnished == city.record_count + sum(
        1 for c in report.cases if c["type"] == "repair" and "approved" in c["what"]
    )
    assert ended == len(city.lineage)
    # both rulebooks active and caught up; the featured defaulter is listed and spending-restricted
    svc = StatusService(ledger)
    assert sorted(a.rulebook.id for a in svc.active()) == sorted(RULEBOOKS)
    assert svc.lag() == 0
    current = {
        row["rulebook"].split("@")[0]: row["status"] for row in svc.current(city.featured["person"])
    }
    lists = {m["list"] for m in current["cn-national"]["memberships"]}
    assert {"spc-defaulters", "spc-spending-restricted"} <= lists
    assert report.lists["spc-defaulters"] >= 1
    assert set(report.grades) == {"rongcheng-personal", "tax-credit"}
    assert report.subjects["person"] > 100 and report.subjects["organisation"] > 40
    # one key per role, each one working
    assert [k.role for k in report.keys] == [
        "provider", "relying-party", "subject", "officer", "reviewer", "auditor", "public"
    ]  # fmt: skip
    cache = KeyCache(ledger.engine)
    for k in report.keys:
        key, refusal = cache.check(k.token)
        assert refusal == "" and key is not None and key.role == k.role, k
    assert {p["party_id"] for p in report.parties} >= {"shandong-air", "rc-rural-bank"}
    assert all(isinstance(p["daily_limit"], int) and p["daily_limit"] > 0 for p in report.parties)
    # the cases room opened the demo's cases
    opened = {c["type"] for c in report.cases}
    assert {"objection", "repair", "tip"} <= opened, (report.cases, report.cases_note)
    # the registry opens with its history: notices start at the opening (the demo's cases),
    # not with one "record added" per historical record
    from socialcredit.cases.notices import NoticeService, list_notices

    notified = NoticeService(ledger, svc.rulebooks).run_notifier()
    assert 0 < notified.notices < 20 * len(report.cases) < city.record_count
    inbox = list_notices(ledger.engine, subject=city.featured["person"])
    assert any(n["kind"] == "case-opened" for n in inbox), inbox
    # reusing the built city adds keys, imports nothing
    assert city_loaded(ledger)
    clock.advance(minutes=1)
    again = reuse_city(ledger, city)
    assert again.stored == 0 and len(again.keys) == 7
    assert len(list_keys(ledger.engine)) == 14
    assert again.lists == report.lists


def test_the_build_is_fast_enough(tmp_path: object) -> None:
    """A tenth of the default city builds in seconds (the default builds well under a minute)."""
    import time
    from pathlib import Path

    db = Path(str(tmp_path)) / "city.db"
    with Ledger.open(str(db), clock=FixedClock(dt.datetime(2026, 11, 24, 8))) as led:
        city = generate_city(CityConfig(people=500, companies=100), led.today(), led.catalogue)
        t = time.perf_counter()
        report = build_city(led, city)
        took = time.perf_counter() - t
    assert report.rejected == 0
    assert took < 30, report.seconds
