"""CPR validation by the official century table, masking, encryption and the look-up hash."""

from __future__ import annotations

import base64
from datetime import date

import pytest

from services.intake.cpr import CprVault, InvalidCpr, parse_cpr

VALID = [
    ("010190-1234", date(1990, 1, 1)),     # digit 7 = 1: 1900s
    ("0101901234", date(1990, 1, 1)),      # without the dash
    ("290200-4123", date(2000, 2, 29)),    # digit 7 = 4, YY <= 36: 2000s, a leap day
    ("010137-4123", date(1937, 1, 1)),     # digit 7 = 4, YY > 36: 1900s
    ("150858-5123", date(1858, 8, 15)),    # digit 7 = 5, YY > 57: 1800s
    ("150857-5123", date(2057, 8, 15)),    # digit 7 = 5, YY <= 57: 2000s
    ("311299-9123", date(1999, 12, 31)),   # digit 7 = 9, YY > 36: 1900s
    ("010101-9123", date(2001, 1, 1)),     # digit 7 = 9, YY <= 36: 2000s
    ("010190-1235", date(1990, 1, 1)),     # fails modulus 11 and is still valid
]
INVALID = ["290200-0123", "310299-1234", "320190-1234", "011390-1234", "000190-1234", "010190-123",
           "010190-12345", "01019O-1234", "abcdefghij", "", "010190 1234", "010190--1234"]


@pytest.mark.parametrize(("raw", "born"), VALID)
def test_valid_numbers_give_their_birth_date(raw: str, born: date) -> None:
    assert parse_cpr(raw).birth_date == born


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_numbers_are_refused_without_repeating_them(raw: str) -> None:
    with pytest.raises(InvalidCpr) as caught:
        parse_cpr(raw)
    assert raw.replace("-", "")[:6] not in str(caught.value) or not raw


def test_feb_29_1900_is_not_a_date_but_feb_29_2000_is() -> None:
    with pytest.raises(InvalidCpr):
        parse_cpr("290200-0123")
    assert parse_cpr("290200-4123").birth_date == date(2000, 2, 29)


def test_replacement_numbers_are_accepted_with_the_real_birth_date() -> None:
    cpr = parse_cpr("610190-1234")
    assert cpr.is_replacement and cpr.birth_date == date(1990, 1, 1)


def test_a_cpr_never_prints_its_digits() -> None:
    cpr = parse_cpr("010190-1234")
    assert "1234" not in repr(cpr) and "1234" not in str(cpr) and "1234" not in f"{cpr}"
    assert cpr.masked() == "010190-XXXX"


def _vault(*ids: str) -> CprVault:
    keys = ",".join(f"{i}:{base64.b64encode(i.encode().ljust(32, b'x')).decode()}" for i in ids)
    return CprVault.from_settings(keys, "hash-key")


def test_encryption_round_trips_and_hides_the_number() -> None:
    vault, cpr = _vault("k1"), parse_cpr("010190-1234")
    token = vault.encrypt(cpr)
    assert "0101901234" not in token and vault.decrypt(token) == cpr
    assert vault.encrypt(cpr) != token  # a fresh nonce each time


def test_a_tampered_ciphertext_is_detected() -> None:
    vault = _vault("k1")
    token = vault.encrypt(parse_cpr("010190-1234"))
    raw = bytearray(base64.b64decode(token.split(":", 1)[1]))
    raw[-1] ^= 1
    with pytest.raises(InvalidCpr):
        vault.decrypt("k1:" + base64.b64encode(bytes(raw)).decode())


def test_an_old_key_still_decrypts_after_rotation() -> None:
    old = _vault("k1")
    token = old.encrypt(parse_cpr("010190-1234"))
    rotated = _vault("k2", "k1")
    assert rotated.decrypt(token).digits == "0101901234"
    assert rotated.needs_rotation(token)
    assert not rotated.needs_rotation(rotated.encrypt(parse_cpr("0101901234")))


def test_the_lookup_hash_is_stable_and_keyed() -> None:
    cpr = parse_cpr("010190-1234")
    assert _vault("k1").lookup_hash(cpr) == _vault("k2").lookup_hash(cpr)
    other = CprVault.from_settings("k1:" + base64.b64encode(b"k" * 32).decode(), "another-key")
    assert other.lookup_hash(cpr) != _vault("k1").lookup_hash(cpr)
