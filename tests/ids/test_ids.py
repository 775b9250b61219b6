"""socialcredit.ids: worked examples (domain-facts §7), normalisation, masking and every error rule."""

from __future__ import annotations

import pickle

import pytest

from socialcredit import ids
from socialcredit.errors import Problem
from socialcredit.ids import Identifier, IdError


def err(scheme: str, value: str) -> IdError:
    with pytest.raises(IdError) as info:
        ids.parse(scheme, value)
    return info.value


# ---------------------------------------------------------------------------------------- cn-rid


@pytest.mark.parametrize(
    ("value", "sex", "birth"),
    [
        ("11010519491231002X", "female", "1949-12-31"),
        ("440524188001010014", "male", "1880-01-01"),
        ("110105198203150412", "male", "1982-03-15"),
    ],
)
def test_rid_worked_examples(value: str, sex: str, birth: str) -> None:
    ident = ids.parse("cn-rid", value)
    assert ident == Identifier("cn-rid", value, "person")
    assert ident.key == f"cn-rid:{value}"
    facts = ids.describe(ident)
    assert facts["sex"] == sex
    assert facts["birth_date"] == birth
    assert facts["region_code"] == value[:6]


def test_rid_check_char_and_describe() -> None:
    assert ids.rid_check_char("11010519491231002") == "X"
    assert ids.rid_check_char("44052418800101001") == "4"
    ident = ids.parse("cn-rid", "11010519491231002X")
    assert ids.describe(ident) == {
        "region_code": "110105",
        "province": "Beijing",
        "birth_date": "1949-12-31",
        "sex": "female",
        "sequence": "002",
    }


def test_rid_check_char_refuses_bad_input() -> None:
    with pytest.raises(IdError) as info:
        ids.rid_check_char("1101051949123100")
    assert info.value.rule == "length"
    with pytest.raises(IdError) as info:
        ids.rid_check_char("1101051949123100A")
    assert (info.value.rule, info.value.position) == ("charset", 17)


def test_rid_normalisation() -> None:
    canonical = "11010519491231002X"
    for raw in [
        "11010519491231002x",  # lower-case x
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits and X
        "１１０１０５１９４９１２３１００２ｘ",  # full-width lower-case x
        " 110105 19491231 002X ",  # spaces
        "110105-19491231-002X",  # hyphens
        "110105\u300019491231\u3000002x",  # ideographic spaces
    ]:
        assert ids.parse("cn-rid", raw).value == canonical, raw
        assert ids.is_valid("cn-rid", raw)


def test_rid_from_15() -> None:
    assert ids.rid_from_15("110105491231002") == "11010519491231002X"
    # 44052419800101001: Σ aᵢ·Wᵢ = 196, 196 mod 11 = 9 → '3'
    assert ids.rid_from_15("440524800101001") == "440524198001010013"
    ident = ids.parse("cn-rid", "110105491231002")
    assert ident.value == "11010519491231002X"
    assert ident == ids.parse("cn-rid", "11010519491231002X")
    assert ids.describe(ident)["birth_date"] == "1949-12-31"


@pytest.mark.parametrize(
    ("value", "rule", "position", "expected", "message"),
    [
        (
            "1101051949123",
            "length",
            None,
            None,
            "has 13 characters but a resident identity number has 18 "
            "(or 15 digits in the legacy form)",
        ),
        ("", "length", None, None, None),
        (
            "1101051949A231002X",
            "charset",
            11,
            None,
            "position 11 is 'A' but positions 1-17 must be digits",
        ),
        (
            "11010519491231002Y",
            "charset",
            18,
            None,
            "position 18 is 'Y' but the check character must be a digit or X",
        ),
        (
            "010105194912310020",
            "region",
            1,
            None,
            "position 1 is '0' but an address code starts with 1-9",
        ),
        (
            "110105179912310020",
            "birth-date",
            7,
            None,
            "positions 7-14 '17991231' is not a birth date: the year 1799 is outside 1800-2100",
        ),
        ("110105210101010020", "birth-date", 7, None, None),
        (
            "110105194913310020",
            "birth-date",
            11,
            None,
            "positions 7-14 '19491331' is not a birth date: there is no month 13",
        ),
        ("110105194900310020", "birth-date", 11, None, None),
        (
            "110105194902300020",
            "birth-date",
            13,
            None,
            "positions 7-14 '19490230' is not a birth date: 1949-02 has no day 30",
        ),
        ("110105194902290020", "birth-date", 13, None, None),  # 1949 is not a leap year
        ("110105190002290020", "birth-date", 13, None, None),  # nor is 1900
        ("110105194912000020", "birth-date", 13, None, None),
        (
            "110105194912310023",
            "check-character",
            18,
            "X",
            "position 18 is '3' but the check character should be 'X'",
        ),
        (
            "11010519491231003X",
            "check-character",
            18,
            "8",
            "position 18 is 'X' but the check character should be '8'",
        ),
        # 15-digit legacy numbers: positions refer to the 15 digits
        (
            "11010549123100A",
            "charset",
            15,
            None,
            "position 15 is 'A' but a 15-digit legacy number has digits only",
        ),
        ("010105491231002", "region", 1, None, None),
        (
            "110105491331002",
            "birth-date",
            9,
            None,
            "positions 7-12 '491331' is not a birth date: there is no month 13",
        ),
        ("110105490229002", "birth-date", 11, None, None),
    ],
)
def test_rid_errors(
    value: str, rule: str, position: int | None, expected: str | None, message: str | None
) -> None:
    e = err("cn-rid", value)
    assert (e.scheme, e.value, e.rule, e.position, e.expected) == (
        "cn-rid",
        value,
        rule,
        position,
        expected,
    )
    if message is not None:
        assert e.message == message
    assert isinstance(e, ValueError)


