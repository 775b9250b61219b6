"""The committed OpenAPI document is the one the app serves."""

from __future__ import annotations

import json
from pathlib import Path

from socialcredit.web.app import openapi_document, openapi_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_docs_openapi_json_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == openapi_text(), (
        "docs/openapi.json is stale: regenerate it with "
        "`uv run socialcredit serve --print-openapi > docs/openapi.json`"
    )


def test_every_route_documents_its_problems() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    assert "Problem" in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path.startswith("/v1/"):
                assert op.get("security") == [{"apiKey": []}], (method, path)
                assert "401" in op["responses"], (method, path)
                assert "application/problem+json" in json.dumps(op["responses"]["401"])
    assert set(doc["paths"]) >= {"/v1/checks", "/v1/records", "/v1/me", "/healthz", "/readyz"}
