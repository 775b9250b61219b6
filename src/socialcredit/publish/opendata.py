"""Open data: bulk downloads of the public lists, with licence and source metadata.

Everything here is built from :func:`socialcredit.publish.public.public_entries` — the single
definition of what is public on a day (publicity period, masking, review gates, published fields).
Formats:

* ``entries.csv`` / ``entries.parquet`` — one row per public list membership (flat columns);
* ``entries.ndjson`` — one JSON object per membership (the full public form, with records);
* ``entities.ftm.json`` — FollowTheMoney entities, one JSON object per line: a ``Person``,
  ``Company``, ``Organization`` or ``LegalEntity`` per listed subject and a ``Sanction`` per
  membership of an adverse list pointing at it (red lists are commendations, not sanctions, and
  are left out of this file);
* ``datapackage.json`` — a Frictionless Data Package describing the files, with the licence
  (CC-BY-4.0 unless ``SOCIALCREDIT_OPEN_DATA_LICENCE`` names another SPDX id), the sources (the
  registry and the rulebooks with their versions) and ``created`` (the generation time).

Subject entity ids never contain a person's identifier: organisations use their public code
(``sc-<uscc>``); persons an HMAC of the full key under a registry secret (derived from the
signing key), stable across downloads but not reversible.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives import serialization

from socialcredit.publish.public import PublicEntry, public_entries, public_lists
from socialcredit.publish.signing import Signer
from socialcredit.rulebooks.model import Rulebook, dur

LICENCE_ENV = "SOCIALCREDIT_OPEN_DATA_LICENCE"
_LICENCES = {
    "CC-BY-4.0": (
        "Creative Commons Attribution 4.0 International",
        "https://creativecommons.org/licenses/by/4.0/",
    ),
    "CC0-1.0": (
        "Creative Commons Zero v1.0 Universal",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    ),
    "ODbL-1.0": (
        "Open Data Commons Open Database License v1.0",
        "https://opendatacommons.org/licenses/odbl/1-0/",
    ),
}
FILES = {
    "entries.csv": "text/csv",
    "entries.parquet": "application/vnd.apache.parquet",
    "entries.ndjson": "application/x-ndjson",
    "entities.ftm.json": "application/x-ndjson",
    "datapackage.json": "application/json",
}
COLUMNS: list[tuple[str, str, str]] = [
    # (name, Frictionless type, description)
    ("id", "string", "Stable id of the membership: rulebook:list:since:first record id"),
    ("entity_id", "string", "Id of the subject's entity (as in entities.ftm.json)"),
    ("subject", "string", "Subject key; a person's identifier masked"),
    ("subject_name", "string", "Name, where the list publishes it"),
    ("subject_kind", "string", "person, enterprise, ..."),
    ("rulebook", "string", "Rulebook id@version"),
    ("rulebook_id", "string", "Rulebook id"),
    ("list", "string", "List id"),
    ("list_title", "string", "List title"),
    ("list_type", "string", "black, red, key-attention or warning"),
    ("authority", "string", "The list's authority"),
    ("legal_basis", "string", "The list's legal basis"),
    ("since", "date", "First day of the membership"),
    ("until", "date", "End of the membership (exclusive); empty: until removed"),
    ("publish_until", "date", "First day the membership is no longer published"),
    ("kind", "string", "Record kind of the latest basis record, where published"),
    ("decision_no", "string", "Decision number of the latest basis record, where published"),
    ("decision_date", "date", "Decision date of the latest basis record, where published"),
    ("record_ids", "string", "Ledger ids of the basis records (space separated)"),
    ("disputed", "boolean", "Whether the subject disputes a basis record"),
    ("fields", "string", "Every published field of the latest basis record (JSON)"),
]
_ORG_SCHEMA = {
    "enterprise": "Company",
    "individual-business": "Company",
    "cooperative": "Company",
    "social-organisation": "Organization",
    "public-institution": "Organization",
    "government-organ": "Organization",
}
_TOPICS = {"black": "sanction", "key-attention": "reg.warn", "warning": "reg.warn"}


def id_key(signer: Signer) -> bytes:
    """The registry's secret for person entity ids (derived from its private signing key)."""
    raw = signer.private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return hashlib.sha256(b"socialcredit/open-data-entity-id\n" + raw).digest()


def entity_id(entry: PublicEntry, key: bytes) -> str:
    scheme, _, value = entry.subject_ref.partition(":")
    if not entry.masked and scheme == "cn-uscc":
        return f"sc-{value.lower()}"
    full = entry.subject_key or entry.subject_ref
    return "sc-p-" + hmac.new(key, full.encode(), hashlib.sha256).hexdigest()[:24]


def entry_id(e: PublicEntry) -> str:
    first = min(e.record_ids) if e.record_ids else 0
    return f"{e.rulebook_id}:{e.list_id}:{e.since.isoformat()}:{first}"


