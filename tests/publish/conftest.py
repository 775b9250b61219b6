from __future__ import annotations

from pathlib import Path

import pytest

from socialcredit.clock import FixedClock
from tests.publish.helpers import World, build_world


@pytest.fixture
def world(tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("SOCIALCREDIT_SIGNING_KEY", str(tmp_path / "keys" / "signing-key.pem"))
    return build_world(str(tmp_path / "registry.db"), clock, tmp_path)
