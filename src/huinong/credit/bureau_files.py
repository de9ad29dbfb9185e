"""Importing a credit bureau file (征信文件): the reports the features read as of a date.

The bank receives the bureau's answers for the people it asked about as a CSV or XLSX file
(``features.bureau`` reads it: per-row problems, file-level refusals). Each good row is stored
under the blind index of the ID number — the file's plaintext numbers never reach the
database — with the report date, so a decision as of an earlier date never sees a later
report. A person's report of the same date sent again replaces the earlier one (bureaus
re-issue corrected files). Rows with problems are reported and not stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, tuple_
from sqlalchemy.orm import Session

from huinong import clock
from huinong.credit.features import bureau
from huinong.credit.models import BureauReportRow
from huinong.ids import uuid7
from huinong.parties import rules
from huinong.security.personal_data import service as personal_data


@dataclass(frozen=True)
class BureauImport:
    stored: int
    problems: tuple[bureau.RowProblem, ...]


def import_bureau_file(
    session: Session,
    *,
    institution_id: uuid.UUID,
    file_name: str,
    content: bytes,
    encoding: str | None = None,
) -> BureauImport:
    parsed = bureau.parse_file(file_name, content, encoding=encoding)
    now = clock.now()
    rows = [
        BureauReportRow(
            id=uuid7(),
            institution_id=institution_id,
            id_number_index=personal_data.blind_index(
                rules.normalise_id_number(report.id_number),
                field="id_number",
                institution_id=institution_id,
            ),
            report_date=report.report_date,
            overdue_count=report.overdue_count,
            max_overdue_days=report.max_overdue_days,
            overdue_fen=report.overdue_fen,
            outstanding_loans=report.outstanding_loans,
            outstanding_fen=report.outstanding_fen,
            blacklisted=report.blacklisted,
            file_name=file_name[:200],
            imported_at=now,
        )
        for report in parsed.reports
    ]
    if rows:
        session.execute(
            delete(BureauReportRow).where(
                BureauReportRow.institution_id == institution_id,
                tuple_(BureauReportRow.id_number_index, BureauReportRow.report_date).in_(
                    [(r.id_number_index, r.report_date) for r in rows]
                ),
            )
        )
        session.add_all(rows)
        session.flush()
    return BureauImport(len(rows), parsed.problems)
