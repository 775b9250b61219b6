"""The ``ids`` command group, mounted on a test app the way the main app mounts it."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from socialcredit import ids
from socialcredit.cli import ids_cmd

root = typer.Typer()
root.add_typer(ids_cmd.app, name="ids")
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(root, ["ids", *args])
    return result.exit_code, result.stdout


def test_check_valid_json() -> None:
    code, out = run("check", "cn-rid", "11010519491231002x", "--json")
    assert code == 0
    assert json.loads(out) == {
        "valid": True,
        "scheme": "cn-rid",
        "value": "11010519491231002X",
        "key": "cn-rid:11010519491231002X",
        "subject_kind": "person",
        "facts": {
            "region_code": "110105",
            "province": "Beijing",
            "birth_date": "1949-12-31",
            "sex": "female",
            "sequence": "002",
        },
    }


def test_check_uscc_json() -> None:
    code, out = run("check", "--json", "cn-uscc", "91110108551385082Q")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"valid", "scheme", "value", "key", "subject_kind", "facts"}
    assert data["subject_kind"] == "enterprise"
    assert data["facts"]["org_code"] == "551385082"


def test_check_invalid_json() -> None:
    code, out = run("check", "cn-uscc", "91350203M0001QAY9B", "--json")
    assert code == 2
    assert json.loads(out) == {
        "valid": False,
        "scheme": "cn-uscc",
        "value": "91350203M0001QAY9B",
        "rule": "check-character",
        "position": 18,
        "expected": "9",
        "message": "position 18 is 'B' but the check character should be '9'",
    }


def test_check_invalid_json_keeps_the_value_as_given() -> None:
    code, out = run("check", "cn-rid", " 110105 19491231 0023", "--json")
    assert code == 2
    data = json.loads(out)
    assert data["value"] == " 110105 19491231 0023"
    assert (data["rule"], data["position"], data["expected"]) == ("check-character", 18, "X")


def test_check_unknown_scheme() -> None:
    code, out = run("check", "xx", "123", "--json")
    assert code == 2
    data = json.loads(out)
    assert data["valid"] is False
    assert (data["scheme"], data["rule"], data["position"]) == ("xx", "scheme", None)


def test_check_human_output() -> None:
    code, out = run("check", "cn-rid", "11010519491231002X")
    assert code == 0
    assert "cn-rid:11010519491231002X" in out and "female" in out
    code, out = run("check", "cn-rid", "11010519491231003X")
    assert code == 2
    assert "check-character" in out and "18" in out


def test_describe() -> None:
    code, out = run("describe", "cn-uscc", "91110108551385082Q", "--json")
    assert code == 0
    assert json.loads(out)["division_code"] == "110108"
    code, out = run("describe", "cn-rid", "110105491231002")
    assert code == 0
    assert "birth_date: 1949-12-31" in out
    code, _ = run("describe", "cn-rid", "1")
    assert code == 2


def test_mask() -> None:
    assert run("mask", "cn-rid", "11010519491231002X") == (0, "1101**********002X\n")
    assert run("mask", "cn-uscc", "91110108551385082Q") == (0, "91110108551385082Q\n")
    assert run("mask", "generic", "de-hrb-12345") == (0, "DE********45\n")
    assert run("mask", "xx", "1")[0] == 2


def test_generate() -> None:
    code, out = run("generate", "cn-uscc", "--count", "5", "--seed", "3", "--kind", "cooperative")
    assert code == 0
    codes = out.split()
    assert len(codes) == 5
    assert all(ids.parse("cn-uscc", c).subject_kind == "cooperative" for c in codes)
    assert run("generate", "cn-uscc", "--count", "5", "--seed", "3", "--kind", "cooperative") == (
        0,
        out,
    )
    code, out = run("generate", "cn-rid", "-n", "3", "--seed", "1", "--json")
    assert code == 0
    rids = json.loads(out)
    assert len(rids) == 3 and all(ids.is_valid("cn-rid", r) for r in rids)
    assert run("generate", "cn-rid", "-n", "0") == (0, "")


def test_generate_refusals() -> None:
    assert run("generate", "cn-rid", "--kind", "enterprise")[0] == 2
    assert run("generate", "cn-uscc", "--kind", "person")[0] == 2
    assert run("generate", "cn-uscc", "--kind", "nope")[0] == 2
    assert run("generate", "generic")[0] == 2
    assert run("generate", "xx")[0] == 2
