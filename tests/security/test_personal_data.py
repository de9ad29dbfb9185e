"""Personal data on both databases: encryption bound to its row, blind-index lookup, key
rotation interrupted and resumed, key status, and no plaintext C2 value in the database."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from huinong.cli import keys as keys_cli
from huinong.config import get_settings
from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, InvalidInput
from huinong.institutions import service as institutions
from huinong.migrations.metadata import metadata
from huinong.parties import rules
from huinong.parties import service as parties
from huinong.parties.models import Customer, CustomerKind
from huinong.security import keyring
from huinong.security.personal_data import envelope
from huinong.security.personal_data import service as personal_data
from huinong.security.personal_data.models import DataKey
from huinong.security.personal_data.service import PersonalDataUnreadable
from tests.conftest import new_institution
from tests.security.fresh_database import FreshDatabase, fresh_database

runner = CliRunner()
_serial = itertools.count(1)
TABLES = personal_data.encrypted_tables(metadata)


def resident_id(area: str = "370281") -> str:
    n = next(_serial)
    body = f"{area}1980{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + rules.resident_id_check_char(body)


def phone_number() -> str:
    return f"139{next(_serial) % 10**8:08d}"


@pytest.fixture
def fresh(backend: str, tmp_path: Path) -> Iterator[FreshDatabase]:
    with fresh_database(backend, tmp_path) as database:
        yield database


def new_bank_in(factory: sessionmaker[Session]) -> uuid.UUID:
    with transaction(factory) as session:
        code = f"PD{next(_serial):05d}{uuid.uuid4().hex[:4].upper()}"
        return institutions.create_institution(session, code=code, name=f"测试 {code}").id


def add_customer(
    factory: sessionmaker[Session],
    institution_id: uuid.UUID,
    *,
    id_number: str | None = None,
    phone: str | None = None,
    name: str = "李秀英",
) -> Customer:
    with transaction(factory) as session:
        return parties.create_customer(
            session,
            institution_id=institution_id,
            kind=CustomerKind.individual,
            name=name,
            id_number=id_number or resident_id(),
            phone=phone,
        )


def read_identifiers(factory: sessionmaker[Session], customer_id: uuid.UUID) -> parties.Identifiers:
    with transaction(factory) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return parties.identifiers(session, customer)


# --------------------------------------------------------------------------- encryption


def test_values_round_trip_and_never_repeat_a_ciphertext(factory):
    institution = new_institution(factory)
    number, phone = resident_id(), phone_number()
    customer = add_customer(factory, institution.id, id_number=number.lower(), phone=phone)
    assert read_identifiers(factory, customer.id) == parties.Identifiers(number, phone)
    assert number.encode() not in customer.id_number_ciphertext
    assert phone.encode() not in (customer.phone_ciphertext or b"")
    assert len(customer.id_number_index) == 64 and customer.id_number_index != number

    with transaction(factory) as session:
        first, version = personal_data.encrypt(
            session, number, table="customers", field="id_number", row_id=customer.id
        )
        second, _ = personal_data.encrypt(
            session, number, table="customers", field="id_number", row_id=customer.id
        )
        assert first != second  # a fresh nonce each time: equal values do not look equal
        assert version == customer.data_key_version
        opened = personal_data.unseal(
            session,
            first,
            version=version,
            table="customers",
            field="id_number",
            row_id=customer.id,
        )
    assert opened == number


def test_a_customer_without_phone_has_neither_ciphertext_nor_index(factory):
    institution = new_institution(factory)
    customer = add_customer(factory, institution.id)
    assert customer.phone_ciphertext is None and customer.phone_index is None
    assert read_identifiers(factory, customer.id).phone is None


def test_a_ciphertext_moved_to_another_row_or_column_is_refused(fresh):
    institution_id = new_bank_in(fresh.factory)
    one = add_customer(fresh.factory, institution_id, phone=phone_number())
    two = add_customer(fresh.factory, institution_id, phone=phone_number())
    with transaction(fresh.factory) as session:  # an attacker with write access swaps them
        session.execute(
            update(Customer)
            .where(Customer.id == one.id)
            .values(id_number_ciphertext=two.id_number_ciphertext)
        )
        session.execute(
            update(Customer)
            .where(Customer.id == two.id)
            .values(id_number_ciphertext=two.phone_ciphertext)
        )
    with pytest.raises(PersonalDataUnreadable) as raised:
        read_identifiers(fresh.factory, one.id)
    assert raised.value.code == "security.personal_data_unreadable"
    assert str(one.id) in raised.value.message
    with pytest.raises(PersonalDataUnreadable):
        read_identifiers(fresh.factory, two.id)


def test_a_flipped_bit_is_refused(fresh):
    institution_id = new_bank_in(fresh.factory)
    customer = add_customer(fresh.factory, institution_id)
    tampered = bytearray(customer.id_number_ciphertext)
    tampered[15] ^= 0x01
    with transaction(fresh.factory) as session:
        session.execute(
            update(Customer)
            .where(Customer.id == customer.id)
            .values(id_number_ciphertext=bytes(tampered))
        )
    with pytest.raises(PersonalDataUnreadable):
        read_identifiers(fresh.factory, customer.id)


def test_the_wrong_master_key_cannot_unwrap_the_data_keys(fresh, monkeypatch):
    institution_id = new_bank_in(fresh.factory)
    customer = add_customer(fresh.factory, institution_id)
    monkeypatch.setenv("HUINONG_MASTER_KEY", "ffeeddccbbaa99887766554433221100")
    get_settings.cache_clear()
    keyring.master_key.cache_clear()
    try:
        with pytest.raises(PersonalDataUnreadable) as raised:
            read_identifiers(fresh.factory, customer.id)
        assert "HUINONG_MASTER_KEY" in raised.value.message
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        keyring.master_key.cache_clear()
    assert read_identifiers(fresh.factory, customer.id).id_number  # the right key works again


def test_the_first_key_is_created_once_however_many_writers_race_for_it(fresh):
    """Writers that all find no key yet each try to create version 1; the losers' transactions
    are retried and use the winner's key."""
    institution_id = new_bank_in(fresh.factory)
    writers = 6
    barrier = threading.Barrier(writers)
    numbers = [resident_id() for _ in range(writers)]
    errors: list[BaseException] = []
    attempts = threading.local()

    def write(number: str) -> None:
        def work(session: Session) -> None:
            # PostgreSQL: all writers start together, none sees a key, all insert version 1.
            # SQLite's BEGIN IMMEDIATE lets one writer in at a time: there is no race to wait
            # for (and waiting inside the transaction would stall the others).
            if fresh.backend == "postgresql" and not getattr(attempts, "started", False):
                attempts.started = True
                barrier.wait(timeout=30)
            parties.create_customer(
                session,
                institution_id=institution_id,
                kind=CustomerKind.individual,
                name="并发",
                id_number=number,
            )

        try:
            run_in_transaction(fresh.factory, work)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with fresh.factory() as session:
        assert session.scalars(select(DataKey.version)).all() == [1]
        customers = session.scalars(select(Customer)).all()
        assert sorted(parties.identifiers(session, c).id_number for c in customers) == sorted(
            numbers
        )


