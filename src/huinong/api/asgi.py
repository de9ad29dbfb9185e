"""The ASGI entry point for uvicorn: ``uvicorn huinong.api.asgi:app``."""

from huinong.api.app import create_app

app = create_app()
