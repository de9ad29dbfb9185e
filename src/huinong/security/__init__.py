"""Security: national cryptography (SM2/SM3/SM4), staff and customer identities with roles,
signed terminals, personal data encryption and masking, consent, and the tamper-evident audit
trail.

It sits between institutions and the ledger/parties domains (DESIGN.md, dependency rule 3):
it may read institutions, and ledger, parties and payments may use it, never the other way
round. Tables of higher domains are referred to by table name only.
"""