# --------------------------------------------------------------------------- blind index


def test_lookup_by_id_number_and_phone_through_the_blind_index(factory):
    institution = new_institution(factory)
    number, phone = resident_id(), phone_number()
    customer = add_customer(factory, institution.id, id_number=number, phone=phone)
    spouse = add_customer(factory, institution.id, phone=phone, name="王建国")  # same household
    with transaction(factory) as session:
        found = parties.find_customer_by_id_number(
            session, institution_id=institution.id, id_number=f" {number.lower()} "
        )
        assert found is not None and found.id == customer.id
        by_phone = parties.find_customers_by_phone(
            session, institution_id=institution.id, phone=f"{phone[:3]} {phone[3:7]}-{phone[7:]}"
        )
        assert [c.id for c in by_phone] == [customer.id, spouse.id]
        assert (
            parties.find_customer_by_id_number(
                session, institution_id=institution.id, id_number=resident_id()
            )
            is None
        )
        assert (
            parties.find_customers_by_phone(
                session, institution_id=institution.id, phone=phone_number()
            )
            == []
        )
        with pytest.raises(InvalidInput) as raised:
            parties.lookup_customers(session, institution_id=institution.id)
        assert raised.value.code == "parties.lookup_needs_one_identifier"
        with pytest.raises(InvalidInput):
            parties.find_customer_by_id_number(
                session, institution_id=institution.id, id_number="123"
            )


def test_the_blind_index_is_per_institution(factory):
    """The same person at two institutions: two customers, unrelated index values, and neither
    institution finds the other's."""
    first, second = new_institution(factory), new_institution(factory)
    number, phone = resident_id(), phone_number()
    mine = add_customer(factory, first.id, id_number=number, phone=phone)
    theirs = add_customer(factory, second.id, id_number=number, phone=phone)
    assert mine.id_number_index != theirs.id_number_index
    assert mine.phone_index != theirs.phone_index
    with transaction(factory) as session:
        found = parties.find_customer_by_id_number(
            session, institution_id=first.id, id_number=number
        )
        assert found is not None and found.id == mine.id
        assert [
            c.id
            for c in parties.find_customers_by_phone(session, institution_id=second.id, phone=phone)
        ] == [theirs.id]


