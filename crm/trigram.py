"""Trigram (pg_trgm) indexes that let PostgreSQL answer substring searches.

Every search is a substring match in any letter case (``ClientQuerySet.search``,
``OrderQuerySet.search``). On PostgreSQL Django writes it as
``UPPER(col::text) LIKE UPPER('%term%')``; a GIN index with ``gin_trgm_ops``
on that same expression answers it from the index instead of reading every
row (terms of three characters or more; shorter ones match so many rows that
reading the table in order is the faster plan anyway). The phone number is
searched with a plain ``LIKE``, so its index is on the bare column.

Migration 0007 creates them (and the ``pg_trgm`` extension); on SQLite there
is nothing to create: it has no such index and searches stay scans there.
"""

#: name -> (table, indexed expression)
TRIGRAM_INDEXES = {
    "crm_client_name_trgm": ("crm_client", "UPPER(name)"),
    "crm_client_email_trgm": ("crm_client", "UPPER(email)"),
    "crm_client_phone_trgm": ("crm_client", "phone"),
    "crm_order_title_trgm": ("crm_order", "UPPER(title)"),
}


def create_indexes(schema_editor):
    """Create the trigram indexes on PostgreSQL; do nothing elsewhere."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, expression) in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin ({expression} gin_trgm_ops)",
            params=None,
        )


def drop_indexes(schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


def installed_indexes(connection):
    """Return the names of the trigram indexes the database has."""
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes "
            "WHERE schemaname = current_schema() AND indexname = ANY(%s)",
            [list(TRIGRAM_INDEXES)],
        )
        return {name for (name,) in cursor.fetchall()}
