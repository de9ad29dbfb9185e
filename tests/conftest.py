"""Fixtures shared by every database test: both backends, migrated once per session.

Database tests take the ``factory`` fixture (or ``client``), which is parametrised over
SQLite and PostgreSQL. PostgreSQL runs when ``HUINONG_TEST_POSTGRES_URL`` is set; without it
those tests are skipped with the reason printed, and ``HUINONG_REQUIRE_POSTGRES=1`` (CI) turns
the skip into a failure. Tests isolate themselves by creating their own institution (tenancy
is the isolation), so nothing is truncated between tests, and at the end of the session
``ledger verify`` and ``audit verify`` must be clean on every backend that ran. On PostgreSQL
each test process migrates a schema of its own (``huinong_test_<pid>``) and drops it at the
end.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from huinong.db import make_engine, make_session_factory, transaction
from huinong.institutions import service as institutions
from huinong.institutions.models import Institution
from huinong.ledger import service as ledger
from huinong.ledger.verify import verify
from huinong.migrations import upgrade
from huinong.parties.geography import service as geography
from huinong.security.audit import service as audit
from huinong.security.identities import sessions, staff_users
from huinong.security.principals import STAFF_ROLES

# A fixed master key for the suite, and cheap password hashing: argon2id's real cost would
# dominate a suite that signs in a few thousand users (the production cost is tested apart).
os.environ.setdefault("HUINONG_MASTER_KEY", "000102030405060708090a0b0c0d0e0f")
os.environ.setdefault("HUINONG_PASSWORD_HASH_MEMORY_KIB", "8")
os.environ.setdefault("HUINONG_PASSWORD_HASH_TIME_COST", "1")

POSTGRES_URL = os.environ.get("HUINONG_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("HUINONG_REQUIRE_POSTGRES") == "1"

_engines: dict[str, Engine] = {}
_PG_SCHEMA = f"huinong_test_{os.getpid()}"
_codes = itertools.count(1)


def _make(backend: str, tmp_root: Path) -> Engine:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_root / 'huinong-test.db'}"
    else:
        if not POSTGRES_URL:
            message = "PostgreSQL tests need HUINONG_TEST_POSTGRES_URL"
            if REQUIRE_POSTGRES:
                pytest.fail(message + " (HUINONG_REQUIRE_POSTGRES=1)")
            pytest.skip(message)
        # A schema of our own per test process: parallel runs never clobber each other.
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {_PG_SCHEMA} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {_PG_SCHEMA}"))
        admin.dispose()
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{_PG_SCHEMA}"
    upgrade(url)
    return make_engine(url)


@pytest.fixture(scope="session")
def _tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("db")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, _tmp_root: Path) -> str:
    name: str = request.param
    if name not in _engines:
        _engines[name] = _make(name, _tmp_root)
    return name


@pytest.fixture(scope="session")
def engine(backend: str) -> Engine:
    return _engines[backend]


@pytest.fixture(scope="session")
def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@contextmanager
def statements_sent() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends while the block runs: what
    SQLAlchemy executes (its ``before_cursor_execute`` event) and what goes straight to
    psycopg (``huinong.db.pg_execute``, pipelines), each once."""
    sent: list[str] = []

    def through_sqlalchemy(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not isinstance(cursor, psycopg.Cursor):  # psycopg's are seen below
            sent.append(statement)

    originals = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany")}

    def watching(original):  # type: ignore[no-untyped-def]
        def through_psycopg(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
            sent.append(query if isinstance(query, str) else str(query))
            return original(self, query, *args, **kwargs)

        return through_psycopg

    event.listen(Engine, "before_cursor_execute", through_sqlalchemy)
    for name, original in originals.items():
        setattr(psycopg.Cursor, name, watching(original))
    try:
        yield sent
    finally:
        for name, original in originals.items():
            setattr(psycopg.Cursor, name, original)
        event.remove(Engine, "before_cursor_execute", through_sqlalchemy)


def new_institution(factory: sessionmaker[Session], prefix: str = "T") -> Institution:
    """A fresh institution with its chart of accounts: the unit of isolation between tests."""
    code = f"{prefix}{next(_codes):04d}{uuid.uuid4().hex[:6].upper()}"
    with transaction(factory) as session:
        institution = institutions.create_institution(session, code=code, name=f"测试银行 {code}")
        ledger.create_chart_of_accounts(session, institution_id=institution.id, ledger="CNY")
    return institution


STAFF_PASSWORD = "Huinong-test-2026"

# A village of the bundled sample county (胶州市 李哥庄镇 港东新村), stored by ``sample_villages``.
SAMPLE_VILLAGE = "370281102200"
_villages_loaded: set[str] = set()


@pytest.fixture
def sample_villages(factory: sessionmaker[Session], backend: str) -> str:
    """The standard divisions and the sample county's villages stored (once per backend);
    returns :data:`SAMPLE_VILLAGE`."""
    if backend not in _villages_loaded:
        with transaction(factory) as session:
            geography.load_standard(session)
            geography.load_sample(session)
        _villages_loaded.add(backend)
    return SAMPLE_VILLAGE


def staff_token(
    factory: sessionmaker[Session],
    institution: Institution,
    roles: Iterable[str] = STAFF_ROLES,
    *,
    username: str | None = None,
) -> str:
    """An access token of a new staff user of ``institution`` holding ``roles`` (signed in
    through the service, as the sign-in route does)."""
    username = username or f"s{next(_codes):05d}"
    with transaction(factory) as session:
        staff_users.create_staff_user(
            session,
            institution_id=institution.id,
            username=username,
            display_name=f"测试员 {username}",
            roles=[str(role) for role in roles],
            password=STAFF_PASSWORD,
            must_change_password=False,
        )
    with transaction(factory) as session:
        pair = sessions.sign_in_staff(
            session, institution_code=institution.code, username=username, password=STAFF_PASSWORD
        )
    assert isinstance(pair, sessions.TokenPair), pair
    return pair.access_token


def staff_headers(
    factory: sessionmaker[Session], institution: Institution, roles: Iterable[str] = STAFF_ROLES
) -> dict[str, str]:
    return {"Authorization": f"Bearer {staff_token(factory, institution, roles)}"}


@pytest.fixture
def institution(factory: sessionmaker[Session]) -> Institution:
    return new_institution(factory)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    failures = []
    for name, engine in _engines.items():
        factory = make_session_factory(engine)
        with factory() as db:
            problems = verify(db)
        if problems:
            failures.append(f"{name}: " + "; ".join(str(p) for p in problems[:20]))
        audit.seal_all(factory)
        with factory() as db:
            findings = audit.verify(db)
        if findings:
            failures.append(f"{name} audit: " + "; ".join(str(f) for f in findings[:20]))
        engine.dispose()
    if "postgresql" in _engines and POSTGRES_URL:
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {_PG_SCHEMA} CASCADE"))
        admin.dispose()
    if failures:
        print("\nledger or audit verify found problems after the suite:\n" + "\n".join(failures))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif _engines:
        print(f"\nledger verify and audit verify clean on: {', '.join(sorted(_engines))}")


@pytest.fixture
def client(database_url: str) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from huinong.api.app import create_app
    from huinong.config import Settings

    app = create_app(Settings(pending_sweep_interval_seconds=0), database_url=database_url)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()
