"""The HTTP API (FastAPI): thin routes over the ledger, live status and the decision log."""

from socialcredit.web.app import app_from_env, create_app, openapi_document

__all__ = ["app_from_env", "create_app", "openapi_document"]
