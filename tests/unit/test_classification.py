"""JR/T 0171 classes of the personal data Huinong holds, and agreement with the tables."""

from __future__ import annotations

import pytest
from sqlalchemy import LargeBinary

from huinong.parties.models import Customer
from huinong.security.personal_data import classification
from huinong.security.personal_data.classification import Protection, Sensitivity
from huinong.security.personal_data.models import ENCRYPTED_FIELD


def test_authentication_information_is_c3_and_never_stored_reversibly():
    for field in ("password", "pin", "card_track_data", "card_verification_code", "one_time_code"):
        found = classification.classify(field)
        assert found.sensitivity is Sensitivity.C3
        assert found.protection in (Protection.one_way, Protection.never_stored)


def test_identifying_information_is_c2():
    for field in ("id_number", "phone", "card_number", "account_number"):
        assert classification.classify(field).sensitivity is Sensitivity.C2
    assert classification.classify("id_number").protection is Protection.encrypted
    assert classification.classify("phone").protection is Protection.encrypted


def test_internal_information_is_c1_and_every_entry_says_why():
    for field in ("institution", "opened_at", "name"):
        assert classification.classify(field).sensitivity is Sensitivity.C1
    for entry in classification.CATALOGUE.values():
        assert len(entry.reason) > 10, entry
    assert classification.sensitive_fields() >= {"id_number", "phone", "password", "pin"}
    assert "name" not in classification.sensitive_fields()


def test_an_unclassified_field_is_refused():
    with pytest.raises(classification.UnclassifiedField):
        classification.classify("favourite_colour")


def test_every_customer_column_is_classified():
    columns = {c.name for c in Customer.__table__.columns}
    assert columns == set(classification.CUSTOMER_COLUMNS)
    for field in classification.CUSTOMER_COLUMNS.values():
        classification.classify(field)


def test_every_sensitive_customer_column_is_a_marked_ciphertext():
    """A C2/C3 value in ``customers`` is stored only as an SM4-GCM ciphertext column that key
    rotation finds by its mark; never as text."""
    for column in Customer.__table__.columns:
        field = classification.CUSTOMER_COLUMNS[column.name]
        if classification.classify(field).is_sensitive:
            assert isinstance(column.type, LargeBinary), column
            assert column.info.get(ENCRYPTED_FIELD) == field, column
        else:
            assert ENCRYPTED_FIELD not in column.info
