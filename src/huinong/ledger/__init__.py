"""The double-entry ledger: accounts, transfers (two-phase, linked), balances, verify, export.

Semantics follow TigerBeetle, carried onto SQL tables; ``huinong.ledger.engine`` states the
rules and ``huinong.ledger.service`` is the only writer of the ledger tables.
"""
