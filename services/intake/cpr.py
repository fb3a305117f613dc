"""CPR numbers: validation, masking, authenticated encryption and a keyed look-up hash.

Validation follows the CPR office's rules: ``DDMMYY-SSSS`` with or without the dash; the century
comes from the 7th digit and the year (table below); the date must exist in that century
(``290200-0xxx`` is 29 Feb 1900, which did not exist; ``290200-4xxx`` is 29 Feb 2000, which did).
Numbers are never rejected for failing modulus 11: the CPR office has issued such numbers since
2007.

Replacement numbers (erstatningspersonnumre) are accepted: their day is the real day + 60
(``610190-…`` is 1 Jan 1990). They are flagged ``is_replacement`` and the birth date is the real
one. Policy: a replacement number is an ordinary identifier here; when the person later gets a
real CPR number, staff add the real one as a correction (the look-up hash differs, so the
duplicate check cannot link them automatically).

Masking shows the birth-date part only (``010190-XXXX``): enough for team staff to recognise the
person, never the serial. ``str``/``repr`` of a ``Cpr`` are masked, so it cannot leak into logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT = re.compile(r"^(\d{6})-?(\d{4})$")
REPLACEMENT_DAY_OFFSET = 60


class InvalidCpr(ValueError):
    """The reason names what is wrong, never the number."""


def _century(digit7: int, yy: int) -> int:
    """The official table: which century the 7th digit and the two-digit year give."""
    if digit7 <= 3:
        return 1900
    if digit7 in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800  # digits 5-8


@dataclass(frozen=True)
class Cpr:
    digits: str = field(repr=False)
    birth_date: date
    is_replacement: bool

    def masked(self) -> str:
        return f"{self.digits[:6]}-XXXX"

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"Cpr({self.masked()})"


def parse_cpr(raw: str) -> Cpr:
    """Validate and normalise a CPR number; raise InvalidCpr with a reason."""
    match = _FORMAT.match(raw.strip())
    if not match:
        raise InvalidCpr("a CPR number is 10 digits, DDMMYY-SSSS, the dash optional")
    digits = match.group(1) + match.group(2)
    day, month, yy = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    replacement = day > REPLACEMENT_DAY_OFFSET
    if replacement:
        day -= REPLACEMENT_DAY_OFFSET
    year = _century(int(digits[6]), yy) + yy
    try:
        born = date(year, month, day)
    except ValueError:
        raise InvalidCpr(f"the birth date is not a real date in {year // 100 * 100}s") from None
    return Cpr(digits=digits, birth_date=born, is_replacement=replacement)


class CprVault:
    """AES-256-GCM encryption with key ids (rotation-ready) and an HMAC-SHA256 look-up hash."""

    def __init__(self, keys: dict[str, bytes], hash_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one CPR key is needed")
        for key_id, key in keys.items():
            if len(key) != 32 or ":" in key_id:
                raise ValueError("CPR keys are 32 bytes with an id without ':'")
        self._keys = dict(keys)
        self._current = next(iter(keys))
        self._hash_key = hash_key

    @classmethod
    def from_settings(cls, keys: str, hash_key: str) -> CprVault:
        """``keys`` is ``id:base64key,id2:base64key``; the first one encrypts."""
        parsed = {}
        for part in keys.split(","):
            key_id, _, encoded = part.strip().partition(":")
            parsed[key_id] = base64.b64decode(encoded)
        return cls(parsed, hash_key.encode())

    def encrypt(self, cpr: Cpr) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self._keys[self._current]).encrypt(nonce, cpr.digits.encode(),
                                                           self._current.encode())
        return f"{self._current}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> Cpr:
        key_id, _, encoded = token.partition(":")
        if key_id not in self._keys:
            raise InvalidCpr("encrypted with an unknown key")
        raw = base64.b64decode(encoded)
        try:
            digits = AESGCM(self._keys[key_id]).decrypt(raw[:12], raw[12:], key_id.encode())
        except InvalidTag:
            raise InvalidCpr("the ciphertext was tampered with") from None
        return parse_cpr(digits.decode())

    def needs_rotation(self, token: str) -> bool:
        return token.partition(":")[0] != self._current

    def lookup_hash(self, cpr: Cpr) -> str:
        return hmac.new(self._hash_key, cpr.digits.encode(), hashlib.sha256).hexdigest()
