"""The catalogue: record kinds, measures, authority types and relying-party types.

The data lives in the repository's ``catalogs/*.yaml`` (packaged as
``socialcredit/_shipped/catalogs`` in a wheel). ``load_catalogue()`` loads and cross-validates it::

    from socialcredit.catalog import load_catalogue

    cat = load_catalogue()
    kind = cat.kind("court.judgment-defaulter")
    attrs, problems = kind.coerce_attributes({"ground": "able-but-refuses", "case_no": "X"})
"""

from socialcredit.catalog.loader import (
    Catalogue,
    CatalogueError,
    load_catalogue,
    shipped_catalog_dir,
)
from socialcredit.catalog.model import (
    CATEGORIES,
    DOMAINS,
    PROTECTED_CATEGORIES,
    SEVERITIES,
    AttributeSpec,
    AuthorityType,
    Confidence,
    Disclosure,
    Measure,
    RecordKind,
    RelyingPartyType,
    Severity,
    Source,
)

__all__ = [
    "CATEGORIES",
    "DOMAINS",
    "PROTECTED_CATEGORIES",
    "SEVERITIES",
    "AttributeSpec",
    "AuthorityType",
    "Catalogue",
    "CatalogueError",
    "Confidence",
    "Disclosure",
    "Measure",
    "RecordKind",
    "RelyingPartyType",
    "Severity",
    "Source",
    "load_catalogue",
    "shipped_catalog_dir",
]
