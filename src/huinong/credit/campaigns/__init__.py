"""Village credit campaigns (整村授信): survey a whole village, check it, review it, decide it.

A campaign covers one or more villages and runs in this order. The pure steps are
:mod:`.survey`, :mod:`.crosscheck` and :mod:`.peer_review`; :mod:`.service` (campaign, survey
import, cross-check), :mod:`.review` (panel and ratings) and :mod:`.decisions` (batch
decision, report, sign-off, publication list) own the tables in :mod:`.models`:

1. **Create** the campaign for its villages (12-digit statistical codes) and name its review
   panel (联合评议组: village cadres and community key persons) and quorum.
2. **Import the survey** (入户调查) collected offline — :mod:`.survey` reads the XLSX/CSV file
   (column vocabulary in :mod:`.survey_format`), builds each household's archive
   (:class:`~huinong.parties.households.archive.ArchiveContent`) and members, and reports
   every problem by sheet, row and column; :func:`.survey.problems_csv` is the downloadable
   error report. A faulty household is left out, never half-imported.
3. **Cross-check** (:mod:`.crosscheck`): declared land against the village's land register,
   income against land and labour, phones and ID numbers shared across households (compared
   as opaque blind-index keys), and a seeded isolation-forest anomaly score whose reason names
   the most deviant features. The result is a flagged list for the account manager; a flag
   is a question to ask, not a refusal.
4. **Blind peer review** (背靠背评议, :mod:`.peer_review`): every panel member rates every
   household alone (integrity 1-4, suggested limit, recommend, comment); the API never shows a
   reviewer another's rating. A household is aggregated — medians and a majority, robust to
   one outlying reviewer, with disagreement flagged — only once the quorum has rated it;
   before that it is *pending*.
5. **Batch decision**: features (archive, ledger flows, the peer-review aggregate, the bureau)
   → the champion scorecard → the active rule set give each household a grade, a
   pre-approved limit and a rate; the flags are for the account manager, not the score.
6. **Report** (coverage, grade distribution, total lines, flagged rows), then an approver's
   **sign-off** and the village's publication list (公示) with masked names.

Money is integer fen throughout; areas are ``Decimal`` mu. The pure modules touch neither the
database nor any personal data beyond what their caller hands them.
"""
