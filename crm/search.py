"""Substring search in any letter case, the same on SQLite and PostgreSQL."""

from django.db.models import Func, Q
from django.db.models.lookups import Contains, Lookup

# Search ------------------------------------------------------------------------


class CaseFold(Func):
    """Text folded for matching in any letter case.

    SQLite's own ``LOWER()`` and ``LIKE`` fold ASCII letters only, so there it
    is Python's ``str.casefold`` (registered on each connection, see
    ``register_sqlite_functions``).
    """

    function = "LOWER"

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, function="CRM_CASEFOLD", **extra_context
        )


def register_sqlite_functions(sender, connection, **kwargs):
    """Give each new SQLite connection the functions our queries use."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "CRM_CASEFOLD",
            1,
            lambda text: text.casefold() if isinstance(text, str) else text,
            deterministic=True,
        )


def contains_any_case(field, text, vendor):
    """Return a condition: ``field`` contains ``text`` in any letter case.

    ``%`` and ``_`` match literally. ``icontains`` wherever the database folds
    every letter (PostgreSQL), and on SQLite for ASCII text; on SQLite a text
    with other letters (``ZOË``) compares Python-casefolded values.
    """
    if vendor == "sqlite" and not text.isascii():
        return Q(Contains(CaseFold(field), text.casefold()))
    return Q(**{f"{field}__icontains": text})


class AnyOf(Lookup):
    """``field = ANY(values)``, the values sent as one array (PostgreSQL).

    The same rows, and plan, as ``field__in=values``; but an ``IN`` list of
    thousands of values is prepared and quoted value by value in Python each
    time a query carrying it is compiled (tens of milliseconds a page).
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        array = f"{self.lhs.output_field.db_type(connection)}[]"
        return f"{lhs} = ANY(%s::{array})", (*params, list(self.rhs))


def clean_search_query(query):
    """Return the search text as it is matched ('' for no search)."""
    # PostgreSQL refuses NUL in a parameter, and no stored text contains one.
    return (query or "").replace("\x00", "").strip()