def test_rid_leap_days() -> None:
    for first17 in ("11010520000229001", "11010519960229001"):
        assert ids.is_valid("cn-rid", first17 + ids.rid_check_char(first17))


# --------------------------------------------------------------------------------------- cn-uscc


@pytest.mark.parametrize(
    "value",
    [
        "91110108551385082Q",
        "91430111MA4L41YT1U",
        "91350200MA2YJ1XR9G",
        "913502000728319549",
        "91110105MA01AB3CXM",
    ],
)
def test_uscc_worked_examples(value: str) -> None:
    ident = ids.parse("cn-uscc", value)
    assert ident == Identifier("cn-uscc", value, "enterprise")
    assert ids.parse_key(ident.key) == ident


def test_uscc_check_chars_from_the_reference() -> None:
    assert ids.uscc_check_char("91110108551385082") == "Q"
    assert ids.org_code_check_char("55138508") == "2"
    # The reference: 91350203M0001QAY9B fails the checksum, which computes 9.
    assert ids.uscc_check_char("91350203M0001QAY9") == "9"
    assert ids.org_code_check_char("M0001QAY") == "9"
    # GB 11714 organisation codes may use every letter (Z = 35): S = 35·48 = 1680 ≡ 8 → 11 − 8 = 3
    assert ids.org_code_check_char("ZZZZZZZZ") == "3"
    assert ids.org_code_check_char("00000001") == "9"  # S = 2 → 11 − 2 = 9
    assert ids.org_code_check_char("10000000") == "8"  # S = 3 → 11 − 3 = 8


def test_org_code_check_char_maps_ten_to_x_and_eleven_to_zero() -> None:
    # S ≡ 1 (mod 11) → C = 10 → X: pos 16 has weight 2, so value 6 gives S = 12 ≡ 1
    assert ids.org_code_check_char("00000006") == "X"
    # S ≡ 0 → C = 11 → 0
    assert ids.org_code_check_char("00000000") == "0"


def test_known_bad_uscc() -> None:
    e = err("cn-uscc", "91350203M0001QAY9B")
    assert (e.rule, e.position, e.expected) == ("check-character", 18, "9")
    assert e.message == "position 18 is 'B' but the check character should be '9'"


@pytest.mark.parametrize(
    ("value", "rule", "position", "expected", "message"),
    [
        (
            "91110108551385082",
            "length",
            None,
            None,
            "has 17 characters but a unified social credit code has 18",
        ),
        (
            "91110108551385I82Q",
            "charset",
            15,
            None,
            "position 15 is 'I' but the letters I, O, S, V and Z are never used in a unified "
            "social credit code",
        ),
        ("9111010855138508OQ", "charset", 17, None, None),
        (
            "9111010855138508#Q",
            "charset",
            17,
            None,
            "position 17 is '#' but only digits and the letters A-H, J-N, P-R, T, U, W, X, Y "
            "are used",
        ),
        ("91110108551385082Z", "charset", 18, None, None),
        (
            "B1110108551385082Q",
            "charset",
            1,
            None,
            "position 1 is 'B' but the registration department code must be one of 1-9, A, N, Y",
        ),
        ("01110108551385082Q", "charset", 1, None, None),
        (
            "9111A108551385082Q",
            "region",
            5,
            None,
            "position 5 is 'A' but positions 3-8 (the administrative division code) must be digits",
        ),
        (
            "91110108551385083Q",
            "org-code-check",
            17,
            "2",
            "position 17 is '3' but the organisation-code check character should be '2'",
        ),
        ("91110108551385087Q", "org-code-check", 17, "2", None),
        (
            "91110108551385082R",
            "check-character",
            18,
            "Q",
            "position 18 is 'R' but the check character should be 'Q'",
        ),
    ],
)
def test_uscc_errors(
    value: str, rule: str, position: int | None, expected: str | None, message: str | None
) -> None:
    e = err("cn-uscc", value)
    assert (e.scheme, e.value, e.rule, e.position, e.expected) == (
        "cn-uscc",
        value,
        rule,
        position,
        expected,
    )
    if message is not None:
        assert e.message == message


