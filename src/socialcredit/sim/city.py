"""A synthetic city: people, companies, authorities and the records they furnish over several years.

:func:`generate_city` is pure and deterministic: the same :class:`CityConfig` (seed included) and
the same ``today`` give the same city, byte for byte. It writes nothing; :mod:`socialcredit.sim.build`
loads a city into a ledger through the ordinary bulk importer, so every generated record passes the
same validator as a real authority's file.

The city is modelled on Rongcheng (Weihai, Shandong; GB/T 2260 division ``371082``), the
best-documented city scheme, so the national rulebook and the ``cn-sd-rongcheng`` city rulebook both
apply. Rates are per subject and year and follow ``/work/shared/reference/domain-facts.md`` where
the reference has a figure (its section in brackets), otherwise they are plausible placeholders:

* court judgment defaulters: about 0.25 % of adults a year, so ~1.5 % over six years (df §8: 13 M
  listed nationally by 2018 of ~1.1 bn adults); 70 % of debtors do not comply voluntarily (df §8,
  ECNS 2014), so about a third later perform and are delisted (Art. 10 triggers, df §3);
  ground 1 (able but refuses) dominates; every defaulter also gets a spending-restriction order
  (df §3.1 Art. 1 para. 2);
* tax credit grades, rated each April for the prior year: A ≈ 5 %, D ≈ 7 % (df §2.1, 2019: A 4.89 %,
  D 7.01 % of 25.69 M), M for enterprises founded in the rated year;
* environmental colours for polluting sectors: green 14 / blue 74 / yellow 10 / red 2.5 % (df §2.3,
  Guangdong);
* customs results for traders: advanced certified ≈ 1-2 %, dishonest ≈ 2 % (df §2.2);
* market-regulation penalties of three severities, abnormal operations (most for a missing annual
  report, most later cured, df §4.3), a few serious listings decided after a heavier penalty
  (df §4.2) and a few heavier penalties still awaiting the listing decision;
* traffic tickets, utility arrears (heating matters in Shandong), bank arrears, volunteering,
  blood donation, heroic acts and commendations (the red side);
* corrections (a fine's amount), retractions (a misread plate, a late-filing entry made by a system
  outage) and overturns (a penalty revoked by the court in administrative litigation);
* credit repair paperwork: credit commitments and repair-training certificates for subjects whose
  penalty display allows repair.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from socialcredit import ids
from socialcredit.catalog import Catalogue
from socialcredit.ids.rid import SAMPLE_REGIONS

DIVISION = "371082"  # Rongcheng, Weihai, Shandong (GB/T 2260)
NEARBY = ("371002", "371003", "371083", "370202", "370102", "371102")  # Weihai, Qingdao, Jinan ...


@dataclass(frozen=True, slots=True)
class CityConfig:
    """What to generate. ``years`` counts calendar years back from today's, inclusive."""

    people: int = 5000
    companies: int = 1000
    seed: int = 2026
    years: int = 6
    name: str = "Rongcheng"

    def __post_init__(self) -> None:
        if self.people < 10:
            raise ValueError("people must be at least 10")
        if self.companies < 10:
            raise ValueError("companies must be at least 10")
        if not 1 <= self.years <= 20:
            raise ValueError("years must be between 1 and 20")


@dataclass(frozen=True, slots=True)
class Person:
    key: str
    name: str
    sex: str
    birth_date: dt.date


@dataclass(frozen=True, slots=True)
class Organisation:
    key: str
    name: str
    kind: str  # subject kind
    sector: str
    founded: dt.date
    risk: str  # low | medium | high: how often it breaks rules (latent, not published)


@dataclass(frozen=True, slots=True)
class AuthoritySpec:
    id: str
    name: str
    type: str
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LineageOp:
    """A correction, retraction or overturn of a generated record, applied after the import."""

    op: str  # correct | retract | overturn
    actor: str  # the authority doing it
    furnisher: str  # the authority that furnished the target
    target_ref: str
    ref: str
    reason: str
    changes: dict[str, Any] | None = None


@dataclass
class City:
    config: CityConfig
    today: dt.date
    start: dt.date
    people: list[Person]
    organisations: list[Organisation]
    authorities: list[AuthoritySpec]
    records: dict[str, list[dict[str, Any]]]  # authority id -> furnished rows
    lineage: list[LineageOp]
    featured: dict[str, Any] = field(default_factory=dict)

    @property
    def record_count(self) -> int:
        return sum(len(v) for v in self.records.values())

    def rows(self) -> list[tuple[str, dict[str, Any]]]:
        return [(a, r) for a, rows in self.records.items() for r in rows]


# ------------------------------------------------------------------------------ names

SURNAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun",
    "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo", "Liang", "Song", "Zheng", "Xie", "Han",
    "Tang", "Feng", "Yu", "Dong", "Xiao", "Cheng", "Cao", "Yuan", "Deng", "Fu", "Shen", "Zeng",
    "Peng", "Lu", "Su", "Jiang", "Cai", "Jia", "Ding", "Wei", "Xue", "Ye", "Yan", "Pan", "Du",
    "Dai", "Xia", "Zhong", "Tian", "Ren", "Qin", "Bi", "Qu", "Kong", "Mu",
)  # fmt: skip
GIVEN_MALE = (
    "Wei", "Qiang", "Lei", "Jun", "Yong", "Jie", "Tao", "Ming", "Chao", "Hao", "Peng", "Bo",
    "Gang", "Hui", "Jian", "Feng", "Long", "Bin", "Hai", "Dong", "Xin", "Kai", "Yu", "Zhiqiang",
    "Jianguo", "Haitao", "Zhiwei", "Guoqing", "Jianhua", "Wenbo", "Zihao", "Yuxuan", "Haoran",
)  # fmt: skip
GIVEN_FEMALE = (
    "Fang", "Na", "Min", "Jing", "Li", "Yan", "Juan", "Xia", "Ying", "Hong", "Lan", "Ping",
    "Qing", "Hua", "Mei", "Yun", "Xue", "Lina", "Xiuying", "Guilan", "Yuying", "Xiaoyan",
    "Shuang", "Ting", "Jiayi", "Zixuan", "Yutong", "Xinyi", "Ruoxi", "Wenjing", "Lili",
)  # fmt: skip

COMPANY_WORDS = (
    "Haiyang", "Shidao", "Longxu", "Ocean Star", "Blue Bay", "Golden Sands", "East Cape",
    "Chengshan", "Sea Breeze", "Harvest", "Evergreen", "Bright Star", "Red Cliff", "Pine Hill",
    "North Shore", "Tide", "Coral", "Jade", "Sunrise", "Fortune", "Great Wall", "Silver Fish",
    "Seagull", "Kelp Field", "Lighthouse", "Swan Lake", "Stone Island", "Tianeh", "Lidao",
    "Yatou", "Xiakou", "Renhe", "Huanghai", "Weihai Gate", "Cape Point", "Ningjin",
)  # fmt: skip

