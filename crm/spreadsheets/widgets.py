"""How each kind of cell is written to a CSV file and read back from one."""

import re
from decimal import InvalidOperation

from django.utils.timezone import get_current_timezone, localtime
from import_export import widgets

from ..formatting import format_money
from ..models import Client, Order
from ..rules import normalize_email

# A cell a spreadsheet would run as a formula: it starts with one of these, or
# with apostrophes followed by one (an apostrophe the user typed stays theirs).
FORMULA = re.compile(r"'*[=+\-@\t\r]")


def _moment(value):
    """Return a local time as ``YYYY-MM-DD HH:MM:SS``, which spreadsheets read.

    (``isoformat``: twice as fast as ``strftime``.)
    """
    return value.isoformat(" ", "seconds")[:19]


FORMULA_START = frozenset("'=+-@\t\r")
# Digits a spreadsheet would read as a number and drop the zeros in front of.
LEADING_ZERO = re.compile(r"0[0-9]*\Z")


def escape_formula(value):
    """Prefix a formula-like cell with one ``'`` (OWASP CSV injection advice)."""
    if isinstance(value, str) and value[:1] in FORMULA_START and FORMULA.match(value):
        return "'" + value
    return value


def unescape_formula(value):
    """Remove the one ``'`` that ``escape_formula`` added, and only that one."""
    if isinstance(value, str) and value[:1] == "'" and FORMULA.match(value, 1):
        return value[1:]
    return value


def check_text(value):
    """Refuse NUL characters, as Django's form fields do."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Null characters are not allowed.")
    return value


class CellWidget(widgets.Widget):
    """A column's cell: ``write()`` turns a database value into the cell's text.

    ``write()`` is what the streamed export calls for each value it reads from
    the database; ``render()`` (the resources' export) calls it too, so both
    write the same bytes.
    """

    def write(self, value):
        return "" if value is None else str(value)

    def writer(self):
        """Return ``write``, or a faster equivalent for writing many cells."""
        return self.write

    def render(self, value, obj=None, **kwargs):
        if kwargs.get("force_native_type"):
            return value
        return self.write(value)


class NumberWidget(CellWidget, widgets.IntegerWidget):
    """A whole number, exported only (ids, counts)."""


class TextWidget(CellWidget, widgets.CharWidget):
    """Text cell: surrounding spaces dropped; line breaks kept as they are."""

    def clean(self, value, row=None, **kwargs):
        text = check_text("" if value is None else str(value))
        return unescape_formula(text).strip()

    def write(self, value):
        return escape_formula("" if value is None else value)


class PhoneWidget(TextWidget):
    """A phone number: one starting with 0 is written as text (``'0612…``).

    A spreadsheet reads ``0612345678`` as the number 612345678 and saves it
    back without its leading zero; the ``'`` keeps it text, and is taken off
    again on import (as for formula-like cells).
    """

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs)
        return text[1:] if LEADING_ZERO.match(text, 1) and text[:1] == "'" else text

    def write(self, value):
        text = super().write(value)
        return "'" + text if LEADING_ZERO.match(text) else text


class EmailWidget(TextWidget):
    """An email cell, read as the model stores it (so it can key a lookup)."""

    def clean(self, value, row=None, **kwargs):
        return normalize_email(super().clean(value, row, **kwargs))


class YesNoWidget(CellWidget, widgets.BooleanWidget):
    """Boolean cell: 1/0, true/false, yes/no in any case; blank keeps the value."""

    TRUE_WORDS = {"1", "true", "yes", "y"}
    FALSE_WORDS = {"0", "false", "no", "n"}

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool) or value is None:
            return value
        word = str(value).strip().lower()
        if word in {"", "none", "null"}:
            return None
        if word in self.TRUE_WORDS:
            return True
        if word in self.FALSE_WORDS:
            return False
        raise ValueError(f"“{value}” is not yes/no (use 1 or 0).")

    def write(self, value):
        return "" if value is None else ("1" if value else "0")


class MoneyWidget(CellWidget, widgets.DecimalWidget):
    """Amount cell, written with two decimals (``30.50``)."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except (InvalidOperation, ValueError, TypeError):
            raise ValueError(f"“{value}” is not a number.") from None

    def write(self, value):
        return "" if value is None else format_money(value)

    def writer(self):
        # The database hands back amounts with two decimals already (its
        # columns and MONEY have two): format_money's text, three times faster.
        return lambda value: "" if value is None else f"{value:.2f}"


class DateTimeWidget(CellWidget, widgets.DateTimeWidget):
    """A moment, written in the site's time zone, exported only."""

    def write(self, value):
        return "" if value is None else _moment(localtime(value))

    def writer(self):
        # Looking the time zone up once, not once a cell, doubles the export.
        zone = get_current_timezone()
        return lambda value: "" if value is None else _moment(value.astimezone(zone))


class StatusWidget(CellWidget, widgets.CharWidget):
    """Status cell: ``DONE``, ``done`` and ``In progress`` all work; blank is NEW."""

    def clean(self, value, row=None, **kwargs):
        cell = super().clean(value, row, **kwargs).strip()
        status = cell.upper().replace(" ", "_")
        if status and status not in Order.Status.values:
            raise ValueError(
                f"“{cell}” is not a status: use {', '.join(Order.Status.values)}."
            )
        return status or None


class ClientEmailWidget(CellWidget, widgets.ForeignKeyWidget):
    """A client named by email, case-insensitively.

    The streamed export reads the email itself (``client__email``); the
    resources hand over the client.
    """

    def __init__(self, **kwargs):
        super().__init__(Client, field="email", **kwargs)
        self.clients = None

    def prefetch(self, values):
        """Load every client the column names in one go."""
        self.clients = self.model.objects.by_email(
            unescape_formula(value) for value in values if isinstance(value, str)
        )

    def clean(self, value, row=None, **kwargs):
        key = normalize_email(unescape_formula(check_text(value)))
        if not key:
            raise ValueError("Enter the client's email.")
        if self.clients is None:
            self.clients = self.model.objects.by_email([key])
        try:
            return self.clients[key]
        except KeyError:
            raise ValueError(f"No client with email “{value}”.") from None

    def render(self, value, obj=None, **kwargs):
        if kwargs.get("force_native_type"):
            return super().render(value, obj, **kwargs)
        return self.write(None if value is None else value.email)

    def write(self, value):
        return escape_formula("" if value is None else value)
