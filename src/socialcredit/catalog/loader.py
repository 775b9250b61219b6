"""Load and cross-validate catalogue YAML files into a :class:`Catalogue`."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError

from socialcredit.catalog.model import (
    AuthorityType,
    Measure,
    RecordKind,
    RelyingPartyType,
)
from socialcredit.errors import Problem

# libyaml when the wheel has it (ten times faster on the shipped catalogue), else pure Python.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SECTIONS: Final[dict[str, tuple[str, type[BaseModel]]]] = {
    # YAML key: (label used in messages, model)
    "authority_types": ("authority type", AuthorityType),
    "relying_party_types": ("relying-party type", RelyingPartyType),
    "record_kinds": ("record kind", RecordKind),
    "measures": ("measure", Measure),
}
TOP_LEVEL_KEYS: Final = ("version", *SECTIONS)


class CatalogueError(Exception):
    """A catalogue file was refused. ``problems`` lists every reason.

    Each problem's ``field`` is ``<section>[<entry id>].<field>`` and its message names the file,
    the entry and the field.
    """

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p.message}" for p in self.problems)
        super().__init__(f"catalogue refused ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Catalogue:
    """Record kinds, measures, authority types and relying-party types, cross-validated."""

    version: str
    authority_types: dict[str, AuthorityType]
    relying_party_types: dict[str, RelyingPartyType]
    record_kinds: dict[str, RecordKind]
    measures: dict[str, Measure]
    files: tuple[Path, ...] = field(default=())

    def kind(self, kind_id: str) -> RecordKind:
        try:
            return self.record_kinds[kind_id]
        except KeyError:
            raise KeyError(_unknown("record kind", kind_id, self.record_kinds)) from None

    def measure(self, measure_id: str) -> Measure:
        try:
            return self.measures[measure_id]
        except KeyError:
            raise KeyError(_unknown("measure", measure_id, self.measures)) from None

    def protected_kinds(self) -> dict[str, str]:
        """Record kind id -> charter category, for every kind live rulebooks must never read."""
        return {k.id: k.charter for k in self.record_kinds.values() if k.charter is not None}

    def kinds_furnished_by(self, authority_type: str) -> list[RecordKind]:
        """The record kinds an authority of ``authority_type`` may furnish."""
        return [k for k in self.record_kinds.values() if authority_type in k.furnisher_types]

    def measures_in_domain(self, domain: str) -> list[Measure]:
        return [m for m in self.measures.values() if m.domain == domain]


def _unknown(what: str, wanted: str, known: dict[str, Any]) -> str:
    close = difflib.get_close_matches(wanted, list(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {what} {wanted!r}: the catalogue has no such {what}{hint}"


def shipped_catalog_dir() -> Path:
    """The folder of shipped catalogue files.

    In an installed wheel they are packaged at ``socialcredit/_shipped/catalogs``; in a source
    checkout (editable install) they are the repository's ``catalogs/`` folder.
    """
    try:
        packaged = files("socialcredit") / "_shipped" / "catalogs"
        if isinstance(packaged, Path) and packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, NotADirectoryError):  # pragma: no cover - defensive
        pass
    return Path(__file__).resolve().parents[3] / "catalogs"


def load_catalogue(paths: Sequence[Path] | None = None) -> Catalogue:
    """Load catalogue files (a folder stands for its ``*.yaml`` files, in name order).

    ``None`` loads the shipped catalogue, once per process (cached). Raises
    :class:`CatalogueError` naming file, entry and field for every problem found.
    """
    if paths is None:
        return _load_shipped()
    return _load(_expand(paths))


@functools.cache
def _load_shipped() -> Catalogue:
    return _load(_expand([shipped_catalog_dir()]))


def _expand(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            out.append(p)
    return out


@dataclass
class _Entry:
    file: str
    section: str
    entry_id: str
    model: Any


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(
        self,
        file: str,
        section: str | None,
        entry_id: str | None,
        field_path: str,
        rule: str,
        value: Any,
        message: str,
    ) -> None:
        if section is None:
            where = f"{file}: field '{field_path}'" if field_path else file
            key = field_path or "(file)"
        else:
            label = SECTIONS[section][0]
            where = f"{file}: {label} '{entry_id}'"
            key = f"{section}[{entry_id}]"
            if field_path:
                where += f", field '{field_path}'"
                key += f".{field_path}"
        self.problems.append(Problem(key, rule, value, f"{where}: {message}"))


def _load(paths: list[Path]) -> Catalogue:
    errs = _Collector()
    if not paths:
        errs.add("(no files)", None, None, "", "no-files", None, "no catalogue files to load")
        raise CatalogueError(errs.problems)

    versions: list[str] = []
    entries: dict[str, dict[str, _Entry]] = {s: {} for s in SECTIONS}
    failed: dict[str, set[str]] = {s: set() for s in SECTIONS}  # ids of entries refused

    for path in paths:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            errs.add(name, None, None, "", "unreadable", None, f"cannot read the file ({e})")
            continue
        try:
            doc = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            errs.add(name, None, None, "", "yaml", None, f"not valid YAML: {e}")
            continue
        if doc is None:
            continue
        if not isinstance(doc, dict):
            errs.add(name, None, None, "", "type", None, "the file must be a mapping of sections")
            continue
        for key in doc:
            if key not in TOP_LEVEL_KEYS and not str(key).startswith("x-"):
                errs.add(
                    name,
                    None,
                    None,
                    str(key),
                    "unknown-field",
                    None,
                    f"unknown top-level key {key!r}; allowed: {', '.join(TOP_LEVEL_KEYS)} "
                    "(and 'x-...' keys, which are ignored and may hold YAML anchors)",
                )
        version = doc.get("version")
        if version is not None:
            if isinstance(version, str | int | float) and str(version).strip():
                if str(version) not in versions:
                    versions.append(str(version))
            else:
                errs.add(name, None, None, "version", "type", version, "version must be a string")
        for section, (_label, model) in SECTIONS.items():
            items = doc.get(section)
            if items is None:
                continue
            if not isinstance(items, list):
                errs.add(
                    name,
                    None,
                    None,
                    section,
                    "type",
                    None,
                    f"'{section}' must be a list of entries",
                )
                continue
            for index, raw in enumerate(items):
                _load_entry(
                    errs, entries[section], failed[section], name, section, index, raw, model
                )

    _cross_validate(errs, entries, failed)
    if errs.problems:
        raise CatalogueError(errs.problems)

    def models(section: str) -> dict[str, Any]:
        return {k: e.model for k, e in entries[section].items()}

    return Catalogue(
        version="+".join(versions) or "unversioned",
        authority_types=models("authority_types"),
        relying_party_types=models("relying_party_types"),
        record_kinds=models("record_kinds"),
        measures=models("measures"),
        files=tuple(paths),
    )


def _load_entry(
    errs: _Collector,
    seen: dict[str, _Entry],
    failed: set[str],
    file: str,
    section: str,
    index: int,
    raw: Any,
    model: type[BaseModel],
) -> None:
    position = f"#{index + 1}"
    if not isinstance(raw, dict):
        errs.add(file, section, position, "", "type", None, "an entry must be a mapping")
        return
    raw_id = raw.get("id")
    entry_id = raw_id if isinstance(raw_id, str) and raw_id else position
    try:
        obj = model.model_validate(raw)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            loc = ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(_allowed_fields(model, err["loc"]))
                msg = f"unknown field {err['loc'][-1]!r} (a typo?); allowed fields: {allowed}"
                rule = "unknown-field"
            elif err["type"] == "missing":
                msg = "this field is required"
                rule = "required"
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
                rule = str(err["type"])
            errs.add(file, section, entry_id, loc, rule, err.get("input"), msg)
        failed.add(entry_id)
        return
    previous = seen.get(entry_id)
    if previous is not None:
        errs.add(
            file,
            section,
            entry_id,
            "id",
            "duplicate-id",
            entry_id,
            f"duplicate id: already defined in {previous.file}",
        )
        return
    seen[entry_id] = _Entry(file, section, entry_id, obj)


def _allowed_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The fields allowed at ``loc`` (the model, or a nested attribute spec / source)."""
    from socialcredit.catalog.model import AttributeSpec, Source

    target: type[BaseModel] = model
    if len(loc) >= 2 and loc[0] == "source":
        target = Source
    elif len(loc) >= 3 and loc[0] == "attributes":
        target = AttributeSpec
    return list(target.model_fields)


