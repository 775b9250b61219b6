"""The demo city's open cases, through the cases room's Python API (:mod:`socialcredit.cases`).

Isolated here so the rest of the city does not depend on the cases room. What it opens:

* a **pending objection**: the featured person disputes a heating-arrears record (the utilities
  group, whose provider key the demo prints, must answer before the deadline);
* **review cases** for every listing the engine proposes where the rulebook requires human review
  (the cases sweep opens them); the featured company's serious listing gets its first confirmation
  from the demo officer, so the second officer (the reviewer key) can give the second (four eyes);
* a **repair application** by the featured repair company (general penalty display, after the
  three-month minimum, with a credit commitment letter), awaiting an officer's decision;
* a few **approved repairs**: other companies that met the conditions, decided by the demo
  officer (the listing ends through the engine, with a ``credit.repair-approved`` record);
* a **tip** from the public about a company, queued for an officer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from socialcredit.errors import InputError, NotFoundError
from socialcredit.ledger import Ledger
from socialcredit.sim.city import City

if TYPE_CHECKING:
    from socialcredit.sim.build import BuildReport

REPAIRABLE = ("samr-penalty-display-general", "samr-penalty-display-serious")
APPROVED_REPAIRS = 3


def open_demo_cases(
    ledger: Ledger, city: City, seqs: dict[tuple[str, str], int], report: BuildReport
) -> tuple[list[dict[str, Any]], str | None]:
    """Open the demo's cases. Returns ``{"type", "case_id", "subject", "what"}`` per case opened
    (or decided) and a note naming what could not be done, if anything."""
    try:
        from socialcredit.cases import objections, repairs, reviews, tips
        from socialcredit.cases.actions import list_cases
        from socialcredit.cases.sweep import sweep
        from socialcredit.status.service import StatusService
    except ImportError as e:  # the cases room is not there: open nothing
        return [], f"the cases room's Python API is not available ({e}): no cases were opened"

    feat = city.featured
    officer = feat["officer"]
    svc = StatusService(ledger)
    books = svc.rulebooks
    out: list[dict[str, Any]] = []
    notes: list[str] = []

    def case(kind: str, c: dict[str, Any] | None, subject: str, what: str) -> None:
        if c is not None:
            out.append({"type": kind, "case_id": c["case_id"], "subject": subject, "what": what})

    # 1. a pending objection
    try:
        c = objections.open_objection(
            ledger,
            books,
            feat["person"],
            seqs[feat["objection"]],
            "The heating bill was paid on time by bank transfer; the group recorded it late.",
            evidence="Bank transfer receipt of the heating fee.",
        )
        case("objection", c, feat["person"], "disputes a heating-arrears record (pending answer)")
    except (InputError, NotFoundError) as e:
        notes.append(f"objection not opened: {e}")

    # 2. reviews of proposed listings (the sweep opens them); first confirmation of the featured one
    svc.catch_up()
    swept = sweep(svc)
    for cid in swept.reviews_opened:
        out.append({"type": "review", "case_id": cid, "subject": None, "what": "proposed listing"})
    for c in list_cases(ledger.engine, subject=feat["company"], case_type="review", open_only=True):
        try:
            reviews.confirm_review(
                ledger,
                books,
                c["case_id"],
                officer,
                "Heavier food-safety penalty in a focus field; the company was heard and did "
                "not object in time.",
            )
            if c["rulebook_id"] == "cn-national":
                report.featured["review_case"] = c["case_id"]
            for o in out:
                if o["case_id"] == c["case_id"]:
                    o["subject"] = feat["company"]
                    o["what"] = "serious listing: first of two confirmations given (four eyes)"
        except (InputError, NotFoundError) as e:
            notes.append(f"review of {feat['company']} not confirmed: {e}")
    for o in out:
        if o["type"] == "review" and o["subject"] is None:
            o["subject"] = _case_subject(ledger, o["case_id"])

    # 3. a repair application awaiting a decision, and a few approved repairs
    try:
        c = repairs.apply_for_repair(
            ledger,
            books,
            feat["repair"],
            "cn-national",
            "samr-penalty-display-general",
            "The fine is paid, the labelling fixed and a credit commitment letter signed.",
        )
        case("repair", c, feat["repair"], "applies to end a penalty display early (pending)")
    except (InputError, NotFoundError) as e:
        notes.append(f"repair application not opened: {e}")
    approved = 0
    committed = sorted(
        {
            r["subject"]
            for r in city.records.get("rc-credit-office", [])
            if r["kind"] == "credit.commitment"
        }
        - {feat["repair"]}
    )
    for subject in committed:
        if approved >= APPROVED_REPAIRS:
            break
        for list_id in REPAIRABLE:
            elig = repairs.repair_eligibility(ledger, books, subject, "cn-national", list_id)
            if not elig.ok:
                continue
            try:
                c = repairs.apply_for_repair(
                    ledger,
                    books,
                    subject,
                    "cn-national",
                    list_id,
                    "Penalty performed, harm remedied, commitment letter and training done.",
                )
                repairs.decide_repair(
                    ledger,
                    c["case_id"],
                    officer,
                    True,
                    "Conditions met: commitment letter and repair training on file.",
                )
                case("repair", c, subject, f"repair of {list_id} approved")
                approved += 1
            except (InputError, NotFoundError) as e:
                notes.append(f"repair of {subject} not approved: {e}")
            break

    # 4. a tip from the public
    try:
        public = report.key("public")
        c = tips.submit_tip(
            ledger,
            books,
            f"public:{public.key_id}",
            feat["tip_about"],
            "Sells frozen seafood past its use-by date with relabelled packaging at the Shidao "
            "market stall.",
            kind="admin.penalty",
        )
        case("tip", c, feat["tip_about"], "a tip from the public, awaiting verification")
    except (InputError, NotFoundError, StopIteration) as e:
        notes.append(f"tip not submitted: {e}")
    svc.catch_up()
    return out, "; ".join(notes) or None


def _case_subject(ledger: Ledger, case_id: int) -> str | None:
    from socialcredit.cases.actions import get_case

    try:
        return str(get_case(ledger.engine, case_id)["subject_key"])
    except NotFoundError:
        return None
