"""Order counts and totals per client, kept in crm_clienttotals by database triggers."""

# Triggers keep the numbers exact on every write path (save(), bulk_create,
# QuerySet.update(), raw SQL, the merge's single UPDATE), which Python signals
# would miss. Totals are in cents so that SQLite, which stores decimals as
# floats, adds exactly. Client.objects.with_order_totals() reads them; the
# admin sorts by them through their indexes.

from django.core import checks
from django.db import connections

#: An order's amount in cents, in SQL: the one place the conversion is written.
CENTS = "CAST(ROUND({}.amount * 100) AS BIGINT)"

RECOUNT = f"""
UPDATE crm_clienttotals SET
  order_count = (SELECT COUNT(*) FROM crm_order o
                  WHERE o.client_id = crm_clienttotals.client_id),
  total_cents = (SELECT COALESCE(SUM({CENTS.format("o")}), 0) FROM crm_order o
                  WHERE o.client_id = crm_clienttotals.client_id)
"""

BACKFILL = f"""
INSERT INTO crm_clienttotals (client_id, order_count, total_cents)
SELECT c.id, COUNT(o.id), COALESCE(SUM({CENTS.format("o")}), 0)
FROM crm_client c LEFT JOIN crm_order o ON o.client_id = c.id
WHERE NOT EXISTS (SELECT 1 FROM crm_clienttotals t WHERE t.client_id = c.id)
GROUP BY c.id
"""

# Rows whose totals disagree with the orders (or that have no totals row).
DRIFT = f"""
SELECT c.id FROM crm_client c
LEFT JOIN crm_clienttotals t ON t.client_id = c.id
LEFT JOIN (SELECT client_id, COUNT(*) AS n, SUM({CENTS.format("o")}) AS cents
             FROM crm_order o GROUP BY client_id) d ON d.client_id = c.id
WHERE t.client_id IS NULL
   OR t.order_count <> COALESCE(d.n, 0)
   OR t.total_cents <> COALESCE(d.cents, 0)
ORDER BY c.id
"""


def _sqlite_add(sign, row):
    return f"""
    UPDATE crm_clienttotals
       SET order_count = order_count {sign} 1,
           total_cents = total_cents {sign} {CENTS.format(row)}
     WHERE client_id = {row}.client_id;"""


SQLITE_TRIGGERS = {
    "crm_totals_client_insert": """
CREATE TRIGGER crm_totals_client_insert AFTER INSERT ON crm_client BEGIN
    INSERT INTO crm_clienttotals (client_id, order_count, total_cents)
    VALUES (NEW.id, 0, 0);
END""",
    "crm_totals_client_delete": """
CREATE TRIGGER crm_totals_client_delete AFTER DELETE ON crm_client BEGIN
    DELETE FROM crm_clienttotals WHERE client_id = OLD.id;
END""",
    "crm_totals_order_insert": f"""
CREATE TRIGGER crm_totals_order_insert AFTER INSERT ON crm_order BEGIN
{_sqlite_add("+", "NEW")}
END""",
    "crm_totals_order_delete": f"""
CREATE TRIGGER crm_totals_order_delete AFTER DELETE ON crm_order BEGIN
{_sqlite_add("-", "OLD")}
END""",
    "crm_totals_order_update": f"""
CREATE TRIGGER crm_totals_order_update AFTER UPDATE OF client_id, amount ON crm_order
WHEN OLD.client_id IS NOT NEW.client_id OR OLD.amount IS NOT NEW.amount BEGIN
{_sqlite_add("-", "OLD")}
{_sqlite_add("+", "NEW")}
END""",
}


def _postgresql_apply(rows, alias, sign=""):
    """Add (or subtract) each client's count and cents of a transition table."""
    return f"""
        UPDATE crm_clienttotals t
           SET order_count = t.order_count {sign or "+"} d.n,
               total_cents = t.total_cents {sign or "+"} d.cents
          FROM (SELECT client_id, COUNT(*) AS n, SUM({CENTS.format(alias)}) AS cents
                  FROM {rows} {alias} GROUP BY client_id) d
         WHERE t.client_id = d.client_id;"""


# Statement-level triggers with transition tables: a bulk write updates each
# affected client once instead of once per order.
POSTGRESQL_FUNCTIONS = (
    """
CREATE FUNCTION crm_totals_client_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO crm_clienttotals (client_id, order_count, total_cents)
        SELECT id, 0, 0 FROM new_rows;
    ELSE
        DELETE FROM crm_clienttotals WHERE client_id IN (SELECT id FROM old_rows);
    END IF;
    RETURN NULL;
END $$""",
    f"""
CREATE FUNCTION crm_totals_order_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_postgresql_apply("new_rows", "n")}
    ELSIF TG_OP = 'DELETE' THEN
        {_postgresql_apply("old_rows", "o", "-")}
    ELSE
        -- An update counts as the old row leaving and the new one arriving,
        -- for the rows whose client or amount changed.
        {
        _postgresql_apply(
            "(SELECT o.* FROM old_rows o JOIN new_rows n USING (id)"
            " WHERE (o.client_id, o.amount) IS DISTINCT FROM"
            " (n.client_id, n.amount))",
            "o",
            "-",
        )
    }
        {
        _postgresql_apply(
            "(SELECT n.* FROM new_rows n JOIN old_rows o USING (id)"
            " WHERE (o.client_id, o.amount) IS DISTINCT FROM"
            " (n.client_id, n.amount))",
            "n",
        )
    }
    END IF;
    RETURN NULL;
END $$""",
)
TRANSITION_TABLES = {
    "INSERT": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}