def test_uscc_error_order_charset_before_checks() -> None:
    # Both the charset (pos 3) and the check characters are wrong: charset is reported.
    assert err("cn-uscc", "91I10108551385083R").rule == "charset"
    # Org-code check is reported before the overall check character.
    assert err("cn-uscc", "91110108551385083R").rule == "org-code-check"


def test_uscc_normalisation() -> None:
    for raw in (
        "91110108551385082q",
        "９１１１０１０８５５１３８５０８２Ｑ",
        "9111 0108 5513 8508 2Q",
        "91-110108-551385082-Q",
    ):
        assert ids.parse("cn-uscc", raw).value == "91110108551385082Q", raw


def _uscc(prefix: str) -> str:
    first16 = prefix + "110108" + "55138508"
    first17 = first16 + ids.org_code_check_char(first16[8:])
    return first17 + ids.uscc_check_char(first17)


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("91", "enterprise"),
        ("92", "individual-business"),
        ("93", "cooperative"),
        ("11", "government-organ"),
        ("12", "public-institution"),
        ("51", "social-organisation"),
        ("52", "social-organisation"),
        ("53", "social-organisation"),
        ("59", "social-organisation"),
        ("13", "other-organisation"),
        ("19", "other-organisation"),
        ("31", "other-organisation"),
        ("99", "other-organisation"),
        ("A1", "other-organisation"),
        ("N1", "other-organisation"),
        ("Y1", "other-organisation"),
    ],
)
def test_uscc_subject_kind(prefix: str, kind: str) -> None:
    ident = ids.parse("cn-uscc", _uscc(prefix))
    assert ident.subject_kind == kind


def test_uscc_describe() -> None:
    assert ids.describe(ids.parse("cn-uscc", "91110108551385082Q")) == {
        "registration_department_code": "9",
        "registration_department": "industry and commerce (market regulation)",
        "entity_type_code": "1",
        "entity_type": "enterprise",
        "division_code": "110108",
        "org_code": "551385082",
    }
    facts = ids.describe(ids.parse("cn-uscc", _uscc("53")))
    assert facts["registration_department"] == "civil affairs"
    assert facts["entity_type"] == "foundation"
    facts = ids.describe(ids.parse("cn-uscc", _uscc("2W")))
    assert facts["entity_type"] == "type W (not catalogued)"


def test_uscc_check_char_refuses_bad_input() -> None:
    with pytest.raises(IdError) as info:
        ids.uscc_check_char("9111010855138508")
    assert info.value.rule == "length"
    with pytest.raises(IdError) as info:
        ids.uscc_check_char("9111010855138S082")
    assert (info.value.rule, info.value.position) == ("charset", 14)
    with pytest.raises(IdError) as info:
        ids.org_code_check_char("5513850!")
    assert (info.value.rule, info.value.position) == ("charset", 8)


# --------------------------------------------------------------------------------------- generic


def test_generic() -> None:
    ident = ids.parse("generic", " de-hrb.12345/b_x ")
    assert ident == Identifier("generic", "DE-HRB.12345/B_X", None)
    assert ids.describe(ident) == {}
    assert ids.parse("generic", "Ａｂ１").value == "AB1"
    assert ids.is_valid("generic", "A" * 64)
    e = err("generic", "A" * 65)
    assert (e.rule, e.position) == ("length", None)
    e = err("generic", "   ")
    assert e.rule == "length"
    e = err("generic", "DE HRB 1")
    assert (e.rule, e.position) == ("charset", 3)
    assert e.message == (
        "position 3 is ' ' but a generic identifier uses only A-Z, 0-9 and . _ / -"
    )
    e = err("generic", "ABC:1")
    assert (e.rule, e.position) == ("charset", 4)


# ------------------------------------------------------------------------- schemes, keys, errors


