"""Which personal financial information Huinong holds, how sensitive it is, and why.

JR/T 0171-2020 (个人金融信息保护技术规范, the People's Bank of China's technical specification
for protecting personal financial information) sorts personal financial information into
three classes by the harm its disclosure does (§4.2):

* **C3** — user authentication information (用户鉴别信息): bank-card and payment passwords,
  login and transaction passwords, card track data and its chip equivalent, CVN/CVN2, card
  expiry, and biometrics used to authenticate. Disclosed, it lets someone act as the customer
  and move their money directly.
* **C2** — information that identifies a specific person and their financial situation, and the
  key information of financial products: payment account numbers and their equivalents,
  identity-document numbers, mobile phone numbers, account login names, authentication
  auxiliaries (one-time codes; together with an account they count as C3), balances,
  property, loan and transaction information, photographs.
* **C1** — internal information of the institution: when an account was opened, at which
  institution (开户机构), payment tokens derived from account information, and any personal
  financial information not in C2 or C3.

What the classes decide here (the standard's storage and display requirements, §6 and its
informative Annex A on masking, 信息屏蔽):

* C3 is never stored reversibly: passwords are argon2id hashes, one-time codes keyed SM3
  digests (``huinong.security.identities``); card track data, PINs and CVNs are never
  accepted at all.
* C2 that identifies a person — ID numbers, phones, card and account numbers held outside the
  ledger — is encrypted at rest (SM4-GCM, ``huinong.security.personal_data.service``), looked
  up through a keyed blind index, masked in responses (``masking``) and never logged.
* C1 is stored plainly and protected by the institution filter on every query.

Two decisions the standard leaves to the institution, recorded here:

* **A customer's name** is personal identity information (§4.1) but does not by itself single
  out one person (a village has many 张伟), so it falls in C1 by the residual rule; it stays
  plain — tellers search and sort by it, receipts print it — and is masked in responses to
  roles that do not serve the customer, because joined with a village it may identify them.
* **Ledger account numbers** are payment account numbers (C2), but the ledger keeps them
  plain: every payment looks an account up by its number, and the issue scopes encryption
  to numbers "stored outside the ledger". They are protected by role and institution and
  masked where shown to roles that do not serve the customer.

Sources: JR/T 0171-2020 §4.1, §4.2 and Annex A (the standard's text as published by the PBC;
summaries at https://yfs8.com/news/763788.html and
https://lantai.cn/news_view.aspx?id=1128&nid=2&typeid=5 list the same class members).

Every column of the ``customers`` table is named in :data:`CUSTOMER_COLUMNS`; a test checks
that the table and this catalogue agree, so a new column cannot arrive without a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Sensitivity(StrEnum):
    """JR/T 0171-2020 §4.2 classes, most sensitive first."""

    C3 = "C3"
    C2 = "C2"
    C1 = "C1"


class Protection(StrEnum):
    """How Huinong stores a field."""

    never_stored = "never_stored"  # refused on input: PINs, CVNs, track data
    one_way = "one_way"  # stored only as a hash or keyed digest: passwords, one-time codes
    encrypted = "encrypted"  # SM4-GCM under a data key, with a blind index where looked up
    plain = "plain"  # C1: institution filter and roles are the protection


@dataclass(frozen=True)
class Classification:
    field: str
    sensitivity: Sensitivity
    protection: Protection
    reason: str

    @property
    def is_sensitive(self) -> bool:
        """C2 and C3: must never appear in plain in the database, the logs, or a response to a
        role that does not need it."""
        return self.sensitivity in (Sensitivity.C2, Sensitivity.C3)


def _c(field: str, sensitivity: Sensitivity, protection: Protection, reason: str) -> Classification:
    return Classification(field, sensitivity, protection, reason)


S, P = Sensitivity, Protection

CATALOGUE: dict[str, Classification] = {
    c.field: c
    for c in (
        # C3: authentication information (§4.2 C3)
        _c("password", S.C3, P.one_way, "login or transaction password: user authentication"),
        _c("pin", S.C3, P.never_stored, "bank-card PIN: user authentication"),
        _c(
            "card_track_data",
            S.C3,
            P.never_stored,
            "magnetic track or chip equivalent: clones a card",
        ),
        _c(
            "card_verification_code",
            S.C3,
            P.never_stored,
            "CVN / CVN2: authenticates card-not-present",
        ),
        _c(
            "one_time_code",
            S.C3,
            P.one_way,
            "with the phone it signs in to the web hall on its own, so C3 rather than C2",
        ),
        # C2: identifies the person or their accounts (§4.2 C2)
        _c("id_number", S.C2, P.encrypted, "identity-document number: identifies the person"),
        _c("phone", S.C2, P.encrypted, "mobile number: identifies the person, receives codes"),
        _c("card_number", S.C2, P.encrypted, "bank-card number: payment account equivalent"),
        _c(
            "account_number",
            S.C2,
            P.plain,
            "payment account number; encrypted where stored outside the ledger, plain in the "
            "ledger, which looks accounts up by number on every payment",
        ),
        _c("balance", S.C2, P.plain, "directly reflects the financial situation; ledger data"),
        # C1: internal information (§4.2 C1)
        _c("name", S.C1, P.plain, "alone does not single a person out; masked by role"),
        _c("customer_kind", S.C1, P.plain, "individual, household, merchant, …: internal"),
        _c("institution", S.C1, P.plain, "the account-opening institution (开户机构)"),
        _c("opened_at", S.C1, P.plain, "when the relationship began (账户开立时间)"),
        _c("record_id", S.C1, P.plain, "an internal identifier, meaningless outside"),
        _c("data_key_version", S.C1, P.plain, "which data key encrypts a row: no personal data"),
        _c(
            "village",
            S.C1,
            P.plain,
            "village of residence (12-digit division code): shared by hundreds of households; "
            "places the customer in a grid",
        ),
        _c(
            "blind_index",
            S.C1,
            P.plain,
            "keyed SM3 digest: finds an exact value, reveals nothing without the key",
        ),
    )
}

# Every column of ``customers`` and the field it holds.
CUSTOMER_COLUMNS: dict[str, str] = {
    "id": "record_id",
    "institution_id": "institution",
    "kind": "customer_kind",
    "name": "name",
    "id_number_ciphertext": "id_number",
    "id_number_index": "blind_index",
    "phone_ciphertext": "phone",
    "phone_index": "blind_index",
    "data_key_version": "data_key_version",
    "village_code": "village",
    "created_at": "opened_at",
}


class UnclassifiedField(KeyError):
    """A field nobody has classified: decide its class before storing it."""


def classify(field: str) -> Classification:
    try:
        return CATALOGUE[field]
    except KeyError:
        raise UnclassifiedField(field) from None


def sensitive_fields() -> frozenset[str]:
    """The C2 and C3 fields."""
    return frozenset(name for name, c in CATALOGUE.items() if c.is_sensitive)
