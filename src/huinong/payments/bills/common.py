"""What the bill payment modules share: the error for a rejected file, the check of an
enumerated choice, and the ledger transfer ids.

**Transfer ids.** Every ledger transfer of bill payment has an id derived from the
institution, a client id and a leg (:func:`derived_transfer_id`), so a retried call finds the
transfer it made and moves nothing twice: a payment's transfer derives from its client id
(the Idempotency-Key), a settlement's from its reconciliation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from huinong.errors import InvalidInput
from huinong.payments.bills import files

TRANSFER_ID_NAMESPACE = uuid.UUID("0193a1b2-4c5d-7000-8000-62696c6c7321")


class FileRejected(InvalidInput):
    """A bill file or return file with bad rows: nothing was written. ``errors`` lists each
    problem by row and column."""

    def __init__(self, errors: Sequence[files.RowError], *, what: str = "file") -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            "bills.file_rejected",
            f"the {what} has {len(self.errors)} problem(s); nothing was imported"
            + (f"; first: {first}" if first else ""),
            field=(first.column if first and first.column else "file"),
        )


def check_choice(value: str, enum: type, name: str) -> str:
    if value not in {str(m) for m in enum}:
        choices = ", ".join(str(m) for m in enum)
        raise InvalidInput(f"bills.invalid_{name}", f"{name} is one of: {choices}", field=name)
    return value


def derived_transfer_id(institution_id: uuid.UUID, client_id: str, leg: str) -> uuid.UUID:
    return uuid.uuid5(TRANSFER_ID_NAMESPACE, f"{institution_id}/{client_id}/{leg}")
