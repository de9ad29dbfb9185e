"""Settings, read once from ``HUINONG_*`` environment variables (pydantic-settings).

The embedded default is a SQLite file under ``var/``; ``HUINONG_DATABASE_URL`` switches to
PostgreSQL (``postgresql+psycopg://user@host:5432/dbname``). ``HUINONG_MASTER_KEY`` holds the
master key (see ``huinong.security.keyring``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import SecretStr
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
    # The root of every secret the platform keeps (32 hex digits, an SM4 key): data keys are
    # wrapped by it and signing keys derived from it. Development falls back to a key file
    # under var/; production refuses to start without it.
    master_key: SecretStr | None = None
    master_key_file: str = "var/master.key"
    # Nonces of signed terminal requests live in Redis when this is set, else in the database.
    redis_url: str | None = None
    # argon2id cost (RFC 9106's second recommended option: 64 MiB, 3 passes).
    password_hash_memory_kib: int = 65536
    password_hash_time_cost: int = 3
    access_token_minutes: int = 15
    refresh_token_hours: int = 12
    # Failed password attempts before an account is locked, and for how long.
    sign_in_max_failures: int = 5
    sign_in_lockout_minutes: int = 15
    # Signed terminal requests: accepted clock skew either way (seconds).
    signature_window_seconds: int = 300
    # How often the server seals new audit records into the hash chain (seconds; 0 = off).
    audit_seal_interval_seconds: float = 5.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
