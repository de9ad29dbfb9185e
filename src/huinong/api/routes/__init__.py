"""One router module per domain, wired once in ``huinong.api.app``."""