# sector -> (name suffix, share, polluting, trader, SAMR penalty field)
SECTORS: dict[str, tuple[str, float, bool, bool, str]] = {
    "fisheries": ("Aquatic Products Co. Ltd.", 0.16, True, True, "food"),
    "food-processing": ("Food Co. Ltd.", 0.10, True, True, "food"),
    "shipbuilding": ("Marine Engineering Co. Ltd.", 0.04, True, True, "special-equipment"),
    "manufacturing": ("Machinery Co. Ltd.", 0.10, True, True, "product-quality"),
    "chemicals": ("Chemical Co. Ltd.", 0.03, True, True, "product-quality"),
    "trading": ("Trading Co. Ltd.", 0.12, False, True, "consumer-rights"),
    "retail": ("Commerce Co. Ltd.", 0.12, False, False, "consumer-rights"),
    "construction": ("Construction Engineering Co. Ltd.", 0.08, False, False, "other"),
    "tourism": ("Tourism Development Co. Ltd.", 0.06, False, False, "consumer-rights"),
    "logistics": ("Logistics Co. Ltd.", 0.06, False, True, "other"),
    "pharmacy": ("Pharmacy Co. Ltd.", 0.04, False, False, "drugs"),
    "technology": ("Technology Co. Ltd.", 0.06, False, False, "fair-competition"),
    "cosmetics": ("Biotech Co. Ltd.", 0.03, True, True, "cosmetics"),
}
_SECTOR_NAMES = tuple(SECTORS)
_SECTOR_CUM: list[float] = []
_acc = 0.0
for _s in _SECTOR_NAMES:
    _acc += SECTORS[_s][1]
    _SECTOR_CUM.append(_acc)

GOVERNMENT_ORGANS = (
    "Rongcheng Municipal Housing and Urban-Rural Development Bureau",
    "Rongcheng Municipal Education Bureau",
    "Rongcheng Municipal Transport Bureau",
    "Rongcheng Municipal Natural Resources Bureau",
    "Shidao Sub-district Office of Rongcheng",
    "Yatou Sub-district Office of Rongcheng",
    "Rongcheng Municipal Agriculture and Rural Affairs Bureau",
    "Rongcheng Municipal Water Resources Bureau",
)
PUBLIC_INSTITUTIONS = (
    "Rongcheng People's Hospital",
    "Rongcheng No. 1 Middle School",
    "Rongcheng Maternal and Child Health Hospital",
    "Rongcheng Vocational Secondary School",
    "Rongcheng Municipal Library",
    "Rongcheng Fishery Technology Extension Station",
    "Rongcheng Traditional Chinese Medicine Hospital",
    "Rongcheng Public Transport Service Centre",
    "Shidao People's Hospital",
    "Rongcheng Experimental Primary School",
)
SOCIAL_ORGANISATIONS = (
    "Rongcheng Volunteers Association",
    "Rongcheng Fishing Industry Association",
    "Rongcheng Private Enterprises Chamber of Commerce",
    "Rongcheng Charity Federation",
)

# ------------------------------------------------------------------------------ authorities

AUTHORITIES: tuple[tuple[str, str, str], ...] = (
    ("rc-court", "Rongcheng People's Court", "court"),
    ("rc-tax", "Rongcheng Municipal Tax Service, State Taxation Administration", "tax"),
    ("rc-amr", "Rongcheng Administration for Market Regulation", "market-regulation"),
    ("rc-traffic", "Rongcheng Public Security Bureau Traffic Police Brigade", "traffic-police"),
    ("rc-environment", "Weihai Municipal Ecology and Environment Bureau, Rongcheng Branch",
     "environment"),
    ("weihai-customs", "Weihai Customs", "customs"),
    ("rc-utilities", "Rongcheng Water, Gas and Heating Group", "utility"),
    ("rc-bank", "Rongcheng Rural Commercial Bank", "bank"),
    ("rc-government", "Rongcheng Municipal People's Government", "people-government"),
    ("rc-civil-affairs", "Rongcheng Municipal Civil Affairs Bureau", "civil-affairs"),
    ("rc-blood-centre", "Weihai Central Blood Station, Rongcheng Collection Point", "health"),
    ("rc-credit-office", "Rongcheng Social Credit Management Office", "credit-office"),
    ("caac-east", "CAAC East China Regional Administration", "civil-aviation"),
    ("jinan-railway", "China Railway Jinan Group, Railway Public Security", "railway"),
)  # fmt: skip


def authority_specs(catalogue: Catalogue) -> list[AuthoritySpec]:
    """The city's authorities, each accredited for every live kind the catalogue lets its type furnish."""
    out = []
    for aid, name, typ in AUTHORITIES:
        kinds = tuple(
            sorted(
                k.id
                for k in catalogue.kinds_furnished_by(typ)
                if k.category != "historical" and k.charter is None
            )
        )
        out.append(AuthoritySpec(aid, name, typ, kinds))
    return out


# ------------------------------------------------------------------------------ the generator