def test_an_id_number_is_unique_within_an_institution_by_its_index(factory):
    institution = new_institution(factory)
    number = resident_id()
    add_customer(factory, institution.id, id_number=number)
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        parties.create_customer(
            session,
            institution_id=institution.id,
            kind=CustomerKind.individual,
            name="李四",
            id_number=number.lower(),
        )
    assert raised.value.code == "parties.id_number_taken"


def test_blind_index_is_keyed_hmac_sm3_over_institution_and_value():
    institution_id = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
    key = keyring.derived_key("blind-index/phone")
    expected = envelope.blind_index_with(key, institution_id=institution_id, value="13800138000")
    assert (
        personal_data.blind_index("13800138000", field="phone", institution_id=institution_id)
        == expected
    )
    other_field = personal_data.blind_index(
        "13800138000", field="id_number", institution_id=institution_id
    )
    assert other_field != expected  # one key per field


# --------------------------------------------------------------------------- rotation


def _snapshot(factory: sessionmaker[Session]) -> dict[uuid.UUID, tuple[int, bytes, bytes | None]]:
    with factory() as session:
        rows = session.execute(
            select(
                Customer.id,
                Customer.data_key_version,
                Customer.id_number_ciphertext,
                Customer.phone_ciphertext,
            )
        ).all()
    return {r.id: (r.data_key_version, r.id_number_ciphertext, r.phone_ciphertext) for r in rows}


def _all_readable(
    factory: sessionmaker[Session], originals: dict[uuid.UUID, tuple[str, str | None]]
):
    for customer_id, (number, phone) in originals.items():
        assert read_identifiers(factory, customer_id) == parties.Identifiers(number, phone)


def _status(factory: sessionmaker[Session]) -> dict[int, tuple[bool, int]]:
    with factory() as session:
        return {
            k.version: (k.active, k.values)
            for k in personal_data.key_status(session, tables=TABLES)
        }


def test_rotation_interrupted_then_resumed(fresh):
    factory = fresh.factory
    originals: dict[uuid.UUID, tuple[str, str | None]] = {}
    for institution_id in (new_bank_in(factory), new_bank_in(factory)):
        for i in range(11):
            number, phone = resident_id(), (phone_number() if i % 3 else None)
            originals[add_customer(factory, institution_id, id_number=number, phone=phone).id] = (
                number,
                phone,
            )
    values = len(originals) + sum(1 for _, p in originals.values() if p)
    assert _status(factory) == {1: (True, values)}
    before = _snapshot(factory)

    with transaction(factory) as session:
        assert personal_data.create_data_key(session).version == 2
    assert _status(factory) == {1: (False, values), 2: (True, 0)}
    with factory() as session:
        assert personal_data.rows_to_rotate(session, tables=TABLES) == 22

    # A batch whose transaction fails changes nothing.
    with pytest.raises(RuntimeError), transaction(factory) as session:
        assert personal_data.reencrypt_batch(session, table=TABLES[0], limit=5) == 5
        raise RuntimeError("connection lost before commit")
    assert _snapshot(factory) == before

    # Interrupted after two committed batches of 4 (Ctrl-C between batches).
    batches: list[int] = []

    def interrupt_after_two(rows: int) -> None:
        batches.append(rows)
        if len(batches) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keys_cli.reencrypt_all(factory, tables=TABLES, batch_size=4, advance=interrupt_after_two)
    middle = _snapshot(factory)
    moved = [i for i in middle if middle[i][0] == 2]
    assert len(moved) == 8 and batches == [4, 4]
    assert sorted(moved) == sorted(middle)[:8]  # in id order
    for customer_id in moved:  # re-encrypted: new ciphertexts, not relabelled old ones
        assert middle[customer_id][1] != before[customer_id][1]
    _all_readable(factory, originals)  # a consistent state: every row reads under its key
    with factory() as session:
        assert personal_data.rows_to_rotate(session, tables=TABLES) == 14

    # A customer created mid-rotation is under the new key at once.
    number = resident_id()
    late = add_customer(factory, new_bank_in(factory), id_number=number)
    originals[late.id] = (number, None)
    assert late.data_key_version == 2

    done = keys_cli.reencrypt_all(factory, tables=TABLES, batch_size=4)
    assert done == 14
    after = _snapshot(factory)
    assert {version for version, _, _ in after.values()} == {2}
    _all_readable(factory, originals)
    assert _status(factory) == {1: (False, 0), 2: (True, values + 1)}
    assert keys_cli.reencrypt_all(factory, tables=TABLES, batch_size=4) == 0


