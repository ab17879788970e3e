"""How values look on pages and in exported files."""

from decimal import ROUND_HALF_UP, Decimal

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CENT = Decimal("0.01")


def format_money(value):
    """Return an amount with exactly two decimals (``30.5`` -> ``'30.50'``)."""
    if value is None or value == "":
        value = 0
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def escape_formula(value):
    """Prefix spreadsheet formulae with ``'`` (OWASP CSV injection advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def unescape_formula(value):
    """Undo ``escape_formula``, so an exported file imports back unchanged."""
    if isinstance(value, str) and value[:1] == "'" and value[1:2] in FORMULA_PREFIXES:
        return value[1:]
    return value