POSTGRESQL_TRIGGERS = {
    f"crm_totals_{table}_{event.lower()}": (
        f"CREATE TRIGGER crm_totals_{table}_{event.lower()} AFTER {event} "
        f"ON crm_{table} REFERENCING {TRANSITION_TABLES[event]} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION crm_totals_{table}_change()"
    )
    for table, events in (
        ("order", TRANSITION_TABLES),
        ("client", ("INSERT", "DELETE")),
    )
    for event in events
}
TRIGGER_NAMES = tuple(SQLITE_TRIGGERS)
#: The trigger a bulk load may turn off (then calling ``add_orders_to_totals``).
ORDER_INSERT_TRIGGER = "crm_totals_order_insert"


def install_triggers(schema_editor):
    """Create the triggers and fill crm_clienttotals for the existing clients."""
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        statements = SQLITE_TRIGGERS.values()
    elif vendor == "postgresql":
        statements = (*POSTGRESQL_FUNCTIONS, *POSTGRESQL_TRIGGERS.values())
    else:
        raise NotImplementedError(f"crm_clienttotals has no triggers for {vendor}.")
    schema_editor.execute(BACKFILL, params=None)
    for sql in statements:
        schema_editor.execute(sql, params=None)


def drop_triggers(schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        statements = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGER_NAMES]
    else:
        statements = [
            "DROP FUNCTION IF EXISTS crm_totals_order_change() CASCADE",
            "DROP FUNCTION IF EXISTS crm_totals_client_change() CASCADE",
        ]
    for sql in statements:
        schema_editor.execute(sql, params=None)


def installed_triggers(connection):
    """Return the names of the totals triggers the database has."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN"
        else:
            sql = (
                "SELECT DISTINCT trigger_name FROM information_schema.triggers "
                "WHERE event_object_schema = current_schema() AND trigger_name IN"
            )
        cursor.execute(
            f"{sql} ({', '.join(['%s'] * len(TRIGGER_NAMES))})", TRIGGER_NAMES
        )
        return {name for (name,) in cursor.fetchall()}


def missing_triggers(connection):
    return sorted(set(TRIGGER_NAMES) - installed_triggers(connection))


def drifted_clients(connection):
    """Return the ids of clients whose totals disagree with their orders."""
    with connection.cursor() as cursor:
        cursor.execute(DRIFT)
        return [pk for (pk,) in cursor.fetchall()]


def recount_totals(connection, *, first_order_id=None):
    """Recount totals from the orders; return how many clients were recounted.

    With ``first_order_id``, only the clients that have an order from that id
    on (what a bulk insert of orders touched).
    """
    sql = RECOUNT
    params = []
    if first_order_id is not None:
        sql += " WHERE client_id IN (SELECT client_id FROM crm_order WHERE id >= %s)"
        params.append(first_order_id)
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL)
        cursor.execute(sql, params)
        return cursor.rowcount


def add_orders_to_totals(connection, *, first_order_id):
    """Add the orders from ``first_order_id`` on to their clients' totals.

    What the PostgreSQL insert trigger does for the rows of one statement, for
    orders inserted while it was disabled (a bulk load), in one statement.
    """
    sql = _postgresql_apply("(SELECT * FROM crm_order WHERE id >= %s)", "n")
    with connection.cursor() as cursor:
        cursor.execute(sql, [first_order_id])
        return cursor.rowcount


@checks.register(checks.Tags.database)
def check_triggers(app_configs=None, databases=None, **kwargs):
    """Warn when a database lacks the triggers that keep the totals exact."""
    warnings = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor not in ("sqlite", "postgresql"):
            continue
        tables = connection.introspection.table_names()
        if "crm_clienttotals" not in tables:
            continue  # not migrated yet
        missing = missing_triggers(connection)
        if missing:
            warnings.append(
                checks.Warning(
                    f"The {alias} database lacks the order totals triggers "
                    f"{', '.join(missing)}: client totals will drift.",
                    hint="Re-create them (a SQLite migration that rebuilt "
                    "crm_client or crm_order drops them), then run "
                    "'manage.py recount_totals'.",
                    id="crm.W001",
                )
            )
    return warnings
