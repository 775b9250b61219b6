"""The catalogue's data model: record kinds, measures, authority and relying-party types.

Every model forbids unknown fields, so a typo in a catalogue YAML file is an error rather than a
silently ignored key. Checks that only need one entry live here (as validators); checks that need
the whole catalogue (unique ids, known furnisher types) live in :mod:`socialcredit.catalog.loader`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from socialcredit.catalog.coerce import Bad, Converter, compile_converter
from socialcredit.errors import Problem
from socialcredit.subjects import SubjectKind

Severity = Literal["minor", "general", "serious"]
Confidence = Literal["P", "S", "W", "U"]
"""P primary text or full translation; S reliable secondary; W weak; U not verified."""
Disclosure = Literal["public", "subject-only", "restricted"]
AttributeType = Literal["string", "integer", "number", "date", "boolean", "enum"]
AmountUse = Literal["required", "optional", "none"]
MeasureType = Literal["sanction", "reward"]

SEVERITIES: Final[tuple[str, ...]] = ("minor", "general", "serious")

PROTECTED_CATEGORIES: Final[dict[str, str]] = {
    "political-expression": (
        "Charter art. 2: political opinion and expression are never scored or listed by a live "
        "rulebook"
    ),
    "petition": (
        "Charter art. 2: petitions and complaints to authorities are never scored or listed by a "
        "live rulebook"
    ),
    "religion": "Charter art. 2: religion is never scored or listed by a live rulebook",
    "ethnicity": "Charter art. 2: ethnicity is never scored or listed by a live rulebook",
    "reproduction": (
        "Charter art. 2: reproduction and family planning are never scored or listed by a live "
        "rulebook"
    ),
    "journalism": "Charter art. 2: journalism is never scored or listed by a live rulebook",
    "association": (
        "Charter art. 2: association with listed people is never scored or listed by a live "
        "rulebook"
    ),
}

DOMAINS: Final[tuple[str, ...]] = (
    "travel",
    "consumption",
    "housing",
    "education",
    "finance",
    "procurement",
    "employment",
    "licensing",
    "subsidy",
    "inspection",
    "tax",
    "customs",
    "publicity",
    "public-services",
)
"""Measure domains. A relying party learns decisions only for measures in its own domains."""

CATEGORIES: Final[tuple[str, ...]] = (
    # the National Basic Catalog of Public Credit Information (2021 edition, 11 categories;
    # administrative acts split by act so rulebooks can tell a licence from a penalty)
    "registration",
    "judicial",
    "administrative-licensing",
    "administrative-penalty",
    "administrative-coercion",
    "administrative-confirmation",
    "administrative-levy",
    "administrative-payment",
    "administrative-adjudication",
    "administrative-compensation",
    "administrative-reward",
    "administrative-inspection",
    "qualifications",
    "abnormal-operations",
    "serious-untrustworthy-list",
    "contract-performance",
    "credit-commitment",
    "credit-evaluation",
    "honours",
    "voluntary",
    # added by the 2022 and 2024 editions
    "law-compliance",
    "intellectual-property",
    # not a catalogue category: kinds that documented historical schemes used and that the
    # charter forbids live rulebooks to read
    "historical",
)

_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def _check_id(value: str, *, dotted: bool) -> str:
    if not value or not set(value) <= _ID_CHARS or value[0] in "-." or value[-1] in "-.":
        raise ValueError(
            "ids are lower-case letters, digits, '-' and '.', and start and end with a letter "
            "or digit"
        )
    if ".." in value:
        raise ValueError("ids must not contain '..'")
    if dotted and "." not in value:
        raise ValueError("record kind and measure ids are dotted: '<family>.<name>'")
    if len(value) > 64:
        raise ValueError("ids are at most 64 characters (the ledger's kind column)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Source(_Model):
    """Where an entry's facts come from, and how sure we are (the reference's confidence tag)."""

    ref: str = Field(min_length=1)
    confidence: Confidence


class AttributeSpec(_Model):
    """The schema of one record attribute."""

    type: AttributeType
    required: bool = False
    values: list[str] | None = Field(default=None, validate_default=True)
    minimum: float | None = None
    maximum: float | None = None
    description: str = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _values_iff_enum(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        typ = info.data.get("type")
        if typ == "enum":
            if not v:
                raise ValueError("an enum attribute must list its allowed values")
            if len(set(v)) != len(v):
                raise ValueError("enum values must be unique")
            if any(not s.strip() or s != s.strip() for s in v):
                raise ValueError("enum values must be non-empty and have no surrounding spaces")
        elif v is not None and typ is not None:
            raise ValueError(f"only enum attributes have values (this one is {typ})")
        return v

    @field_validator("minimum", "maximum")
    @classmethod
    def _bounds_on_numbers(cls, v: float | None, info: ValidationInfo) -> float | None:
        typ = info.data.get("type")
        if v is not None and typ is not None and typ not in ("integer", "number"):
            raise ValueError(f"only integer and number attributes have bounds (this one is {typ})")
        if info.field_name == "maximum" and v is not None:
            lo = info.data.get("minimum")
            if lo is not None and lo > v:
                raise ValueError(f"maximum {v} is below minimum {lo}")
        return v


class AuthorityType(_Model):
    """A type of authority that may furnish records (court, tax bureau, bank ...)."""

    id: str
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, dotted=False)


class RelyingPartyType(_Model):
    """A type of relying party (airline, bank ...) and the measure domains it may ask about."""

    id: str
    title: str = Field(min_length=1)
    domains: list[str] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, dotted=False)

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        unknown = [d for d in v if d not in DOMAINS]
        if unknown:
            raise ValueError(
                f"unknown domain(s) {', '.join(unknown)}; known domains: {', '.join(DOMAINS)}"
            )
        return v


class RecordKind(_Model):
    """One kind of record an authority may furnish, with its attribute schema."""

    id: str
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    category: str
    subject_kinds: list[SubjectKind] = Field(min_length=1)
    severities: list[Severity]
    furnisher_types: list[str] = Field(min_length=1)
    disclosure: Disclosure
    charter: str | None = None
    amount: AmountUse = "none"
    amount_meaning: str | None = Field(default=None, validate_default=True)
    attributes: dict[str, AttributeSpec] = Field(default_factory=dict)
    legal_basis: str = Field(min_length=1)
    source: Source

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, dotted=True)

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError(f"unknown category {v!r}; known categories: {', '.join(CATEGORIES)}")
        return v

    @field_validator("severities")
    @classmethod
    def _severities(cls, v: list[Severity]) -> list[Severity]:
        if len(set(v)) != len(v):
            raise ValueError("severities must not repeat")
        return sorted(v, key=SEVERITIES.index)

    @field_validator("charter")
    @classmethod
    def _charter(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if v not in PROTECTED_CATEGORIES:
            raise ValueError(
                f"unknown charter category {v!r}; known categories: "
                f"{', '.join(PROTECTED_CATEGORIES)}"
            )
        category = info.data.get("category")
        if category is not None and category != "historical":
            raise ValueError(
                f"a charter-protected kind (charter: {v}) must have category 'historical', "
                f"not {category!r}"
            )
        return v

    @field_validator("amount_meaning")
    @classmethod
    def _amount_meaning(cls, v: str | None, info: ValidationInfo) -> str | None:
        amount = info.data.get("amount")
        if amount in ("required", "optional") and not v:
            raise ValueError("say what the amount means when a kind carries an amount")
        if amount == "none" and v:
            raise ValueError("amount_meaning is only for kinds whose amount is required/optional")
        return v

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, v: dict[str, AttributeSpec]) -> dict[str, AttributeSpec]:
        for name in v:
            if not name.isidentifier() or name != name.lower():
                raise ValueError(f"attribute name {name!r} must be a lower-case identifier")
        return v

    def model_post_init(self, context: Any, /) -> None:
        self._coerce  # noqa: B018 - compile the converters once, now, not on the first row

    @cached_property
    def _coerce(self) -> Callable[[Mapping[str, Any]], tuple[dict[str, Any], list[Problem]]]:
        """Compile this kind's attribute converters into one closure (cached on the instance).

        A cached_property rather than a pydantic private attribute: private attributes are read
        through ``BaseModel.__getattr__`` (microseconds per access), a cached property from the
        instance ``__dict__`` (tens of nanoseconds). Pydantic ignores cached properties in
        validation, serialisation, equality and hashing.
        """
        kind_id = self.id
        converters: dict[str, Converter] = {
            name: compile_converter(kind_id, name, spec) for name, spec in self.attributes.items()
        }
        required = tuple(name for name, spec in self.attributes.items() if spec.required)
        hint = ", ".join(self.attributes) or "(none)"
        get = converters.get

        def unknown(name: str, value: Any) -> Problem:
            return Problem(
                f"attributes.{name}",
                "unknown-attribute",
                value,
                f"'{name}' is not an attribute of record kind {kind_id}; "
                f"its attributes are: {hint}",
            )

        def coerce(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
            out: dict[str, Any] = {}
            problems: list[Problem] = []
            for name, value in raw.items():
                conv = get(name)
                if conv is None:
                    problems.append(unknown(name, value))
                    continue
                if value is None:
                    continue
                result = conv(value)
                if type(result) is Bad:
                    if result.rule is not None:
                        problems.append(
                            Problem(f"attributes.{name}", result.rule, value, result.message)
                        )
                    continue
                out[name] = result
            for name in required:
                if name not in out:
                    value = raw.get(name)
                    if value is None or (type(value) is str and not value.strip()):
                        problems.append(
                            Problem(
                                f"attributes.{name}",
                                "required",
                                value,
                                f"attribute '{name}' is required for a {kind_id} record",
                            )
                        )
            return out, problems

        return coerce

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_coerce", None)  # recompile: ``update`` may change the attributes
        return copied

    # -- record checks -----------------------------------------------------------------------

    def coerce_attributes(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """Coerce raw attribute values (CSV strings or JSON natives) to JSON-native values.

        Returns a new dict of the coerced attributes (missing ones dropped) and every problem
        found (rules ``required``, ``unknown-attribute``, ``type:<type>``, ``enum``, ``minimum``,
        ``maximum``). Never raises for bad input; the caller decides what a problem means.
        """
        return self._coerce(raw)

    def check_severity(self, severity: str | None) -> Problem | None:
        """The problem with giving ``severity`` on a record of this kind, if any."""
        if not self.severities:
            if severity is None or severity == "":
                return None
            return Problem(
                "severity",
                "not-allowed",
                severity,
                f"a {self.id} record carries no severity",
            )
        if severity in self.severities:
            return None
        if severity is None or severity == "":
            return Problem(
                "severity",
                "required",
                severity,
                f"a {self.id} record needs a severity: {', '.join(self.severities)}",
            )
        return Problem(
            "severity",
            "enum",
            severity,
            f"severity of a {self.id} record must be one of: {', '.join(self.severities)}",
        )

    def check_amount(self, amount: object) -> Problem | None:
        """The problem with giving (or omitting) an amount on a record of this kind, if any."""
        missing = amount is None or amount == ""
        if self.amount == "required" and missing:
            return Problem(
                "amount",
                "required",
                amount,
                f"a {self.id} record needs an amount ({self.amount_meaning})",
            )
        if self.amount == "none" and not missing:
            return Problem("amount", "not-allowed", amount, f"a {self.id} record carries no amount")
        return None


class Measure(_Model):
    """A sanction or reward that relying parties in one domain execute."""

    id: str
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    type: MeasureType
    domain: str
    legal_basis: str = Field(min_length=1)
    relying_party_types: list[str] = Field(min_length=1)
    source: Source

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v, dotted=True)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if v not in DOMAINS:
            raise ValueError(f"unknown domain {v!r}; known domains: {', '.join(DOMAINS)}")
        return v
