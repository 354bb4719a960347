"""Money in reports: prices are summed in SQL as whole hundred-thousandths (the column's precision), so no
float ever touches them, and turned back into `Decimal` here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, cast, func
from sqlalchemy.sql.elements import ColumnElement

MICRO = Decimal("0.00001")  # call_legs.price is Numeric(12, 5)


def summed_micros(column: Any) -> ColumnElement[int]:
    """SUM(column) in hundred-thousandths, 0 when there is nothing to sum."""
    return func.coalesce(func.sum(cast(func.round(column * 100000), BigInteger)), 0)


def money(micros: int | None) -> Decimal:
    return (Decimal(int(micros or 0)) * MICRO).quantize(MICRO)