def _cross_validate(
    errs: _Collector, entries: dict[str, dict[str, _Entry]], failed: dict[str, set[str]]
) -> None:
    """Checks across entries. References to entries that were themselves refused are not
    reported again (one typo, one message)."""
    authorities = entries["authority_types"]
    relying = entries["relying_party_types"]
    for kid, e in entries["record_kinds"].items():
        for i, t in enumerate(e.model.furnisher_types):
            if t not in authorities and t not in failed["authority_types"]:
                errs.add(
                    e.file,
                    "record_kinds",
                    kid,
                    f"furnisher_types.{i}",
                    "unknown-authority-type",
                    t,
                    _unknown("authority type", t, {k: None for k in authorities}),
                )
    for mid, e in entries["measures"].items():
        for i, t in enumerate(e.model.relying_party_types):
            if t not in relying and t not in failed["relying_party_types"]:
                errs.add(
                    e.file,
                    "measures",
                    mid,
                    f"relying_party_types.{i}",
                    "unknown-relying-party-type",
                    t,
                    _unknown("relying-party type", t, {k: None for k in relying}),
                )
        domain = e.model.domain
        served_by = [r for r in e.model.relying_party_types if r in relying]
        if served_by and not any(domain in relying[r].model.domains for r in served_by):
            errs.add(
                e.file,
                "measures",
                mid,
                "relying_party_types",
                "domain-not-served",
                served_by,
                f"none of the relying-party types {', '.join(served_by)} works in the "
                f"measure's domain {domain!r}, so none of them could be told the decision",
            )