class _Gen:
    def __init__(self, cfg: CityConfig, today: dt.date) -> None:
        self.cfg = cfg
        self.today = today
        self.start = dt.date(today.year - cfg.years + 1, 1, 1)
        self.records: dict[str, list[dict[str, Any]]] = {a[0]: [] for a in AUTHORITIES}
        self.lineage: list[LineageOp] = []
        self.counters: dict[str, int] = {}
        self.seen_keys: set[str] = set()

    def rng(self, stage: str) -> random.Random:
        return random.Random(f"socialcredit-city:{self.cfg.seed}:{stage}")

    # -- helpers

    def next_no(self, series: str) -> int:
        n = self.counters.get(series, 0) + 1
        self.counters[series] = n
        return n

    def day_in(self, rng: random.Random, a: dt.date, b: dt.date) -> dt.date:
        if b < a:
            return a
        return a + dt.timedelta(days=int(rng.random() * ((b - a).days + 1)))

    def years(self) -> list[tuple[int, dt.date, dt.date, float]]:
        """(year, first day, last day, fraction of a full year) of each year in the window."""
        out = []
        for y in range(self.start.year, self.today.year + 1):
            a = max(self.start, dt.date(y, 1, 1))
            b = min(self.today, dt.date(y, 12, 31))
            out.append((y, a, b, ((b - a).days + 1) / 365.0))
        return out

    def add(self, authority: str, row: dict[str, Any]) -> dict[str, Any]:
        assert row["decision_date"] <= self.today.isoformat(), row
        self.records[authority].append(row)
        return row

    def fresh_key(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            k = make()
            if k not in self.seen_keys:
                self.seen_keys.add(k)
                return k
        raise RuntimeError("could not draw a fresh identifier")  # pragma: no cover


def _person_name(rng: random.Random, sex: str) -> str:
    given = GIVEN_MALE if sex == "male" else GIVEN_FEMALE
    return f"{rng.choice(SURNAMES)} {rng.choice(given)}"


def _people(g: _Gen, n: int) -> list[Person]:
    rng = g.rng("people")
    out = []
    for _ in range(n):
        sex = "male" if rng.random() < 0.5 else "female"
        region = DIVISION if rng.random() < 0.78 else rng.choice(NEARBY + SAMPLE_REGIONS)
        rid = g.fresh_key(
            lambda region=region, sex=sex: ids.random_rid(  # type: ignore[misc]
                rng,
                birth_year_range=(g.today.year - 80, g.today.year - 19),
                region=region,
                sex=sex,
            )
        )
        birth = dt.date(int(rid[6:10]), int(rid[10:12]), int(rid[12:14]))
        out.append(Person(f"cn-rid:{rid}", _person_name(rng, sex), sex, birth))
    return out


def _organisations(g: _Gen, n: int) -> list[Organisation]:
    rng = g.rng("organisations")
    out: list[Organisation] = []
    names: set[str] = set()

    def org(kind: str, name: str, sector: str, founded: dt.date, risk: str) -> None:
        division = DIVISION if rng.random() < 0.9 else rng.choice(NEARBY)
        code = g.fresh_key(lambda: ids.random_uscc(rng, kind=kind, division=division))  # type: ignore[arg-type]
        out.append(Organisation(f"cn-uscc:{code}", name, kind, sector, founded, risk))

    # public bodies are subjects like any other (charter art. 4): about 2 % of organisations
    for name in GOVERNMENT_ORGANS[: max(1, n // 100)]:
        org("government-organ", name, "public", dt.date(1990, 1, 1), "low")
    for name in PUBLIC_INSTITUTIONS[: max(1, n // 80)]:
        org("public-institution", name, "public", dt.date(1985, 1, 1), "low")
    for name in SOCIAL_ORGANISATIONS[: max(1, n // 200)]:
        org("social-organisation", name, "association", dt.date(2005, 1, 1), "low")
    first_business = len(out)
    while len(out) < n:
        forced = len(out) - first_business < 3  # the featured companies: old enterprises
        x = rng.random()
        sector = next(
            (s for s, c in zip(_SECTOR_NAMES, _SECTOR_CUM, strict=True) if x < c), "technology"
        )
        r = rng.random()
        risk = "high" if r < 0.08 else "medium" if r < 0.30 else "low"
        y = rng.random()
        kind = "enterprise" if y < 0.82 else "individual-business" if y < 0.95 else "cooperative"
        if forced:
            kind = "enterprise"
        # founding dates: most long established, ~12 % founded inside the window
        if rng.random() < 0.12 and not forced:
            founded = g.day_in(rng, g.start, g.today - dt.timedelta(days=60))
        else:
            founded = g.day_in(rng, dt.date(1995, 1, 1), g.start - dt.timedelta(days=1))
        suffix = SECTORS[sector][0]
        if kind == "individual-business":
            base = f"Rongcheng {rng.choice(SURNAMES)}'s {sector.replace('-', ' ').title()} Shop"
        elif kind == "cooperative":
            base = f"Rongcheng {rng.choice(COMPANY_WORDS)} {sector.replace('-', ' ').title()} Farmers' Cooperative"
        else:
            base = f"Rongcheng {rng.choice(COMPANY_WORDS)} {suffix}"
        name, i = base, 2
        while name in names:
            name, i = f"{base} ({i})", i + 1
        names.add(name)
        org(kind, name, sector, founded, risk)
    return out


_RISK = {"low": 0.5, "medium": 1.6, "high": 4.0}


def _amount(rng: random.Random, lo: float, hi: float) -> str:
    """A money amount (yuan), log-uniform between lo and hi, rounded like real decisions."""
    import math

    v = math.exp(math.log(lo) + rng.random() * (math.log(hi) - math.log(lo)))
    if v >= 1000:
        v = round(v, -2)
    return f"{v:.2f}"


# ------------------------------------------------------------------------------ court


def _court_case(
    g: _Gen,
    rng: random.Random,
    subject: str,
    name: str,
    on: dt.date,
    *,
    person: bool,
    ground: str | None = None,
    performs: bool | None = None,
) -> dict[str, Any]:
    """A judgment defaulter listing, its spending-restriction order and perhaps its performance."""
    n = g.next_no(f"court-zhi-{on.year}")
    case_no = f"({on.year}) Lu 1082 Zhi {1000 + n}"
    if ground is None:
        x = rng.random()
        ground = (
            "able-but-refuses"
            if x < 0.72
            else "evades-enforcement"
            if x < 0.84
            else "asset-report-violation"
            if x < 0.92
            else "obstructs-enforcement"
            if x < 0.95
            else "spending-order-violation"
            if x < 0.98
            else "settlement-refused"
        )
    attrs: dict[str, Any] = {"ground": ground, "case_no": case_no}
    if ground != "able-but-refuses" and rng.random() < 0.15:
        attrs["serious_circumstances"] = True
        attrs["extension_years"] = 1 + int(rng.random() * 3)
    amount = _amount(rng, 8_000, 400_000) if person else _amount(rng, 50_000, 5_000_000)
    row = g.add(
        "rc-court",
        {
            "ref": f"RCC-{on.year}-D{n:05d}",
            "subject": subject,
            "subject_name": name,
            "kind": "court.judgment-defaulter",
            "decision_no": f"{case_no} Shixin",
            "decision_date": on.isoformat(),
            "severity": "serious",
            "amount": amount,
            "attributes": attrs,
        },
    )
    g.add(
        "rc-court",
        {
            "ref": f"RCC-{on.year}-R{n:05d}",
            "subject": subject,
            "subject_name": name,
            "kind": "court.spending-restriction",
            "decision_no": f"{case_no} Xianxiao",
            "decision_date": on.isoformat(),
            "severity": "serious",
            "attributes": {"case_no": case_no},
        },
    )
    if performs is None:
        performs = rng.random() < 0.33
    if performs:
        done = on + dt.timedelta(days=30 + int(rng.random() * 540))
        if done <= g.today:
            x = rng.random()
            trigger = (
                "performed"
                if x < 0.6
                else "settlement-performed"
                if x < 0.8
                else "creditor-application"
                if x < 0.9
                else "no-assets-found"
            )
            g.add(
                "rc-court",
                {
                    "ref": f"RCC-{on.year}-P{n:05d}",
                    "subject": subject,
                    "subject_name": name,
                    "kind": "court.obligation-performed",
                    "decision_no": f"{case_no} Jie",
                    "decision_date": done.isoformat(),
                    "attributes": {"trigger": trigger, "case_no": case_no},
                },
            )
    return row


# ------------------------------------------------------------------------------ people

TRAFFIC = (
    # offence, severity, points, fine range
    ("illegal parking", "minor", 0, (50, 200)),
    ("speeding by less than 20 %", "minor", 3, (100, 200)),
    ("not wearing a seat belt", "minor", 1, (50, 50)),
    ("using a hand-held phone while driving", "minor", 3, (100, 200)),
    ("running a red light", "general", 6, (200, 200)),
    ("not yielding to pedestrians at a crossing", "general", 3, (200, 200)),
    ("speeding by 20-50 %", "general", 6, (200, 2000)),
    ("driving after drinking", "serious", 12, (1000, 2000)),
    ("speeding by more than 50 %", "serious", 12, (500, 2000)),
)


def _person_records(g: _Gen, people: list[Person]) -> None:
    rng = g.rng("person-records")
    for p in people:
        k, nm = p.key, p.name
        volunteer = rng.random() < 0.09
        donor = rng.random() < 0.04
        careless = rng.random() < 0.15  # drives a lot / forgets bills: higher rates
        m = 2.5 if careless else 0.7
        for year, a, b, f in g.years():
            # traffic tickets
            for _ in range(3):
                if rng.random() < 0.10 * m * f:
                    x = rng.random()
                    t = TRAFFIC[
                        0 if x < 0.35 else 1 if x < 0.55 else 2 if x < 0.63 else 3 if x < 0.70
                        else 4 if x < 0.82 else 5 if x < 0.90 else 6 if x < 0.97
                        else 7 if x < 0.988 else 8
                    ]  # fmt: skip
                    on = g.day_in(rng, a, b)
                    n = g.next_no("traffic")
                    attrs: dict[str, Any] = {"offence": t[0], "points": t[2]}
                    if t[0] == "driving after drinking":
                        attrs["drunk_driving"] = True
                    row = g.add(
                        "rc-traffic",
                        {
                            "ref": f"RCT-{on.year}-{n:06d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "traffic.violation",
                            "decision_no": f"3710821{on.year}{n:07d}",
                            "decision_date": on.isoformat(),
                            "severity": t[1],
                            "amount": _amount(rng, t[3][0], t[3][1] + 0.01),
                            "attributes": attrs,
                        },
                    )
                    y = rng.random()
                    if y < 0.008 and t[1] != "minor":
                        lower = "general" if t[1] == "serious" else "minor"
                        g.lineage.append(
                            LineageOp(
                                "correct",
                                "rc-traffic",
                                "rc-traffic",
                                row["ref"],
                                f"{row['ref']}-C1",
                                "The speed camera's calibration was out of date: the offence was "
                                f"re-assessed as {lower}.",
                                {"severity": lower},
                            )
                        )
                    elif y < 0.018:
                        g.lineage.append(
                            LineageOp(
                                "retract",
                                "rc-traffic",
                                "rc-traffic",
                                row["ref"],
                                f"{row['ref']}-X",
                                "The camera misread the number plate: the ticket was issued to the "
                                "wrong vehicle owner.",
                            )
                        )
            # utility arrears
            if rng.random() < 0.025 * m * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("utility")
                x = rng.random()
                util = (
                    "heating"
                    if x < 0.4
                    else "water"
                    if x < 0.65
                    else "gas"
                    if x < 0.85
                    else "electricity"
                )
                court = rng.random() < 0.08
                g.add(
                    "rc-utilities" if not court else "rc-court",
                    {
                        "ref": f"RCU-{on.year}-{n:05d}" if not court else f"RCC-{on.year}-U{n:05d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "utility.late-payment",
                        "decision_no": f"RCU-ARR-{on.year}-{n:05d}"
                        if not court
                        else f"({on.year}) Lu 1082 Min Chu {3000 + n}",
                        "decision_date": on.isoformat(),
                        "severity": "minor" if rng.random() < 0.6 else "general",
                        "amount": _amount(rng, 60, 4000),
                        "attributes": {"utility": util, "court_finding": court},
                    },
                )
            if rng.random() < 0.0015 * m * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("utility-heat")
                g.add(
                    "rc-utilities",
                    {
                        "ref": f"RCU-{on.year}-H{n:04d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "utility.heating-tampering",
                        "decision_no": f"RCU-HT-{on.year}-{n:04d}",
                        "decision_date": on.isoformat(),
                        "severity": "general",
                        "attributes": {
                            "method": rng.choice(["own-taps", "releasing-water", "pumps"])
                        },
                    },
                )
            if rng.random() < 0.0006 * m * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("utility-theft")
                g.add(
                    "rc-utilities",
                    {
                        "ref": f"RCU-{on.year}-T{n:04d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "utility.theft",
                        "decision_no": f"RCU-TH-{on.year}-{n:04d}",
                        "decision_date": on.isoformat(),
                        "severity": "general",
                        "amount": _amount(rng, 300, 8000),
                        "attributes": {"utility": rng.choice(["electricity", "water", "gas"])},
                    },
                )
            # bank arrears (counted per monthly cycle)
            for kind, rate in (
                ("finance.loan-arrears", 0.012),
                ("finance.credit-card-overdue", 0.02),
            ):
                if rng.random() < rate * m * f:
                    on = g.day_in(rng, a, b)
                    n = g.next_no("bank")
                    g.add(
                        "rc-bank",
                        {
                            "ref": f"RCB-{on.year}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": kind,
                            "decision_no": f"RCB-OD-{on.year}-{n:05d}",
                            "decision_date": on.isoformat(),
                            "severity": "minor" if rng.random() < 0.7 else "general",
                            "amount": _amount(rng, 500, 60_000),
                            "attributes": {"cycle": f"{on.year}-{on.month:02d}"}
                            if kind == "finance.credit-card-overdue"
                            else {
                                "cycle": f"{on.year}-{on.month:02d}",
                                "days_overdue": 30 + int(rng.random() * 150),
                            },
                        },
                    )
            # civil disputes decided by the court
            for kind, rate in (
                ("commerce.contract-breach", 0.003),
                ("commerce.debt-judgment", 0.004),
                ("finance.private-lending-breach", 0.002),
            ):
                if rng.random() < rate * m * f:
                    on = g.day_in(rng, a, b)
                    n = g.next_no(f"court-min-{on.year}")
                    attrs = {}
                    if kind == "commerce.contract-breach":
                        attrs = {
                            "sector": rng.choice(["lending", "credit", "leasing", "other"]),
                            "sued_and_found_in_breach": True,
                        }
                    else:
                        attrs = {"case_no": f"({on.year}) Lu 1082 Min Chu {n}"}
                    g.add(
                        "rc-court",
                        {
                            "ref": f"RCC-{on.year}-M{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": kind,
                            "decision_no": f"({on.year}) Lu 1082 Min Chu {n}",
                            "decision_date": on.isoformat(),
                            "severity": "general",
                            "amount": _amount(rng, 2_000, 300_000),
                            "attributes": attrs,
                        },
                    )
            # judgment defaulters
            if rng.random() < 0.0025 * (1.8 if careless else 0.85) * f:
                _court_case(g, rng, k, nm, g.day_in(rng, a, b), person=True)
            # travel offences
            if rng.random() < 0.0004 * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("caac")
                g.add(
                    "caac-east",
                    {
                        "ref": f"CAAC-EC-{on.year}-{n:04d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "transport.aviation-offence",
                        "decision_no": f"Min Hang Hua Dong Fa ({on.year}) {n}",
                        "decision_date": on.isoformat(),
                        "severity": "serious",
                        "attributes": {
                            "offence": rng.choice(
                                [
                                    "smoking-or-fire-on-board",
                                    "obstructing-crew",
                                    "fighting-or-seat-occupation",
                                ]
                            )
                        },
                    },
                )
            if rng.random() < 0.0008 * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("rail")
                g.add(
                    "jinan-railway",
                    {
                        "ref": f"JNR-{on.year}-{n:04d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "transport.rail-offence",
                        "decision_no": f"Ji Tie Gong Fa ({on.year}) {n}",
                        "decision_date": on.isoformat(),
                        "severity": "serious",
                        "attributes": {"offence": rng.choice(["smoking-on-hsr", "fare-evasion"])},
                    },
                )
            # the red side
            if volunteer:
                end = dt.date(year, 12, 31)
                if end <= g.today:
                    n = g.next_no("volunteer")
                    g.add(
                        "rc-civil-affairs",
                        {
                            "ref": f"RCCA-V-{year}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "civil.volunteering",
                            "decision_no": f"Rong Zhi ({year}) {n}",
                            "decision_date": end.isoformat(),
                            "attributes": {
                                "hours": round(8 + rng.random() * 240, 1),
                                "period": str(year),
                            },
                        },
                    )
            if donor:
                for _ in range(1 + (rng.random() < 0.4)):
                    on = g.day_in(rng, a, b)
                    n = g.next_no("blood")
                    g.add(
                        "rc-blood-centre",
                        {
                            "ref": f"WHB-{on.year}-{n:06d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "health.blood-donation",
                            "decision_no": f"WHB-D-{on.year}-{n:06d}",
                            "decision_date": on.isoformat(),
                            "attributes": {"volume_ml": rng.choice([200, 300, 400])},
                        },
                    )
            if rng.random() < 0.0025 * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("heroic")
                g.add(
                    "rc-government",
                    {
                        "ref": f"RCG-H-{on.year}-{n:04d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "honour.heroic-act",
                        "decision_no": f"Rong Zheng Jiang ({on.year}) {n}",
                        "decision_date": on.isoformat(),
                    },
                )
            if rng.random() < 0.002 * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("honour")
                g.add(
                    "rc-government",
                    {
                        "ref": f"RCG-C-{on.year}-{n:04d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "honour.commendation",
                        "decision_no": f"Rong Zheng Biao ({on.year}) {n}",
                        "decision_date": on.isoformat(),
                        "attributes": {
                            "level": rng.choice(["city", "city", "county", "provincial"]),
                            "honour": rng.choice(
                                [
                                    "Rongcheng Good Samaritan",
                                    "Model Worker",
                                    "Outstanding Volunteer",
                                    "Filial Piety Model",
                                ]
                            ),
                        },
                    },
                )


# ------------------------------------------------------------------------------ organisations

_TAX_GRADES = {  # risk -> cumulative (A, B, C, D)
    "low": (0.07, 0.92, 0.99, 1.0),
    "medium": (0.0, 0.65, 0.90, 1.0),
    "high": (0.0, 0.30, 0.60, 1.0),
}


def _org_records(g: _Gen, orgs: list[Organisation]) -> None:
    rng = g.rng("org-records")
    for o in orgs:
        k, nm = o.key, o.name
        mult = _RISK[o.risk]
        business = o.kind in ("enterprise", "individual-business", "cooperative")
        sector = SECTORS.get(o.sector)
        polluting = bool(sector and sector[2])
        trader = bool(sector and sector[3]) and o.kind == "enterprise" and rng.random() < 0.45
        field_ = sector[4] if sector else "other"
        env_rated = polluting and o.kind == "enterprise" and rng.random() < 0.6
        customs_grade: str | None = None
        if trader:
            x = rng.random()
            customs_grade = (
                "advanced-certified"
                if x < 0.02
                else "dishonest"
                if x < 0.02 + 0.02 * mult
                else "general"
            )
        env_bias = rng.random()
        direct_d_years: set[int] = set()
        for year, a, b, f in g.years():
            if o.founded > b:
                continue
            a = max(a, o.founded)
            # --- tax
            if o.kind != "government-organ":
                for kind, rate, sev in (
                    ("tax.late-filing", 0.07, "minor"),
                    ("tax.late-payment", 0.04, "minor"),
                ):
                    if rng.random() < rate * mult * f:
                        on = g.day_in(rng, a, b)
                        n = g.next_no("tax")
                        row = g.add(
                            "rc-tax",
                            {
                                "ref": f"RCTX-{on.year}-{n:05d}",
                                "subject": k,
                                "subject_name": nm,
                                "kind": kind,
                                "decision_no": f"Rong Shui Ze ({on.year}) {n}",
                                "decision_date": on.isoformat(),
                                "severity": sev if rng.random() < 0.8 else "general",
                                "attributes": {
                                    "period": f"{on.year}-{on.month:02d}",
                                    "tax_type": rng.choice(
                                        ["VAT", "corporate income tax", "stamp duty"]
                                    ),
                                },
                            },
                        )
                        if kind == "tax.late-filing" and rng.random() < 0.03:
                            g.lineage.append(
                                LineageOp(
                                    "retract",
                                    "rc-tax",
                                    "rc-tax",
                                    row["ref"],
                                    f"{row['ref']}-X",
                                    "The return was filed on time; the e-filing service was down "
                                    "and logged it late.",
                                )
                            )
            if business:
                if rng.random() < 0.012 * mult * f:
                    on = g.day_in(rng, a, b)
                    n = g.next_no("tax")
                    g.add(
                        "rc-tax",
                        {
                            "ref": f"RCTX-{on.year}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "tax.arrears",
                            "decision_no": f"Rong Shui Cui ({on.year}) {n}",
                            "decision_date": on.isoformat(),
                            "severity": "general" if rng.random() < 0.75 else "serious",
                            "amount": _amount(rng, 5_000, 800_000),
                            "attributes": {"deadline": (on + dt.timedelta(days=15)).isoformat()},
                        },
                    )
                    direct_d_years.add(on.year)
                if rng.random() < 0.0015 * mult * f:
                    on = g.day_in(rng, a, b)
                    n = g.next_no("tax")
                    criminal = rng.random() < 0.2
                    g.add(
                        "rc-tax",
                        {
                            "ref": f"RCTX-{on.year}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "tax.evasion",
                            "decision_no": f"Rong Shui Ji Fa ({on.year}) {n}",
                            "decision_date": on.isoformat(),
                            "severity": "serious",
                            "amount": _amount(rng, 40_000, 3_000_000),
                            "attributes": {
                                "share_of_tax_due": round(0.05 + rng.random() * 0.4, 3),
                                "criminal": criminal,
                            },
                        },
                    )
                    direct_d_years.add(on.year)
                if rng.random() < 0.0008 * mult * f:
                    on = g.day_in(rng, a, b)
                    n = g.next_no("tax")
                    g.add(
                        "rc-tax",
                        {
                            "ref": f"RCTX-{on.year}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "tax.invoice-fraud",
                            "decision_no": f"Rong Shui Ji Fa ({on.year}) {n}",
                            "decision_date": on.isoformat(),
                            "severity": "serious",
                            "amount": _amount(rng, 20_000, 1_000_000),
                            "attributes": {"criminal": rng.random() < 0.3},
                        },
                    )
                    direct_d_years.add(on.year)
            # the annual rating of the previous year, decided in April
            rated = dt.date(year, 4, 10) + dt.timedelta(days=int(rng.random() * 20))
            if (
                o.kind in ("enterprise", "cooperative")
                and rated <= g.today
                and rated >= g.start
                and year - 1 >= 2014  # the rating's year (the catalogue's minimum: 2014)
                and o.founded < dt.date(year, 1, 1)
            ):
                new = o.founded >= dt.date(year - 1, 1, 1)
                attrs: dict[str, Any]
                if year - 1 in direct_d_years:
                    grade, attrs = "D", {"direct_d": True}
                elif new:
                    grade, attrs = "M", {}
                else:
                    x = rng.random()
                    cum = _TAX_GRADES[o.risk]
                    grade = "A" if x < cum[0] else "B" if x < cum[1] else "C" if x < cum[2] else "D"
                    lo, hi = {"A": (90, 100), "B": (70, 89.9), "C": (40, 69.9), "D": (5, 39.9)}[
                        grade
                    ]
                    attrs = {"score": round(lo + rng.random() * (hi - lo), 1)}
                n = g.next_no("tax-rating")
                g.add(
                    "rc-tax",
                    {
                        "ref": f"RCTX-CR-{year - 1}-{n:05d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "tax.credit-rating",
                        "decision_no": f"Rong Shui Ping ({year}) {n}",
                        "decision_date": rated.isoformat(),
                        "attributes": {"grade": grade, "year": year - 1, **attrs},
                    },
                )
            # --- market regulation
            if business and rng.random() < 0.05 * mult * f:
                _penalty(g, rng, o, field_, g.day_in(rng, a, b))
            if business and rng.random() < 0.012 * mult * f:
                on = g.day_in(rng, max(a, dt.date(year, 7, 1)), min(b, dt.date(year, 7, 20)))
                if a <= on <= b:
                    n = g.next_no("abnormal")
                    x = rng.random()
                    trigger = (
                        "annual-report" if x < 0.8 else "unreachable" if x < 0.93 else "disclosure"
                    )
                    g.add(
                        "rc-amr",
                        {
                            "ref": f"RCAMR-AB-{on.year}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "market.abnormal-operations",
                            "decision_no": f"Rong Shi Jian Yi ({on.year}) {n}",
                            "decision_date": on.isoformat(),
                            "severity": "general",
                            "attributes": {"trigger": trigger},
                        },
                    )
                    if rng.random() < 0.6:
                        cured = on + dt.timedelta(days=20 + int(rng.random() * 240))
                        if cured <= g.today:
                            g.add(
                                "rc-amr",
                                {
                                    "ref": f"RCAMR-ABC-{cured.year}-{n:05d}",
                                    "subject": k,
                                    "subject_name": nm,
                                    "kind": "market.abnormal-operations-cured",
                                    "decision_no": f"Rong Shi Jian Yi Yi ({cured.year}) {n}",
                                    "decision_date": cured.isoformat(),
                                    "attributes": {"trigger": trigger},
                                },
                            )
            if (
                business
                and rng.random() < 0.08 * f
                and o.sector in ("food-processing", "fisheries", "pharmacy", "tourism", "retail")
            ):
                on = g.day_in(rng, a, b)
                n = g.next_no("licence")
                g.add(
                    "rc-amr",
                    {
                        "ref": f"RCAMR-L-{on.year}-{n:05d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "admin.licence",
                        "decision_no": f"JY{DIVISION}{on.year}{n:05d}",
                        "decision_date": on.isoformat(),
                        "attributes": {
                            "licence_type": "food business licence"
                            if o.sector != "pharmacy"
                            else "drug retail licence",
                            "valid_until": dt.date(
                                on.year + 5, on.month, min(on.day, 28)
                            ).isoformat(),
                        },
                    },
                )
            # --- environment (rated each March for polluting enterprises)
            if env_rated:
                on = dt.date(year, 3, 5) + dt.timedelta(days=int(rng.random() * 20))
                if (
                    g.start <= on <= g.today
                    and year - 1 >= 2013  # the 2013 measures; the catalogue's minimum year
                    and o.founded < dt.date(year - 1, 1, 1)
                ):
                    # a firm's colour is sticky: mostly its own level, sometimes a fresh draw
                    x = env_bias if rng.random() < 0.8 else rng.random()
                    if o.risk != "low":
                        x = min(0.999, x + 0.08)
                    colour = (
                        "green"
                        if x < 0.14
                        else "blue"
                        if x < 0.875
                        else "yellow"
                        if x < 0.975
                        else "red"
                    )
                    n = g.next_no("env")
                    g.add(
                        "rc-environment",
                        {
                            "ref": f"WHEE-CR-{year - 1}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "environment.credit-result",
                            "decision_no": f"Wei Huan Xin Ping ({year}) {n}",
                            "decision_date": on.isoformat(),
                            "attributes": {"colour": colour, "year": year - 1},
                        },
                    )
                if rng.random() < 0.02 * mult * f:
                    on = g.day_in(rng, a, b)
                    n = g.next_no("env-v")
                    sev = (
                        "minor"
                        if rng.random() < 0.4
                        else "general"
                        if rng.random() < 0.8
                        else "serious"
                    )
                    g.add(
                        "rc-environment",
                        {
                            "ref": f"WHEE-V-{on.year}-{n:05d}",
                            "subject": k,
                            "subject_name": nm,
                            "kind": "environment.violation",
                            "decision_no": f"Wei Huan Fa ({on.year}) {n}",
                            "decision_date": on.isoformat(),
                            "severity": sev,
                            "amount": _amount(rng, 10_000, 500_000),
                            **(
                                {"attributes": {"veto_act": "illegal-discharge"}}
                                if sev == "serious"
                                else {}
                            ),
                        },
                    )
            # --- customs (rated when the trader is first assessed, re-rated some years)
            if customs_grade is not None and (year == g.start.year + 1 or rng.random() < 0.1 * f):
                on = g.day_in(rng, a, b)
                n = g.next_no("customs")
                g.add(
                    "weihai-customs",
                    {
                        "ref": f"WHC-CR-{on.year}-{n:05d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "customs.credit-result",
                        "decision_no": f"Wei Guan Xin ({on.year}) {n}",
                        "decision_date": on.isoformat(),
                        "attributes": {"grade": customs_grade},
                    },
                )
            if trader and rng.random() < 0.01 * mult * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("customs-v")
                g.add(
                    "weihai-customs",
                    {
                        "ref": f"WHC-V-{on.year}-{n:05d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "customs.violation",
                        "decision_no": f"Wei Guan Fa ({on.year}) {n}",
                        "decision_date": on.isoformat(),
                        "severity": "minor" if rng.random() < 0.6 else "general",
                        "amount": _amount(rng, 1_000, 200_000),
                        "attributes": {"declarant": False},
                    },
                )
            # --- courts and banks
            if rng.random() < 0.004 * mult * f and o.kind != "social-organisation":
                _court_case(g, rng, k, nm, g.day_in(rng, a, b), person=False)
            if business and rng.random() < 0.015 * mult * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("bank")
                g.add(
                    "rc-bank",
                    {
                        "ref": f"RCB-{on.year}-{n:05d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "finance.loan-arrears",
                        "decision_no": f"RCB-OD-{on.year}-{n:05d}",
                        "decision_date": on.isoformat(),
                        "severity": "general",
                        "amount": _amount(rng, 20_000, 2_000_000),
                        "attributes": {
                            "cycle": f"{on.year}-{on.month:02d}",
                            "days_overdue": 30 + int(rng.random() * 300),
                        },
                    },
                )
            # --- the red side: commendations
            if rng.random() < 0.012 * (2.0 if o.risk == "low" else 0.3) * f:
                on = g.day_in(rng, a, b)
                n = g.next_no("honour")
                g.add(
                    "rc-government",
                    {
                        "ref": f"RCG-C-{on.year}-{n:04d}",
                        "subject": k,
                        "subject_name": nm,
                        "kind": "honour.commendation",
                        "decision_no": f"Rong Zheng Biao ({on.year}) {n}",
                        "decision_date": on.isoformat(),
                        "attributes": {
                            "level": rng.choice(["city", "city", "provincial"]),
                            "honour": rng.choice(
                                [
                                    "Trustworthy Enterprise of Rongcheng",
                                    "Shandong Contract-Abiding and Creditworthy Enterprise",
                                    "Weihai Quality Award",
                                ]
                            ),
                        },
                    },
                )
        # a public credit evaluation for most enterprises, once (the NDRC round)
        ev = dt.date(g.today.year - 1, 9, 15)
        if o.kind == "enterprise" and o.founded < ev and ev >= g.start and rng.random() < 0.7:
            x = rng.random() * (1.0 if o.risk == "low" else 1.6 if o.risk == "medium" else 2.2)
            grade = (
                "excellent" if x < 0.2 else "good" if x < 0.82 else "medium" if x < 1.2 else "poor"
            )
            n = g.next_no("pce")
            g.add(
                "rc-credit-office",
                {
                    "ref": f"RCCO-E-{ev.year}-{n:05d}",
                    "subject": k,
                    "subject_name": nm,
                    "kind": "credit.public-credit-evaluation",
                    "decision_no": f"Rong Xin Ping ({ev.year}) {n}",
                    "decision_date": ev.isoformat(),
                    "attributes": {"grade": grade},
                },
            )


_FOCUS = ("food", "drugs", "medical-devices", "cosmetics", "special-equipment", "product-quality",
          "consumer-rights", "fair-competition")  # fmt: skip


def _penalty(
    g: _Gen,
    rng: random.Random,
    o: Organisation,
    field_: str,
    on: dt.date,
    *,
    severity: str | None = None,
    heavier: bool | None = None,
    listing: bool | None = None,
    repair: bool | None = None,
    plain: bool = False,
) -> dict[str, Any]:
    """An administrative penalty by market regulation, with its sequels (listing, repair, court)."""
    k, nm = o.key, o.name
    if severity is None:
        x = rng.random()
        severity = "minor" if x < 0.55 else "general" if x < 0.88 else "serious"
    if severity == "minor":
        ptype = "warning" if rng.random() < 0.3 else "fine"
        amount = _amount(rng, 500, 20_000) if ptype == "fine" else None
        procedure = "simplified" if ptype == "warning" or rng.random() < 0.4 else "ordinary"
    elif severity == "general":
        ptype = "fine" if rng.random() < 0.75 else "confiscation"
        amount = _amount(rng, 10_000, 300_000)
        procedure = "ordinary"
    else:
        ptype = rng.choice(
            ["licence-suspension", "licence-revocation", "business-restriction", "fine"]
        )
        amount = _amount(rng, 100_000, 2_000_000)
        procedure = "ordinary"
    if heavier is None:
        heavier = severity == "serious" and field_ in _FOCUS and rng.random() < 0.6
    n = g.next_no(f"amr-{on.year}")
    attrs: dict[str, Any] = {"penalty_type": ptype, "field": field_, "procedure": procedure}
    if heavier:
        attrs["heavier_penalty"] = True
    row = g.add(
        "rc-amr",
        {
            "ref": f"RCAMR-{on.year}-{n:05d}",
            "subject": k,
            "subject_name": nm,
            "kind": "admin.penalty",
            "decision_no": f"Rong Shi Jian Fa ({on.year}) {n}",
            "decision_date": on.isoformat(),
            "severity": severity,
            **({"amount": amount} if amount else {}),
            "attributes": attrs,
        },
    )
    # the serious-list decision follows a heavier penalty after notice and the objection window
    if heavier:
        if listing is None:
            listing = rng.random() < 0.7
        decided = on + dt.timedelta(days=12 + int(rng.random() * 20))
        if listing and decided <= g.today:
            g.add(
                "rc-amr",
                {
                    "ref": f"RCAMR-SL-{decided.year}-{n:05d}",
                    "subject": k,
                    "subject_name": nm,
                    "kind": "market.serious-violation-listing",
                    "decision_no": f"Rong Shi Jian Lie ({decided.year}) {n}",
                    "decision_date": decided.isoformat(),
                    "severity": "serious",
                    "attributes": {
                        "field": field_,
                        "heavier_penalty": "qualification-or-licence"
                        if "licence" in ptype
                        else "business-restriction"
                        if ptype == "business-restriction"
                        else "heavier-fine",
                        "penalty_decision_no": row["decision_no"],
                    },
                },
            )
    # corrections and court overturns
    x = 1.0 if plain else rng.random()
    if x < 0.015 and amount:
        new_amount = f"{round(float(amount) * rng.choice([0.5, 0.8, 0.9]), 2):.2f}"
        g.lineage.append(
            LineageOp(
                "correct",
                "rc-amr",
                "rc-amr",
                row["ref"],
                f"{row['ref']}-C1",
                "Clerical error in the fine: the decision was re-issued with the correct amount.",
                {"amount": new_amount},
            )
        )
    elif x < 0.035 and severity != "minor":
        g.lineage.append(
            LineageOp(
                "overturn",
                "rc-court",
                "rc-amr",
                row["ref"],
                f"RCC-XZ-{row['ref']}",
                f"Penalty decision revoked by the Rongcheng People's Court in administrative "
                f"litigation ({min(on.year + 1, g.today.year)}) Lu 1082 Xing Chu {n}.",
            )
        )
    # credit repair paperwork: a commitment letter and a training certificate
    if severity in ("general", "serious"):
        wait = 100 if severity == "general" else 380
        if repair is None:
            repair = rng.random() < 0.3
        signed = on + dt.timedelta(days=wait + int(rng.random() * 120))
        if repair and signed <= g.today:
            m = g.next_no("repair")
            g.add(
                "rc-credit-office",
                {
                    "ref": f"RCCO-CM-{signed.year}-{m:05d}",
                    "subject": k,
                    "subject_name": nm,
                    "kind": "credit.commitment",
                    "decision_no": f"Rong Xin Cheng ({signed.year}) {m}",
                    "decision_date": signed.isoformat(),
                    "attributes": {"purpose": "credit-repair", "fulfilled": True},
                },
            )
            g.add(
                "rc-credit-office",
                {
                    "ref": f"RCCO-TR-{signed.year}-{m:05d}",
                    "subject": k,
                    "subject_name": nm,
                    "kind": "credit.repair-training",
                    "decision_no": f"Rong Xin Pei ({signed.year}) {m}",
                    "decision_date": signed.isoformat(),
                    "attributes": {"certificate_no": f"XYXF{signed.year}{m:05d}"},
                },
            )
    return row


# ------------------------------------------------------------------------------ featured subjects


def _featured(g: _Gen, people: list[Person], orgs: list[Organisation]) -> dict[str, Any]:
    """Subjects with a known file, for the demo's keys and cases (added on top of the rates)."""
    rng = g.rng("featured")
    t = g.today
    feat: dict[str, Any] = {}
    # a judgment defaulter who refuses to pay (listed, spending-restricted: no flights, no G-trains)
    p = people[0]
    on = t - dt.timedelta(days=400)
    court = _court_case(
        g, rng, p.key, p.name, on, person=True, ground="able-but-refuses", performs=False
    )
    n = g.next_no("utility")
    disputed = g.add(
        "rc-utilities",
        {
            "ref": f"RCU-{t.year}-{n:05d}",
            "subject": p.key,
            "subject_name": p.name,
            "kind": "utility.late-payment",
            "decision_no": f"RCU-ARR-{t.year}-{n:05d}",
            "decision_date": (t - dt.timedelta(days=20)).isoformat(),
            "severity": "general",
            "amount": "2380.00",
            "attributes": {"utility": "heating", "court_finding": False},
        },
    )
    on = t - dt.timedelta(days=230)
    n = g.next_no("traffic")
    g.add(
        "rc-traffic",
        {
            "ref": f"RCT-{on.year}-{n:06d}",
            "subject": p.key,
            "subject_name": p.name,
            "kind": "traffic.violation",
            "decision_no": f"3710821{on.year}{n:07d}",
            "decision_date": on.isoformat(),
            "severity": "general",
            "amount": "200.00",
            "attributes": {"offence": "running a red light", "points": 6},
        },
    )
    end = dt.date(t.year - 1, 12, 31)
    if end >= g.start:
        n = g.next_no("volunteer")
        g.add(
            "rc-civil-affairs",
            {
                "ref": f"RCCA-V-{end.year}-{n:05d}",
                "subject": p.key,
                "subject_name": p.name,
                "kind": "civil.volunteering",
                "decision_no": f"Rong Zhi ({end.year}) {n}",
                "decision_date": end.isoformat(),
                "attributes": {"hours": 36.5, "period": str(end.year)},
            },
        )
    feat["person"] = p.key
    feat["person_name"] = p.name
    feat["person_listing"] = ("rc-court", court["ref"])
    feat["objection"] = ("rc-utilities", disputed["ref"])
    # a model citizen: two heroic acts -> Rongcheng AAA (rewards)
    q = people[1]
    for days in (200, 500):
        on = t - dt.timedelta(days=days)
        n = g.next_no("heroic")
        g.add(
            "rc-government",
            {
                "ref": f"RCG-H-{on.year}-{n:04d}",
                "subject": q.key,
                "subject_name": q.name,
                "kind": "honour.heroic-act",
                "decision_no": f"Rong Zheng Jiang ({on.year}) {n}",
                "decision_date": on.isoformat(),
            },
        )
    feat["model_citizen"] = q.key
    # two officers (officers are subjects like anyone else) and a tipster
    feat["officer"] = people[2].key
    feat["officer_name"] = people[2].name
    feat["reviewer"] = people[3].key
    feat["reviewer_name"] = people[3].name
    feat["tipster"] = people[4].key
    # enterprises: a heavier serious penalty whose listing awaits review, and one applying for repair
    businesses = [o for o in orgs if o.kind == "enterprise" and o.founded < g.start]
    food = [o for o in businesses if o.sector in ("food-processing", "fisheries")] or businesses
    c = food[0]
    row = _penalty(
        g,
        rng,
        c,
        "food",
        t - dt.timedelta(days=10),
        severity="serious",
        heavier=True,
        listing=False,
        repair=False,
        plain=True,
    )
    feat["company"] = c.key
    feat["company_name"] = c.name
    feat["review"] = ("rc-amr", row["ref"])
    r = next(o for o in businesses if o is not c)
    row = _penalty(
        g,
        rng,
        r,
        SECTORS[r.sector][4],
        t - dt.timedelta(days=250),
        severity="general",
        heavier=False,
        repair=True,
        plain=True,
    )
    feat["repair"] = r.key
    feat["repair_record"] = ("rc-amr", row["ref"])
    tipped = next(o for o in businesses if o not in (c, r))
    feat["tip_about"] = tipped.key
    feat["tip_about_name"] = tipped.name
    organ = next(o for o in orgs if o.kind == "government-organ")
    _court_case(
        g, rng, organ.key, organ.name, t - dt.timedelta(days=300), person=False,
        ground="able-but-refuses", performs=False,
    )  # fmt: skip
    feat["government_organ"] = organ.key
    return feat


def generate_city(config: CityConfig, today: dt.date, catalogue: Catalogue) -> City:
    """Generate the city deterministically from ``config`` as of ``today`` (nothing is written)."""
    g = _Gen(config, today)
    people = _people(g, config.people)
    orgs = _organisations(g, config.companies)
    featured = _featured(g, people, orgs)
    _person_records(g, people)
    _org_records(g, orgs)
    for rows in g.records.values():
        rows.sort(key=lambda r: (r["decision_date"], r["ref"]))
    return City(
        config=config,
        today=today,
        start=g.start,
        people=people,
        organisations=orgs,
        authorities=authority_specs(catalogue),
        records={a: rows for a, rows in g.records.items() if rows},
        lineage=g.lineage,
        featured=featured,
    )
