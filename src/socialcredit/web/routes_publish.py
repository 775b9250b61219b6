"""HTTP routes: publish (thin: calls the rooms)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
