"""Loading rulebooks from their folders: YAML with line numbers, ``extends`` and ``overrides``.

A rulebook is a folder with ``rulebook.yaml`` (and ``tests/*.yaml``, ``SOURCES.md``). Shipped
rulebooks live in the repository's ``rulebooks/`` folder (packaged as
``socialcredit/_shipped/rulebooks`` in a wheel). A rulebook that ``extends`` another starts from
the base's lists, schemes, memoranda and procedure, adds its own, and changes the base only through
``overrides``, each of which must name something that exists in the base.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from socialcredit.rulebooks.calendar import PLAIN, Calendar
from socialcredit.rulebooks.model import (
    REPAIR_APPROVED_KIND,
    REPAIR_REMOVAL_ID,
    Match,
    Removal,
    Rulebook,
)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem in a rulebook, located in its file."""

    file: str
    line: int | None
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message} [{self.rule}]"


class RulebookError(Exception):
    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def shipped_dir() -> Path:
    packaged = Path(str(files("socialcredit"))) / "_shipped" / "rulebooks"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "rulebooks"


def locate(name: str | Path) -> Path:
    """A rulebook folder from a path (folder or rulebook.yaml) or a shipped rulebook's name."""
    p = Path(name)
    if p.is_file():
        return p.parent
    if (p / "rulebook.yaml").is_file():
        return p
    shipped = shipped_dir() / str(name)
    if (shipped / "rulebook.yaml").is_file():
        return shipped
    known = ", ".join(shipped_names()) or "none"
    raise RulebookError(
        [
            Issue(
                str(name),
                None,
                "",
                "not-found",
                f"no rulebook folder '{name}' (shipped rulebooks: {known})",
            )
        ]
    )


def shipped_names() -> list[str]:
    d = shipped_dir()
    return (
        sorted(p.name for p in d.iterdir() if (p / "rulebook.yaml").is_file()) if d.is_dir() else []
    )


# ---------------------------------------------------------------- YAML with line numbers


def _lines(
    node: yaml.Node, path: Path_ = (), out: dict[Path_, int] | None = None
) -> dict[Path_, int]:
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            _lines(v, (*path, key), out)
            out[(*path, key)] = k.start_mark.line + 1  # a problem with a key points at the key
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, (*path, i), out)
    return out


def read_yaml(file: Path) -> tuple[Any, dict[Path_, int]]:
    text = file.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise RulebookError(
            [Issue(str(file), mark.line + 1 if mark else None, "", "yaml", str(e))]
        ) from e
    return data, (_lines(node) if node is not None else {})


def line_of(lines: dict[Path_, int], path: Path_) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def pretty_path(data: Any, path: Path_) -> str:
    """``('lists', 0, 'entry', 1, 'term')`` -> ``lists[spc-defaulters].entry[other-grounds].term``."""
    out, cur = "", data
    for part in path:
        if isinstance(part, int):
            ident = (
                cur[part].get("id")
                if isinstance(cur, list) and part < len(cur) and isinstance(cur[part], dict)
                else None
            )
            out += f"[{ident if ident is not None else part}]"
        else:
            out += ("." if out else "") + str(part)
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            cur = None
    return out


# ---------------------------------------------------------------- overrides

_SEG = re.compile(r"([A-Za-z_][\w-]*)(?:\[([^\]]+)\])?")


def _walk(doc: Any, dotted: str) -> tuple[Any, str | int] | None:
    """Find the container and key an override path points at, or None if it does not exist."""
    cur = doc
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        m = _SEG.fullmatch(part)
        if m is None or not isinstance(cur, dict) or m.group(1) not in cur:
            return None
        key, sel = m.group(1), m.group(2)
        last = i == len(parts) - 1
        if sel is None:
            if last:
                return cur, key
            cur = cur[key]
            continue
        seq = cur[key]
        if not isinstance(seq, list):
            return None
        idx = next(
            (j for j, x in enumerate(seq) if isinstance(x, dict) and str(x.get("id")) == sel), None
        )
        if idx is None:
            return None
        if last:
            return seq, idx
        cur = seq[idx]
    return None