def licence() -> dict[str, str]:
    spdx = os.environ.get(LICENCE_ENV) or "CC-BY-4.0"
    title, path = _LICENCES.get(spdx, (spdx, ""))
    out = {"name": spdx, "title": title}
    if path:
        out["path"] = path
    return out


def _date(x: Any) -> dt.date | None:
    if isinstance(x, dt.date):
        return x
    if isinstance(x, str):
        try:
            return dt.date.fromisoformat(x)
        except ValueError:
            return None
    return None


def row_of(e: PublicEntry, key: bytes) -> dict[str, Any]:
    f = e.fields
    return {
        "id": entry_id(e),
        "entity_id": entity_id(e, key),
        "subject": e.subject_ref,
        "subject_name": e.subject_name,
        "subject_kind": e.subject_kind,
        "rulebook": e.rulebook_ref,
        "rulebook_id": e.rulebook_id,
        "list": e.list_id,
        "list_title": e.list_title,
        "list_type": e.list_type,
        "authority": e.authority,
        "legal_basis": e.legal_basis,
        "since": e.since,
        "until": e.until,
        "publish_until": e.publish_until,
        "kind": f.get("kind"),
        "decision_no": f.get("decision_no"),
        "decision_date": _date(f.get("decision_date")),
        "record_ids": " ".join(str(r) for r in e.record_ids),
        "disputed": e.disputed,
        "fields": orjson.dumps(f, option=orjson.OPT_SORT_KEYS).decode(),
    }


