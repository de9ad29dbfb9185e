"""National cryptography throughput: SM2 through ``huinong.security.crypto`` next to the
pure-Python ``gmssl`` in the same run, and SM3, HMAC-SM3 and SM4 bulk speed.

    .venv/bin/python benchmarks/crypto.py            # full run (about a minute)
    .venv/bin/python benchmarks/crypto.py --quick    # a short smoke run

Method: every cell calls the operation in a loop for a fixed time, in rounds (``--rounds``,
the median round is reported), after a short warm-up. One thread unless the row says
otherwise; the "2 threads" row runs two threads signing and verifying at once, which works
because cffi releases the GIL around Tongsuo's point multiplications.

* **SM2** on a 100-byte message with the default signer id: a fresh key per run, the
  signature verified inside the loop (a sign+verify that answered ``False`` stops the run:
  a fast wrong answer does not count), encryption of a 16-byte SM4 key decrypted and
  compared inside the loop. The baseline is ``gmssl`` (pure Python) on the same message,
  signing with a nonce from :mod:`secrets` (its own comes from :mod:`random`) and encrypting
  in C1C3C2 mode; ``tongsuopy``'s own ``ECDSA(SM3)`` on its ``SM2`` curve, which can only use
  the default signer id and cannot encrypt, is shown as the other candidate that was measured
  when the implementation was chosen.
* **Bulk**: SM3, HMAC-SM3, SM4-GCM encryption (``sm4_gcm_encrypt``: fresh nonce, tag) and
  SM4-CBC encryption with PKCS#7 over 1 MiB messages, and SM4-GCM over 1 KiB records, the
  size of a row of personal data, in MB/s (10^6 bytes).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bench_host import machine
from huinong.security.crypto import (
    SM2PrivateKey,
    hmac_sm3,
    sm3,
    sm4_cbc_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

TARGET_SIGN_VERIFY = 1_000  # SM2 sign+verify per second, one thread, on this 2-core machine
MESSAGE = b"huinong benchmark message " * 4  # 104 bytes, about a payment instruction
DATA_KEY = bytes(range(16))  # what SM2 encrypts in practice: an SM4 key
MIB = 1 << 20

console = Console(width=max(130, shutil.get_terminal_size().columns))


@dataclass
class Row:
    operation: str
    implementation: str
    rate: float
    unit: str
    baseline: float | None = None
    target: str = ""
    passed: bool | None = None


def measure(operation: Callable[[], object], seconds: float, rounds: int) -> float:
    """Median over ``rounds`` of calls per second, each round ``seconds`` long."""
    operation()  # warm-up: first-call costs (imports, caches) are not throughput
    rates = []
    for _ in range(rounds):
        calls = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            operation()
            calls += 1
        rates.append(calls / (time.perf_counter() - started))
    return statistics.median(rates)


def measure_threads(
    operation: Callable[[], object], threads: int, seconds: float, rounds: int
) -> float:
    """Like :func:`measure`, with ``threads`` threads calling at once; total calls per second."""
    operation()
    return statistics.median(_threaded_round(operation, threads, seconds) for _ in range(rounds))


def _threaded_round(operation: Callable[[], object], threads: int, seconds: float) -> float:
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def work(slot: int) -> None:
        start.wait()
        while not stop.is_set():
            operation()
            counts[slot] += 1

    workers = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


# --------------------------------------------------------------------------- SM2


def bench_sm2(seconds: float, rounds: int) -> list[Row]:
    key = SM2PrivateKey.generate()
    public = key.public_key
    signature = key.sign(MESSAGE)
    ciphertext = public.encrypt(DATA_KEY)

    def sign_verify() -> None:
        if not public.verify(key.sign(MESSAGE), MESSAGE):
            raise SystemExit("SM2 sign+verify answered False")

    def encrypt_decrypt() -> None:
        if key.decrypt(public.encrypt(DATA_KEY)) != DATA_KEY:
            raise SystemExit("SM2 decrypt did not return the plaintext")

    gmssl = gmssl_operations(key)
    rows = []

    console.log("SM2 sign+verify")
    rate = measure(sign_verify, seconds, rounds)
    baseline = measure(gmssl["sign_verify"], seconds, 1)
    rows.append(
        Row(
            "SM2 sign+verify",
            "huinong (Tongsuo C point products)",
            rate,
            "ops/s",
            baseline,
            f">= {TARGET_SIGN_VERIFY:,}/s",
            rate >= TARGET_SIGN_VERIFY,
        )
    )
    console.log("SM2 sign+verify, 2 threads")
    rows.append(
        Row(
            "SM2 sign+verify",
            "huinong, 2 threads",
            measure_threads(sign_verify, 2, seconds, rounds),
            "ops/s",
            baseline,
        )
    )
    tongsuo = tongsuopy_sign_verify(key)
    if tongsuo is not None:
        console.log("SM2 sign+verify through tongsuopy's own API")
        rows.append(
            Row(
                "SM2 sign+verify",
                "tongsuopy ECDSA(SM3) on SM2 (default id only)",
                measure(tongsuo, seconds, rounds),
                "ops/s",
                baseline,
            )
        )
    console.log("SM2 sign, verify")
    rows.append(
        Row(
            "SM2 sign",
            "huinong",
            measure(lambda: key.sign(MESSAGE), seconds, rounds),
            "ops/s",
            measure(gmssl["sign"], seconds, 1),
        )
    )
    rows.append(
        Row(
            "SM2 verify",
            "huinong",
            measure(lambda: public.verify(signature, MESSAGE), seconds, rounds),
            "ops/s",
            measure(gmssl["verify"], seconds, 1),
        )
    )
    console.log("SM2 encrypt+decrypt")
    assert key.decrypt(ciphertext) == DATA_KEY
    rows.append(
        Row(
            "SM2 encrypt+decrypt (16 B)",
            "huinong",
            measure(encrypt_decrypt, seconds, rounds),
            "ops/s",
            measure(gmssl["encrypt_decrypt"], seconds, 1),
        )
    )
    return rows


def gmssl_operations(key: SM2PrivateKey) -> dict[str, Callable[[], None]]:
    """The same SM2 operations on the pure-Python ``gmssl`` (a dev dependency)."""
    from gmssl import sm2 as gmssl_sm2

    xy = key.public_key.to_hex()[2:]
    crypt = gmssl_sm2.CryptSM2(private_key=key.to_hex(), public_key=xy, mode=1)
    crypt.public_key = xy  # gmssl's own "04" stripping (str.lstrip) can eat digits of x
    order = int(gmssl_sm2.default_ecc_table["n"], 16)
    signature = crypt.sign_with_sm3(MESSAGE, f"{secrets.randbelow(order - 1) + 1:064x}")

    def sign() -> None:
        crypt.sign_with_sm3(MESSAGE, f"{secrets.randbelow(order - 1) + 1:064x}")

    def verify() -> None:
        if not crypt.verify_with_sm3(signature, MESSAGE):
            raise SystemExit("gmssl verify answered False")

    def sign_verify() -> None:
        fresh = crypt.sign_with_sm3(MESSAGE, f"{secrets.randbelow(order - 1) + 1:064x}")
        if not crypt.verify_with_sm3(fresh, MESSAGE):
            raise SystemExit("gmssl sign+verify answered False")

    def encrypt_decrypt() -> None:
        if crypt.decrypt(crypt.encrypt(DATA_KEY)) != DATA_KEY:
            raise SystemExit("gmssl decrypt did not return the plaintext")

    return {
        "sign": sign,
        "verify": verify,
        "sign_verify": sign_verify,
        "encrypt_decrypt": encrypt_decrypt,
    }


def tongsuopy_sign_verify(key: SM2PrivateKey) -> Callable[[], None] | None:
    try:
        from tongsuopy.crypto import hashes, serialization
        from tongsuopy.crypto.asymciphers import ec
    except ImportError:  # pragma: no cover - tongsuopy is a dependency
        return None
    private = serialization.load_der_private_key(key.to_der(), None)
    public = private.public_key()
    algorithm = ec.ECDSA(hashes.SM3())

    def sign_verify() -> None:
        public.verify(private.sign(MESSAGE, algorithm), MESSAGE, algorithm)  # raises if bad

    return sign_verify


# --------------------------------------------------------------------------- bulk


def bench_bulk(seconds: float, rounds: int) -> list[Row]:
    key = secrets.token_bytes(16)
    iv = secrets.token_bytes(16)
    big = secrets.token_bytes(MIB)
    record = secrets.token_bytes(1024)
    assert sm4_gcm_decrypt(key, sm4_gcm_encrypt(key, big, aad=b"row"), aad=b"row") == big
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("SM3 (1 MiB)", lambda: sm3(big), MIB),
        ("HMAC-SM3 (1 MiB)", lambda: hmac_sm3(key, big), MIB),
        ("SM4-GCM encrypt (1 MiB)", lambda: sm4_gcm_encrypt(key, big, aad=b"row"), MIB),
        ("SM4-GCM encrypt (1 KiB records)", lambda: sm4_gcm_encrypt(key, record), 1024),
        ("SM4-CBC encrypt, PKCS#7 (1 MiB)", lambda: sm4_cbc_encrypt(key, iv, big), MIB),
    ]
    rows = []
    for name, operation, size in cases:
        console.log(name)
        rate = measure(operation, seconds, rounds) * size / 1e6
        rows.append(Row(name, "huinong (cryptography / OpenSSL)", rate, "MB/s"))
    return rows


# --------------------------------------------------------------------------- report


def render(rows: list[Row], args: argparse.Namespace) -> Table:
    table = Table(
        title="National cryptography throughput (huinong.security.crypto)",
        caption=(
            f"{machine()}; {args.seconds:g} s per cell, median of "
            f"{args.rounds} rounds (baseline: 1 round). SM2 on a {len(MESSAGE)}-byte message, "
            "default signer id; baseline = gmssl (pure Python) in this run, ratio = rate / "
            "baseline. Bulk figures in MB/s (10^6 bytes). Load average (1 min) at start "
            f"{args.load[0]:.2f}, at end {os.getloadavg()[0]:.2f}."
        ),
        caption_justify="left",
    )
    for name, justify in (
        ("operation", "left"),
        ("implementation", "left"),
        ("rate", "right"),
        ("unit", "left"),
        ("gmssl baseline", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("pass", "center"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.operation,
            r.implementation,
            f"{r.rate:,.0f}" if r.rate >= 100 else f"{r.rate:,.1f}",
            r.unit,
            f"{r.baseline:,.1f}" if r.baseline else "",
            f"{r.rate / r.baseline:,.0f} x" if r.baseline else "",
            r.target,
            "" if r.passed is None else ("pass" if r.passed else "[bold red]MISS[/]"),
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short cells (a smoke run)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per cell")
    args = parser.parse_args()
    args.seconds = 0.5 if args.quick else 3.0
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.load = os.getloadavg()
    if args.load[0] > 0.5:
        console.log(
            f"[yellow]load average {args.load[0]:.2f}: other processes are busy on this "
            "machine, so the figures will be low[/]"
        )
    started = time.monotonic()
    rows = bench_sm2(args.seconds, args.rounds) + bench_bulk(args.seconds, args.rounds)
    console.print(render(rows, args))
    console.print(f"whole run {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
