"""Settings, read once from ``HUINONG_*`` environment variables (pydantic-settings).

The embedded default is a SQLite file under ``var/``; ``HUINONG_DATABASE_URL`` switches to
PostgreSQL (``postgresql+psycopg://user@host:5432/dbname``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUINONG_", extra="ignore")

    database_url: str = "sqlite:///var/huinong.db"
    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    # How often the server voids expired pending transfers (seconds; 0 turns the timer off).
    pending_sweep_interval_seconds: float = 30.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
