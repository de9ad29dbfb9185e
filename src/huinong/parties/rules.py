"""Checks and masks of personal identifiers, as pure functions.

* Resident identity card numbers (GB 11643): 18 characters — 6-digit area code, birth date
  YYYYMMDD, 3-digit sequence, and an ISO 7064 MOD 11-2 check character (0-9 or X).
* Unified social credit codes (GB 32100) for enterprises, merchants and collectives:
  18 characters with a MOD 31 check character.
* Mainland mobile numbers: 11 digits starting with 1[3-9].

The values are normalised here (trimmed, upper-cased, separators removed) before anything is
encrypted or indexed: the blind index matches exact bytes, so a lookup must normalise the
same way as the write did. Masks live in ``huinong.security.personal_data.masking``.
"""

from __future__ import annotations

import re
from datetime import date

from huinong.errors import InvalidInput
from huinong.ids import is_ascii_digits

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PHONE = re.compile(r"^1[3-9][0-9]{9}$")


def resident_id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_resident_id(number: str) -> bool:
    if len(number) != 18 or not is_ascii_digits(number[:17]):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if born.year < 1900:
        return False
    return resident_id_check_char(number[:17]) == number[17].upper()


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    if len(code) != 18 or any(c not in _USCC_CHARS for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def check_id_number(kind: str, number: str) -> str:
    """Normalise and check the identity document of a customer of ``kind``."""
    number = number.strip().upper()
    if kind in ("individual", "household"):
        if not is_valid_resident_id(number):
            raise InvalidInput(
                "parties.invalid_id_number",
                "not a valid 18-character resident identity card number; check the last "
                "character and the birth date",
                field="id_number",
            )
    elif not is_valid_uscc(number):
        raise InvalidInput(
            "parties.invalid_id_number",
            "not a valid 18-character unified social credit code",
            field="id_number",
        )
    return number


def normalise_id_number(number: str) -> str:
    """A document number of any kind as it is stored and indexed, for an exact lookup: a
    resident identity card number or a unified social credit code."""
    number = number.strip().upper()
    if not (is_valid_resident_id(number) or is_valid_uscc(number)):
        raise InvalidInput(
            "parties.invalid_id_number",
            "not a valid resident identity card number or unified social credit code",
            field="id_number",
        )
    return number


def check_phone(phone: str | None) -> str | None:
    if phone is None:
        return None
    phone = phone.strip().replace(" ", "").replace("-", "")
    if not _PHONE.fullmatch(phone):
        raise InvalidInput(
            "parties.invalid_phone",
            "a mobile number is 11 digits starting with 1",
            field="phone",
        )
    return phone