def test_keys_cli_status_and_rotate(fresh, monkeypatch):
    monkeypatch.setenv("HUINONG_DATABASE_URL", fresh.url)
    get_settings.cache_clear()
    try:
        result = runner.invoke(keys_cli.app, ["status"])
        assert result.exit_code == 0, result.output
        assert "no data key yet" in result.output

        institution_id = new_bank_in(fresh.factory)
        originals = {}
        for _ in range(7):
            number, phone = resident_id(), phone_number()
            customer = add_customer(fresh.factory, institution_id, id_number=number, phone=phone)
            originals[customer.id] = (number, phone)

        result = runner.invoke(keys_cli.app, ["status"])
        assert result.exit_code == 0, result.output
        assert "v1" in result.output and "active" in result.output and "14" in result.output

        result = runner.invoke(keys_cli.app, ["rotate", "--batch-size", "3"])
        assert result.exit_code == 0, result.output
        assert "data key v2 created" in result.output
        assert "7 rows re-encrypted" in result.output

        result = runner.invoke(keys_cli.app, ["status"])
        assert result.exit_code == 0, result.output
        assert "retired, unused" in result.output
        assert _status(fresh.factory) == {1: (False, 0), 2: (True, 14)}

        result = runner.invoke(keys_cli.app, ["rotate", "--resume"])
        assert result.exit_code == 0, result.output
        assert "0 rows re-encrypted" in result.output
        assert _status(fresh.factory) == {1: (False, 0), 2: (True, 14)}
        _all_readable(fresh.factory, originals)
    finally:
        get_settings.cache_clear()


def test_resume_without_any_key_is_refused(fresh, monkeypatch):
    monkeypatch.setenv("HUINONG_DATABASE_URL", fresh.url)
    get_settings.cache_clear()
    try:
        result = runner.invoke(keys_cli.app, ["rotate", "--resume"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "no data key yet" in result.output


def test_data_keys_are_stored_wrapped(fresh):
    institution_id = new_bank_in(fresh.factory)
    add_customer(fresh.factory, institution_id)
    with fresh.factory() as session:
        stored = session.scalars(select(DataKey)).one()
        key = personal_data.key_of_version(session, 1)
    assert key.key not in stored.wrapped_key
    assert len(stored.wrapped_key) == 12 + 16 + 16  # nonce, wrapped key, tag
    assert repr(key) == "DataKeyMaterial(version=1)"  # the key itself is never printed


# --------------------------------------------------------------------------- at rest


def encodings(value: str) -> list[bytes]:
    """The ways a value could sit in a file: as text in the encodings databases use, and as
    hex text of those bytes."""
    ascii_ = value.encode("ascii")
    return [
        ascii_,
        value.encode("utf-16-le"),
        value.encode("utf-16-be"),
        ascii_.hex().encode(),
        ascii_.hex().upper().encode(),
    ]


def sqlite_bytes(database: FreshDatabase) -> bytes:
    assert database.path is not None
    # Outside the engine: its connections open a transaction, and a checkpoint needs none.
    with contextlib.closing(sqlite3.connect(database.path, isolation_level=None)) as raw:
        busy, _, checkpointed = raw.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
    assert busy == 0 and checkpointed > 0  # the main file holds the rows, the WAL too
    files = [database.path, database.path.with_name(database.path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def postgres_values(database: FreshDatabase) -> bytes:
    """Every value of every column of every table of the schema: text as UTF-8, bytea raw, the
    rest as PostgreSQL renders it as text."""
    chunks: list[bytes] = []
    with database.engine.connect() as connection:
        columns = connection.execute(
            text(
                "select table_name, column_name, data_type from information_schema.columns "
                "where table_schema = :schema order by table_name, ordinal_position"
            ),
            {"schema": database.schema},
        ).all()
        assert columns
        for table, column, data_type in columns:
            expression = f'"{column}"' if data_type == "bytea" else f'"{column}"::text'
            for (value,) in connection.execute(text(f'select {expression} from "{table}"')):
                if value is None:
                    continue
                chunks.append(bytes(value) if data_type == "bytea" else value.encode("utf-8"))
    return b"\x00".join(chunks)


def test_no_plaintext_id_number_or_phone_in_the_database(fresh):
    institution_id = new_bank_in(fresh.factory)
    secrets_ = []
    names = []
    for i in range(5):
        number, phone = resident_id(area="654321"), f"1577{i}{next(_serial) % 10**6:06d}"
        name = f"独特名字{i}号"
        add_customer(fresh.factory, institution_id, id_number=number, phone=phone, name=name)
        secrets_ += [number, phone, number[6:14]]  # the birth date alone is a C2 fragment
        names.append(name)

    stored = sqlite_bytes(fresh) if fresh.backend == "sqlite" else postgres_values(fresh)
    # The search finds what is there: names are stored plain (C1), so they must be found.
    for name in names:
        assert name.encode("utf-8") in stored
    for secret in secrets_:
        for form in encodings(secret):
            assert form not in stored, (secret, form)
