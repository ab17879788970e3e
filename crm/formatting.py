"""How money looks on pages and in files: always two decimals."""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def format_money(value):
    """Return an amount with exactly two decimals (``30.5`` -> ``'30.50'``)."""
    if value is None or value == "":
        value = 0
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))
