"""Rules of the office tree, as pure functions.

A head office (总行) is the single root; branches (分支行) hang under the head office; outlets
(网点) hang under the head office or a branch. An institution code is what staff type into
forms and what appears on statements, so it is short, upper-case and ASCII.
"""

from __future__ import annotations

import re

from huinong.errors import InvalidInput

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")

ALLOWED_PARENTS: dict[str, frozenset[str]] = {
    "head": frozenset(),
    "branch": frozenset({"head"}),
    "outlet": frozenset({"head", "branch"}),
}


def check_code(code: str, *, field: str = "code") -> str:
    if not _CODE.match(code):
        raise InvalidInput(
            "institutions.invalid_code",
            "a code is 2 to 32 characters of A-Z, 0-9, '_' or '-', starting with a letter or digit",
            field=field,
        )
    return code


def check_office_parent(kind: str, parent_kind: str | None, *, has_head: bool) -> None:
    """Raise unless an office of ``kind`` may hang under a parent of ``parent_kind``."""
    if kind == "head":
        if has_head:
            raise InvalidInput(
                "institutions.head_office_exists",
                "an institution has exactly one head office",
                field="kind",
            )
        if parent_kind is not None:
            raise InvalidInput(
                "institutions.head_office_has_no_parent",
                "a head office has no parent",
                field="parent_code",
            )
        return
    if parent_kind is None:
        raise InvalidInput(
            "institutions.parent_required",
            f"a {kind} office needs a parent office",
            field="parent_code",
        )
    if parent_kind not in ALLOWED_PARENTS[kind]:
        raise InvalidInput(
            "institutions.invalid_parent",
            f"a {kind} office cannot hang under a {parent_kind} office",
            field="parent_code",
        )
