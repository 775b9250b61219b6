"""``socialcredit demo`` end to end: in-process with --no-serve, and as a real served subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from socialcredit.cli.main import app

ROLES = ("provider", "relying-party", "subject", "officer", "reviewer", "auditor", "public")
SMALL = ("--people", "120", "--companies", "40", "--seed", "4")


@pytest.mark.slow
def test_demo_no_serve_builds_prints_summary_keys_and_a_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    runner = CliRunner()
    result = runner.invoke(
        app, ["--db", str(db), "demo", *SMALL, "--no-serve"], env={"COLUMNS": "200"}
    )
    out = result.output
    assert result.exit_code == 0, out
    assert "0 rejected" in out and "spc-defaulters" in out and "rongcheng-personal" in out
    for role in ROLES:
        assert re.search(rf"^{role}\s+sck_\w+_\S+$", out, re.M), (role, out)
    assert "/v1/checks" in out and "Authorization: Bearer sck_" in out
    assert "The file of cn-rid:" in out and "listed on spc-defaulters" in out
    # --keep reuses the city: nothing imported again, new keys
    result = runner.invoke(app, ["--db", str(db), "demo", *SMALL, "--no-serve", "--keep", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["stored"] == 0 and report["rejected"] == 0
    assert [k["role"] for k in report["keys"]] == list(ROLES)
    assert report["lists"]["spc-defaulters"] >= 1
    # a different city cannot be reused silently
    result = runner.invoke(
        app,
        ["--db", str(db), "demo", "--people", "130", "--companies", "40", "--no-serve", "--keep"],
    )
    assert result.exit_code == 2 and "--fresh" in result.output


def test_demo_refuses_a_busy_port_before_building(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(
            app, ["--db", str(tmp_path / "d.db"), "demo", *SMALL, "--port", str(port)]
        )
    assert result.exit_code == 2
    assert f"Port {port}" in result.output
    assert not (tmp_path / "d.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_demo_serves_the_city(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "socialcredit.cli.main", "--db", str(tmp_path / "demo.db"),
         "demo", *SMALL, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        out = "".join(lines)
        assert "Press Ctrl-C" in out, out
        keys = dict(re.findall(r"^(\S+)\s+(sck_\w+_\S+)$", out, re.M))
        assert set(keys) == set(ROLES), out
        person = re.search(r"Featured: .*?\((cn-rid:\w+)\)", out, re.S)
        assert person, out
        base = f"http://127.0.0.1:{port}"
        assert f"Portal:   {base}/" in out
        with httpx.Client(base_url=base, timeout=10) as http:
            for _ in range(300):
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            ready = http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert sorted(ready.json()["rulebooks"]) == [
                "cn-national@2025.12",
                "cn-sd-rongcheng@2025.12",
            ]
            portal = http.get("/")
            assert portal.status_code == 200 and "text/html" in portal.headers["content-type"]
            check = http.post(
                "/v1/checks",
                headers={"Authorization": f"Bearer {keys['relying-party']}"},
                json={
                    "purpose": "ticket sale",
                    "checks": [{"subject": person.group(1), "measure": "travel.flights"}],
                },
            )
            assert check.status_code == 200, check.text
            result = check.json()["results"][0]
            assert result["decision"] == "deny" and result["reason"] == "restricted-by-list"
            assert http.get("/docs").status_code == 200

            # the staff keys act on the demo's cases
            def auth(role: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {keys[role]}"}

            queue = http.get("/v1/cases", headers=auth("officer"))
            assert queue.status_code == 200, queue.text
            assert {"objection", "repair", "review", "tip"} <= {
                c["case_type"] for c in queue.json()["items"]
            }
            mine = http.get("/v1/objections", headers=auth("provider"))
            assert mine.status_code == 200 and mine.json()["items"], mine.text
            review = re.search(r"/v1/cases/(\d+):confirm", out)
            assert review, out
            second = http.post(
                f"/v1/cases/{review.group(1)}:confirm",
                headers=auth("reviewer"),
                json={"reason": "Second review: the heavier penalty stands."},
            )
            assert second.status_code == 200, second.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, "".join(lines)
