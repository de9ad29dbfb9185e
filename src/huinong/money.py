"""Money as an integer number of fen with a currency code.

Floats never represent money here: ``Money`` refuses them (and ``bool``, which Python counts as
an ``int``). Amounts from people arrive as yuan strings or ``Decimal`` and are converted once,
ROUND_HALF_UP, by :meth:`Money.from_yuan`. Splitting an amount allocates the remainder
explicitly: :meth:`Money.split` gives the last part whatever the division left over, so the
parts always add up to the whole.

Storage is a signed 64-bit integer (PostgreSQL ``BIGINT``), so every amount and every balance
must stay within :data:`MAX_FEN`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MAX_FEN = 2**63 - 1
FEN_PER_YUAN = 100
CNY = "CNY"


class MoneyError(ValueError):
    """Raised for mixed currencies, floats, and amounts outside a signed 64-bit integer."""


def _check_fen(amount_fen: object) -> int:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise MoneyError(f"money is an integer number of fen, not {type(amount_fen).__name__}")
    if not -MAX_FEN <= amount_fen <= MAX_FEN:
        raise MoneyError("amount does not fit a signed 64-bit number of fen")
    return amount_fen


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount_fen: int
    currency: str = CNY

    def __post_init__(self) -> None:
        _check_fen(self.amount_fen)
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise MoneyError(f"currency must be an ISO 4217 code, got {self.currency!r}")

    @classmethod
    def from_yuan(cls, yuan: Decimal | str | int, currency: str = CNY) -> Money:
        """Convert yuan (a ``Decimal`` or a decimal string) to fen, ROUND_HALF_UP."""
        if isinstance(yuan, float | bool):
            raise MoneyError("yuan amounts are given as Decimal or strings, never floats")
        try:
            value = Decimal(yuan)
        except InvalidOperation as exc:
            raise MoneyError(f"not a decimal amount: {yuan!r}") from exc
        if not value.is_finite():
            raise MoneyError("amount must be finite")
        fen = (value * FEN_PER_YUAN).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return cls(int(fen), currency)

    @property
    def yuan(self) -> Decimal:
        return Decimal(self.amount_fen).scaleb(-2)

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_fen + other.amount_fen, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_fen - other.amount_fen, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_fen, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_fen < other.amount_fen

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_fen <= other.amount_fen

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_fen > other.amount_fen

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_fen >= other.amount_fen

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise MoneyError(
                "money multiplies by whole numbers only; use a Decimal rate and quantize"
            )
        return Money(self.amount_fen * factor, self.currency)

    def times_rate(self, rate: Decimal) -> Money:
        """This amount times a ``Decimal`` rate, quantized once to fen ROUND_HALF_UP."""
        if not isinstance(rate, Decimal):
            raise MoneyError("rates are Decimal")
        fen = (Decimal(self.amount_fen) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return Money(int(fen), self.currency)

    def split(self, parts: int) -> list[Money]:
        """Split into ``parts`` equal shares; the last share absorbs the remainder."""
        if parts < 1:
            raise MoneyError("split into at least one part")
        share = int(self.amount_fen / parts) if self.amount_fen < 0 else self.amount_fen // parts
        shares = [Money(share, self.currency) for _ in range(parts - 1)]
        shares.append(Money(self.amount_fen - share * (parts - 1), self.currency))
        return shares

    def __str__(self) -> str:
        return f"{self.yuan:,.2f} {self.currency}"
