"""The HTTP API: FastAPI under ``/api/v1``, problem+json errors, idempotent money moves."""