def _merge(
    base: Rulebook, child: dict[str, Any], file: str, lines: dict[Path_, int]
) -> dict[str, Any]:
    doc = base.model_dump(by_alias=True, exclude_none=True, exclude={"overrides", "extends"})
    issues = []
    for dotted, value in (child.get("overrides") or {}).items():
        found = _walk(doc, str(dotted))
        if found is None:
            issues.append(
                Issue(
                    file,
                    line_of(lines, ("overrides", dotted)),
                    f"overrides.{dotted}",
                    "unknown-override",
                    f"'{dotted}' does not exist in the base rulebook '{base.id}': an override can only change what the base has",
                )
            )
            continue
        container, key = found
        container[key] = copy.deepcopy(value)  # type: ignore[index]
    for section in ("lists", "schemes", "memoranda"):
        have = {x["id"] for x in doc.get(section, [])}
        for i, item in enumerate(child.get(section) or []):
            if isinstance(item, dict) and item.get("id") in have:
                issues.append(
                    Issue(
                        file,
                        line_of(lines, (section, i)),
                        f"{section}[{item['id']}]",
                        "duplicate-id",
                        f"'{item['id']}' is already defined by the base rulebook '{base.id}': change it with overrides",
                    )
                )
        doc[section] = doc.get(section, []) + list(child.get(section) or [])
    if child.get("procedure"):
        proc = dict(doc.get("procedure", {}))
        deadlines = {**proc.get("deadlines", {}), **child["procedure"].get("deadlines", {})}
        proc.update(child["procedure"])
        proc["deadlines"] = deadlines
        doc["procedure"] = proc
    if issues:
        raise RulebookError(issues)
    for k in (
        "id",
        "title",
        "jurisdiction",
        "version",
        "description",
        "effective",
        "historical",
        "extends",
        "overrides",
    ):
        if k in child:
            doc[k] = child[k]
    return doc


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class Loaded:
    rulebook: Rulebook
    folder: Path
    file: Path
    lines: dict[Path_, int]
    raw: dict[str, Any]


def load_folder(name: str | Path, _seen: tuple[Path, ...] = ()) -> Loaded:
    folder = locate(name)
    file = folder / "rulebook.yaml"
    data, lines = read_yaml(file)
    if not isinstance(data, dict):
        raise RulebookError(
            [Issue(str(file), 1, "", "schema", "a rulebook file must be a mapping")]
        )
    doc = data
    if data.get("extends"):
        parent = str(data["extends"])
        sibling = folder.parent / parent
        base_folder = locate(sibling if (sibling / "rulebook.yaml").is_file() else parent)
        chain = (*_seen, folder.resolve())
        if base_folder.resolve() in chain:
            names = " -> ".join(f.name for f in chain)
            raise RulebookError(
                [
                    Issue(
                        str(file),
                        line_of(lines, ("extends",)),
                        "extends",
                        "cycle",
                        f"rulebooks extend each other in a circle: {names} -> {parent}",
                    )
                ]
            )
        base = load_folder(base_folder, chain).rulebook
        doc = _merge(base, data, str(file), lines)
    elif data.get("overrides"):
        raise RulebookError(
            [
                Issue(
                    str(file),
                    line_of(lines, ("overrides",)),
                    "overrides",
                    "unknown-override",
                    "overrides need a base rulebook: add 'extends'",
                )
            ]
        )
    try:
        rb = Rulebook.model_validate(doc)
    except ValidationError as e:
        issues = []
        for err in e.errors():
            loc = tuple(err["loc"])
            issues.append(
                Issue(
                    str(file),
                    line_of(lines, loc),
                    pretty_path(doc, loc) or "(top)",
                    "schema",
                    err["msg"],
                )
            )
        raise RulebookError(issues) from None
    return Loaded(with_repair_removals(rb), folder, file, lines, data)


def with_repair_removals(rb: Rulebook) -> Rulebook:
    """Every list with a ``repair`` section also ends on an approved repair (implicit removal).

    The registry furnishes a :data:`~socialcredit.rulebooks.model.REPAIR_APPROVED_KIND` record
    naming the list when an officer approves a repair application (``socialcredit.cases``), so
    the reference evaluator, the batch plan and the live status all end the membership alike.
    """
    lists = []
    changed = False
    for lst in rb.lists:
        if lst.repair is not None and all(r.id != REPAIR_REMOVAL_ID for r in lst.removal):
            rm = Removal(
                id=REPAIR_REMOVAL_ID,
                when=Match(kinds=[REPAIR_APPROVED_KIND], attributes={"list": [lst.id]}),
                description="implicit: a repair application for this list was approved",
            )
            lst = lst.model_copy(update={"removal": [*lst.removal, rm]})
            changed = True
        lists.append(lst)
    return rb.model_copy(update={"lists": lists}) if changed else rb


def load(name: str | Path) -> Rulebook:
    """The resolved rulebook (base merged, overrides applied), schema-checked but not linted."""
    return load_folder(name).rulebook


@lru_cache(maxsize=16)
def load_calendar(calendar_id: str) -> Calendar:
    if calendar_id == "plain":
        return PLAIN
    file = shipped_dir() / "calendars" / f"{calendar_id}.yaml"
    if not file.is_file():
        raise RulebookError(
            [
                Issue(
                    str(file),
                    None,
                    "procedure.calendar",
                    "unknown-calendar",
                    f"no calendar '{calendar_id}'",
                )
            ]
        )
    data, _ = read_yaml(file)
    return Calendar.build(
        calendar_id,
        weekend=data.get("weekend", (5, 6)),
        holidays=[d for ds in (data.get("holidays") or {}).values() for d in ds],
        workdays=[d for ds in (data.get("workdays") or {}).values() for d in ds],
        covers=tuple(data["covers"]) if data.get("covers") else None,  # type: ignore[arg-type]
    )
