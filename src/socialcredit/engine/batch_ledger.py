"""The ledger's ``entries`` folded relationally into the record snapshot (``RECORD_SCHEMA``).

The same fold as :func:`socialcredit.ledger.store.apply_entry`, as joins over the entries table:

* a lineage starts with a ``furnish`` entry (its ``origin_seq`` is its own ``seq``);
* its current version is the latest ``furnish``/``correct`` entry by ``seq`` (a correction must
  target the current version, so that is the one no later correction supersedes);
* ``state`` is that of the latest ``retract``/``overturn`` entry, unless a correction came after
  it (a correction starts a fresh view, as ``apply_entry`` does);
* ``suspended`` is whether the latest ``suspend``/``reinstate`` entry is a ``suspend`` (kept
  across corrections); ``disputed`` likewise for ``dispute``/``confirm``, reset by a correction;
* ``in_force`` is ``state == "active" and not suspended``.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def _latest(e: ir.Table, ops: list[str], prefix: str) -> ir.Table:
    """Per lineage, the seq and op of the latest entry among ``ops``."""
    x = e.filter(e["op"].isin(ops))
    last = x.group_by(_o=x.origin_seq).aggregate(_seq=x.seq.max())
    j = last.join(x, last._seq == x.seq)
    return j.select(**{f"{prefix}_o": j._o, f"{prefix}_seq": j._seq, f"{prefix}_op": j["op"]})


def fold_entries(entries: ir.Table) -> ir.Table:
    """One row per record lineage in its current state, in the shape of ``RECORD_SCHEMA``."""
    e = entries
    furnished = e.filter(e["op"] == "furnish").select(_f=e.seq)
    versions = e.filter(e["op"].isin(["furnish", "correct"]))
    cur = versions.group_by(_origin=versions.origin_seq).aggregate(
        _cur=versions.seq.max(), _versions=versions.count()
    )
    cur = cur.join(furnished, cur._origin == furnished._f)
    v = cur.join(e, cur._cur == e.seq)
    ends = _latest(e, ["retract", "overturn"], "end")
    susp = _latest(e, ["suspend", "reinstate"], "sus")
    disp = _latest(e, ["dispute", "confirm"], "dis")
    v = v.left_join(ends, v._origin == ends.end_o)
    v = v.left_join(susp, v._origin == susp.sus_o)
    v = v.left_join(disp, v._origin == disp.dis_o)
    ended = v.end_seq.notnull() & (v.end_seq > v._cur)
    state = ibis.cases(
        (ended & (v.end_op == "retract"), ibis.literal("retracted")),
        (ended & (v.end_op == "overturn"), ibis.literal("overturned")),
        else_=ibis.literal("active"),
    )
    suspended = (v.sus_op == "suspend").fill_null(False)
    disputed = ((v.dis_op == "dispute") & (v.dis_seq > v._cur)).fill_null(False)
    out = v.select(
        record_id=v._cur.cast("int64"),
        origin_id=v._origin.cast("int64"),
        subject=v.subject_key,
        subject_kind=v.subject_kind,
        subject_name=v.subject_name,
        kind=v.kind,
        authority_id=v.authority_id,
        authority_ref=v.authority_ref,
        decision_no=v.decision_no,
        decision_date=v.decision_date.cast("date"),
        severity=v.severity,
        amount_minor=v.amount_minor.cast("int64"),
        legal_basis=v.legal_basis,
        attributes=v.attributes,
        recorded_at=v.recorded_at,
        state=state,
        disputed=disputed,
        suspended=suspended,
        versions=v._versions.cast("int32"),
    )
    return out.mutate(
        in_force=(out.state == "active") & ~out.suspended,
    ).relocate("in_force", after="suspended")
