"""PostgreSQL arrays built whole in binary, for the parameters of set-based statements.

A batch of 8,190 transfers is stored with ``INSERT … SELECT FROM unnest(%(id)b::uuid[], …)``.
psycopg dumps a Python list element by element, in Python, choosing a dumper for each list by
looking at its values: about 100 ms of a batch's 450 ms of Python on the project's machine,
and on the critical path, since Python decides the next piece while PostgreSQL inserts the
last. Here each array is built in one go with numpy in PostgreSQL's binary array format
(``array_send``: a header, then a 4-byte length and the value of every element) and psycopg
sends the bytes as they are: the same values arrive, in a half (UUIDs) to a tenth (integers) of
the time. Arrays with NULLs, text and timestamps are left to psycopg (a timestamp costs as much
to convert here as there).

Each builder returns a ``bytes`` subclass whose psycopg dumper names the array's type, so a
statement takes it wherever it takes the list: ``%(id)b::uuid[]`` with ``uuid_array(ids)``.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

# Type oids (pg_type): the element and the array.
_UUID, _UUID_ARRAY = 2950, 2951
_INT4, _INT4_ARRAY = 23, 1007
_INT8, _INT8_ARRAY = 20, 1016


class UuidArray(bytes):
    """A ``uuid[]`` in binary."""


class Int4Array(bytes):
    """An ``int[]`` in binary."""


class Int8Array(bytes):
    """A ``bigint[]`` in binary."""


def _header(element_oid: int, count: int) -> bytes:
    # dimensions, has-nulls flag, element type, then (length, lower bound) of the one dimension
    return struct.pack(">iiiii", 1, 0, element_oid, count, 1)


def _fixed(element_oid: int, width: int, data: bytes, count: int) -> bytes:
    """``count`` elements of ``width`` bytes each, big-endian in ``data``, each given its
    length prefix."""
    body = np.empty((count, 4 + width), dtype=np.uint8)
    body[:, :4] = np.frombuffer(struct.pack(">i", width), dtype=np.uint8)
    body[:, 4:] = np.frombuffer(data, dtype=np.uint8).reshape(count, width)
    return _header(element_oid, count) + body.tobytes()


def uuid_array(values: Sequence[uuid.UUID]) -> UuidArray:
    return UuidArray(_fixed(_UUID, 16, b"".join([v.bytes for v in values]), len(values)))


def int4_array(values: Sequence[int]) -> Int4Array:
    data = np.asarray(values, dtype=">i4").tobytes()  # raises OverflowError out of range
    return Int4Array(_fixed(_INT4, 4, data, len(values)))


def int8_array(values: Sequence[int]) -> Int8Array:
    data = np.asarray(values, dtype=">i8").tobytes()
    return Int8Array(_fixed(_INT8, 8, data, len(values)))


def _dumper(array_oid: int) -> type[Dumper]:
    class Prebuilt(Dumper):
        format = Format.BINARY
        oid = array_oid

        def dump(self, obj: bytes) -> bytes:
            return obj

    return Prebuilt


_PREBUILT = (
    (UuidArray, _dumper(_UUID_ARRAY)),
    (Int4Array, _dumper(_INT4_ARRAY)),
    (Int8Array, _dumper(_INT8_ARRAY)),
)


def register(connection: psycopg.Connection[Any]) -> None:
    """Teach a connection to send the arrays built here (``huinong.db`` does it for every
    PostgreSQL connection as it opens)."""
    for cls, dumper in _PREBUILT:
        connection.adapters.register_dumper(cls, dumper)


def unnest(*columns: tuple[str, str]) -> str:
    """``unnest(…)`` of array parameters, for a statement's FROM: ``unnest(("ids", "uuid"))``
    reads ``unnest((SELECT %(ids)b::uuid[]))``.

    Each array is a scalar subquery so that the planner cannot see its length. Given the
    values (a custom plan), it sizes ``unnest`` of a known array by its length: a plan for 2
    rows then always looks cheaper than a plan for any number, and PostgreSQL plans the
    statement anew on every execution, about a third of its work on a single transfer.
    Behind a subquery the array is sized like any function's result, custom and generic plans
    cost the same, and after psycopg prepares the statement PostgreSQL keeps the generic plan:
    planned once per connection. Statements join the rows to a table by its primary key, which
    that plan probes whatever the number of rows (a nested loop; a plan for thousands of rows
    would hash the whole table instead).
    """
    return "unnest(" + ", ".join(f"(SELECT %({name})b::{kind}[])" for name, kind in columns) + ")"