def test_unknown_scheme() -> None:
    e = err("us-ssn", "123")
    assert (e.scheme, e.value, e.rule, e.position, e.expected) == (
        "us-ssn",
        "123",
        "scheme",
        None,
        None,
    )
    assert "cn-rid, cn-uscc, generic" in e.message
    assert not ids.is_valid("us-ssn", "123")


def test_scheme_name_is_lenient_about_case_and_space() -> None:
    assert ids.parse(" CN-RID ", "11010519491231002X").scheme == "cn-rid"


def test_parse_key() -> None:
    assert ids.parse_key("cn-rid:11010519491231002X") == Identifier(
        "cn-rid", "11010519491231002X", "person"
    )
    assert ids.parse_key("cn-rid:11010519491231002x").key == "cn-rid:11010519491231002X"
    with pytest.raises(IdError) as info:
        ids.parse_key("11010519491231002X")
    assert info.value.rule == "scheme"
    assert info.value.value == "11010519491231002X"
    with pytest.raises(IdError) as info:
        ids.parse_key("cn-rid:11010519491231002Y")
    assert (info.value.scheme, info.value.value, info.value.rule) == (
        "cn-rid",
        "11010519491231002Y",
        "charset",
    )
    with pytest.raises(IdError) as info:
        ids.parse_key("generic:a:b")  # only the first colon separates; ':' is not allowed
    assert (info.value.rule, info.value.position) == ("charset", 2)


def test_schemes_constant() -> None:
    assert ids.SCHEMES == ("cn-rid", "cn-uscc", "generic")


def test_id_error_problem() -> None:
    e = err("cn-rid", "110105194912310023")
    p = e.problem()
    assert p == Problem(
        "subject",
        "check-character",
        "110105194912310023",
        "not a valid cn-rid identifier: position 18 is '3' but the check character should be 'X'",
        None,
    )
    assert e.problem("attributes.debtor", row=7).row == 7
    assert e.problem("attributes.debtor", row=7).field == "attributes.debtor"
    scheme_problem = err("xx", "1").problem()
    assert scheme_problem.rule == "scheme"
    assert scheme_problem.message == err("xx", "1").message


def test_id_error_pickles() -> None:
    e = err("cn-uscc", "91350203M0001QAY9B")
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, IdError)
    assert (back.scheme, back.value, back.rule, back.position, back.expected, back.message) == (
        e.scheme,
        e.value,
        e.rule,
        e.position,
        e.expected,
        e.message,
    )
    assert str(back) == str(e)


def test_rules_constant_covers_every_rule() -> None:
    assert set(ids.RULES) == {
        "length",
        "charset",
        "check-character",
        "org-code-check",
        "birth-date",
        "region",
        "scheme",
    }


def test_identifier_is_frozen_and_hashable() -> None:
    a = ids.parse("cn-rid", "11010519491231002X")
    b = Identifier("cn-rid", "11010519491231002X", "person")
    assert a == b and hash(a) == hash(b)
    assert {a, b, ids.parse("cn-rid", "110105491231002")} == {a}
    with pytest.raises(AttributeError):
        a.value = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------- mask


def test_mask() -> None:
    assert ids.mask("cn-rid", "11010519491231002X") == "1101**********002X"
    assert ids.mask("cn-rid", "11010519491231002x") == "1101**********002X"
    assert ids.mask("cn-rid", "110105491231002") == "1101**********002X"  # via the 18-char form
    assert ids.mask("cn-uscc", "91110108551385082Q") == "91110108551385082Q"
    assert ids.mask("cn-uscc", "9111 0108 5513 8508 2q") == "91110108551385082Q"
    assert ids.mask("generic", "de-hrb-12345") == "DE********45"
    assert ids.mask("generic", "ABCDEF") == "AB**EF"
    assert ids.mask("generic", "ABCDE") == "*****"
    assert ids.mask("generic", "AB") == "**"
    # invalid values are still masked (never published in clear)
    assert ids.mask("cn-rid", "110105194912310023") == "1101**********0023"
    assert ids.mask("cn-rid", "1234") == "****"
    with pytest.raises(IdError) as info:
        ids.mask("nope", "1")
    assert info.value.rule == "scheme"


# ------------------------------------------------------------------------------------ normalise


def test_normalise() -> None:
    assert ids.normalise("  １１０１ｘ ") == "1101X"
    assert ids.normalise("Ｘ") == "X"
    assert ids.normalise(" ab-c d ") == "AB-C D"  # inner spaces and hyphens stay
    assert ids.normalise("\u3000ab\u3000") == "AB"