def to_csv(rows: Iterable[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = [c[0] for c in COLUMNS]
    w.writerow(names)
    for r in rows:
        w.writerow(
            [
                ""
                if r[n] is None
                else (
                    r[n].isoformat()
                    if isinstance(r[n], dt.date)
                    else ("true" if r[n] is True else "false" if r[n] is False else r[n])
                )
                for n in names
            ]
        )
    return buf.getvalue().encode()


def _arrow_type(t: str) -> pa.DataType:
    return {"date": pa.date32(), "boolean": pa.bool_()}.get(t, pa.string())


def to_parquet(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> bytes:
    schema = pa.schema([pa.field(n, _arrow_type(t)) for n, t, _ in COLUMNS])
    table = pa.Table.from_pylist(list(rows), schema=schema)
    if meta is not None:
        table = table.replace_schema_metadata({b"socialcredit": orjson.dumps(meta)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def to_ndjson(entries: Iterable[PublicEntry], key: bytes) -> bytes:
    out = bytearray()
    for e in entries:
        d = {"id": entry_id(e), "entity_id": entity_id(e, key), **e.as_dict()}
        out += orjson.dumps(d) + b"\n"
    return bytes(out)


def ftm_entities(entries: Iterable[PublicEntry], key: bytes) -> list[dict[str, Any]]:
    """FollowTheMoney entities: one per listed subject, one ``Sanction`` per adverse membership."""
    subjects: dict[str, dict[str, Any]] = {}
    sanctions: list[dict[str, Any]] = []
    for e in entries:
        eid = entity_id(e, key)
        ent = subjects.get(eid)
        if ent is None:
            scheme, _, value = e.subject_ref.partition(":")
            if e.masked or e.subject_kind == "person":
                schema = "Person"
            else:
                schema = _ORG_SCHEMA.get(e.subject_kind or "", "LegalEntity")
            props: dict[str, list[str]] = {"name": [e.subject_name or e.subject_ref]}
            if scheme.startswith("cn-"):
                props["country"] = ["cn"]
            if schema != "Person" and not e.masked:
                props["registrationNumber"] = [value]
                if scheme == "cn-uscc":
                    props["uscCode"] = [value]
                    props["jurisdiction"] = ["cn"]
            props["topics"] = []
            ent = {"id": eid, "schema": schema, "properties": props}
            subjects[eid] = ent
        topic = _TOPICS.get(e.list_type)
        if topic is None:  # red lists: commendations, not sanctions
            continue
        if topic not in ent["properties"]["topics"]:
            ent["properties"]["topics"].append(topic)
        sp: dict[str, list[str]] = {
            "entity": [eid],
            "authority": [e.authority],
            "program": [e.list_title],
            "programId": [f"{e.rulebook_id}/{e.list_id}"],
            "reason": [e.legal_basis],
            "startDate": [e.since.isoformat()],
            "listingDate": [e.since.isoformat()],
            "status": ["Active"],
        }
        if e.until is not None:
            sp["endDate"] = [e.until.isoformat()]
        if e.fields.get("decision_no"):
            sp["authorityId"] = [str(e.fields["decision_no"])]
        if e.subject_ref.startswith("cn-"):
            sp["country"] = ["cn"]
        sid = hashlib.sha1(f"{eid}/{entry_id(e)}".encode()).hexdigest()[:20]
        sanctions.append({"id": f"sc-sanction-{sid}", "schema": "Sanction", "properties": sp})
    # a subject only on red lists has no sanction: it is left out of this file
    return [ent for ent in subjects.values() if ent["properties"]["topics"]] + sanctions


def to_ftm(entries: Iterable[PublicEntry], key: bytes) -> bytes:
    return b"".join(orjson.dumps(x) + b"\n" for x in ftm_entities(entries, key))


def datapackage(
    rulebooks: Sequence[Rulebook],
    generated_at: dt.datetime,
    today: dt.date,
    *,
    registry: str,
    base_url: str = "",
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A Frictionless Data Package descriptor for the download set."""
    base = base_url.rstrip("/")
    fields = [{"name": n, "type": t, "description": d} for n, t, d in COLUMNS]
    resources = []
    for name, media in FILES.items():
        if name == "datapackage.json":
            continue
        res: dict[str, Any] = {
            "name": name.split(".")[0] + ("-ftm" if "ftm" in name else "-" + name.split(".")[-1]),
            "path": f"{base}/open-data/{name}" if base else name,
            "mediatype": media,
            "format": name.rsplit(".", 1)[-1] if "ftm" not in name else "ftm",
        }
        if name.startswith("entries.") and name != "entries.ndjson":
            res["schema"] = {"fields": fields, "primaryKey": ["id"]}
        resources.append(res)
    return {
        "profile": "data-package",
        "name": "socialcredit-public-lists",
        "title": f"{registry}: public lists",
        "description": (
            "Every list membership that the registry's active rulebooks make public on the day "
            "of generation, only for as long as each list's publicity period allows, with "
            "personal identifiers masked as the lists require."
        ),
        "created": generated_at.astimezone(dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "as_of": today.isoformat(),
        "licenses": [licence()],
        "sources": [{"title": registry, **({"path": base + "/"} if base else {})}]
        + [{"title": f"rulebook {rb.ref}: {rb.title}", "version": rb.version} for rb in rulebooks],
        "lists": [
            {
                "rulebook": rb.ref,
                "list": lst.id,
                "title": lst.title,
                "type": lst.type,
                "authority": lst.authority,
                "legal_basis": " ".join(lst.legal_basis.split()),
                "publicity_period": str(dur(lst.publicity.period)) if lst.publicity else None,
                "published_fields": list(lst.publicity.fields) if lst.publicity else [],
                "masks_person_identifiers": bool(
                    lst.publicity and lst.publicity.mask_person_identifiers
                ),
            }
            for rb, lst in public_lists(rulebooks)
        ],
        "counts": counts or {},
        "resources": resources,
    }


class OpenData:
    """Builds every open-data file for one day from the public entries."""

    def __init__(
        self,
        entries: Sequence[PublicEntry],
        rulebooks: Sequence[Rulebook],
        generated_at: dt.datetime,
        key: bytes,
        *,
        registry: str,
        base_url: str = "",
    ):
        self.entries = list(entries)
        self.rulebooks = list(rulebooks)
        self.generated_at = generated_at
        self.today = generated_at.date()
        self.key = key
        self.registry = registry
        self.base_url = base_url
        self.rows = [row_of(e, key) for e in self.entries]

    def metadata(self) -> dict[str, Any]:
        lists: dict[str, int] = {}
        for e in self.entries:
            lists[f"{e.rulebook_id}/{e.list_id}"] = lists.get(f"{e.rulebook_id}/{e.list_id}", 0) + 1
        return datapackage(
            self.rulebooks,
            self.generated_at,
            self.today,
            registry=self.registry,
            base_url=self.base_url,
            counts={"entries": len(self.entries), **lists},
        )

    def render(self, name: str) -> bytes:
        if name == "entries.csv":
            return to_csv(self.rows)
        if name == "entries.parquet":
            meta = self.metadata()
            return to_parquet(
                self.rows,
                {k: meta[k] for k in ("name", "created", "as_of", "licenses", "sources")},
            )
        if name == "entries.ndjson":
            return to_ndjson(self.entries, self.key)
        if name == "entities.ftm.json":
            return to_ftm(self.entries, self.key)
        if name == "datapackage.json":
            return orjson.dumps(self.metadata(), option=orjson.OPT_INDENT_2)
        raise KeyError(name)


def build(
    engine: Any,
    rulebooks: Sequence[Rulebook],
    now: dt.datetime,
    signer: Signer,
    *,
    registry: str,
    base_url: str = "",
) -> OpenData:
    today = now.astimezone(dt.UTC).date()
    entries = list(public_entries(engine, rulebooks, today))
    return OpenData(
        entries,
        rulebooks,
        now.astimezone(dt.UTC).replace(microsecond=0),
        id_key(signer),
        registry=registry,
        base_url=base_url,
    )


def export(data: OpenData, folder: Path | str) -> list[Path]:
    """Write every file into ``folder`` (created if missing). Returns the paths written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in FILES:
        p = out / name
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data.render(name))
        tmp.replace(p)
        paths.append(p)
    return paths
