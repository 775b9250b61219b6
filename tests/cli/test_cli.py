"""The CLI end to end on a real SQLite file: the demo, furnishing, files, refusals, audit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from socialcredit.cli.main import app

runner = CliRunner()


def run(db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--db", str(db), *args])
    return result.exit_code, result.output


def test_demo_loads_the_sample_and_shows_a_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    code, out = run(db, "demo", "--sample", "--fresh")
    assert code == 0, out
    assert out.count("0 rejected") == 6, out
    assert "Hash chain: intact" in out
    assert "Zhang Wei" in out and "Legal bases" in out
    # running it again is idempotent: everything is already there
    code, out = run(db, "demo", "--sample")
    assert code == 0 and " 0 stored" in out
    code, out = run(db, "subject", "show", "cn-uscc:11110101000012343Y", "--json")
    data = json.loads(out)
    assert data["subject_kind"] == "government-organ"
    assert [r["kind"] for r in data["records"]] == ["court.judgment-defaulter"]


def test_furnish_show_correct_and_refuse(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    assert (
        run(
            db,
            "authorities",
            "add",
            "c1",
            "--name",
            "Court",
            "--type",
            "court",
            "--kind",
            "court.judgment-defaulter",
        )[0]
        == 0
    )
    base = [
        "records",
        "add",
        "--authority",
        "c1",
        "--subject",
        "cn-rid:11010519491231002X",
        "--kind",
        "court.judgment-defaulter",
        "--ref",
        "A1",
        "--decision-no",
        "(2025) 1",
        "--decision-date",
        "2025-01-01",
        "--severity",
        "serious",
        "--attr",
        "ground=able-but-refuses",
        "--attr",
        "case_no=(2025) 1",
        "--json",
    ]
    code, out = run(db, *base)
    assert code == 0 and json.loads(out)["status"] == "stored"
    seq = json.loads(out)["seq"]
    code, out = run(db, *base)
    assert code == 0 and json.loads(out) == {"ok": True, "seq": seq, "status": "duplicate"}
    bad = [a if a != "serious" else "catastrophic" for a in base]
    bad[bad.index("A1")] = "A2"
    code, out = run(db, *bad)
    assert code == 2
    assert json.loads(out)["problems"][0]["rule"] == "enum"
    code, out = run(
        db,
        "records",
        "correct",
        str(seq),
        "--authority",
        "c1",
        "--ref",
        "A1-c",
        "--reason",
        "wrong ground",
        "--set",
        "attr.ground=evades-enforcement",
        "--json",
    )
    assert code == 0, out
    code, out = run(db, "subject", "show", "cn-rid:11010519491231002X", "--json")
    [rec] = json.loads(out)["records"]
    assert rec["attributes"]["ground"] == "evades-enforcement" and rec["versions"] == 2
    code, out = run(db, "subject", "show", "cn-rid:110105194912310021")
    assert code == 2 and "check" in out


def test_import_exit_codes_and_audit(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    run(
        db,
        "authorities",
        "add",
        "w",
        "--name",
        "Water",
        "--type",
        "utility",
        "--kind",
        "utility.late-payment",
    )
    f = tmp_path / "u.csv"
    f.write_text(
        "ref,subject,kind,decision_no,decision_date,severity,attr.utility\n"
        "U1,cn-rid:11010519491231002X,utility.late-payment,D1,2025-01-01,minor,water\n"
        "U2,cn-rid:11010519491231002X,utility.late-payment,D2,2025-01-02,minor,beer\n"
    )
    code, out = run(
        db, "records", "import", str(f), "--authority", "w", "--all-or-nothing", "--json"
    )
    assert code == 2 and json.loads(out)["status"] == "rejected"
    code, out = run(db, "records", "import", str(f), "--authority", "w", "--json")
    report = json.loads(out)
    assert code == 1 and report["stored"] == 1 and report["rejected"] == 1
    assert (
        Path(report["errors_file"])
        .read_text()
        .splitlines()[1]
        .startswith("3,attributes.utility,enum,beer")
    )
    code, out = run(db, "export", "--format", "csv", "--out", str(tmp_path / "o.csv"), "--json")
    assert code == 0 and json.loads(out)["rows"] == 1
    assert run(db, "audit", "verify")[0] == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE entries SET subject_name = 'someone else' WHERE op = 'furnish'")
    con.commit()
    con.close()
    code, out = run(db, "audit", "verify", "--json")
    assert code == 1
    assert json.loads(out)["first_bad_seq"] == 2
