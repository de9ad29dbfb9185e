"""The office tree's shape rules."""

from __future__ import annotations

import pytest

from huinong.errors import InvalidInput
from huinong.institutions import rules


@pytest.mark.parametrize(
    ("kind", "parent", "has_head", "code"),
    [
        ("head", None, True, "institutions.head_office_exists"),
        ("head", "head", False, "institutions.head_office_has_no_parent"),
        ("branch", None, True, "institutions.parent_required"),
        ("branch", "branch", True, "institutions.invalid_parent"),
        ("outlet", "outlet", True, "institutions.invalid_parent"),
    ],
)
def test_refused_shapes(kind, parent, has_head, code):
    with pytest.raises(InvalidInput) as raised:
        rules.check_office_parent(kind, parent, has_head=has_head)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("kind", "parent", "has_head"),
    [
        ("head", None, False),
        ("branch", "head", True),
        ("outlet", "branch", True),
        ("outlet", "head", True),
    ],
)
def test_allowed_shapes(kind, parent, has_head):
    rules.check_office_parent(kind, parent, has_head=has_head)


def test_codes():
    assert rules.check_code("QD-RCB_01") == "QD-RCB_01"
    for bad in ("q", "-AB", "ab", "A B", "A" * 33):
        with pytest.raises(InvalidInput):
            rules.check_code(bad)
