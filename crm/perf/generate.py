"""Synthetic clients and orders for development and benchmarks, inserted in bulk."""

import random
import unicodedata
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Max
from django.utils import timezone

from ..caching import invalidate_client_list
from ..history import record_history
from ..models import Client, Order
from ..rules import is_blocked_email
from ..totals import ORDER_INSERT_TRIGGER, add_orders_to_totals, recount_totals

FIRST_NAMES = (
    "Alice Bob Chloé Daniel Emma Farid Grace Hugo Inès Jonas Karin Léa Marco Nadia "
    "Olga Pablo Quentin Rosa Sven Tariq Ursula Victor Wen Xavier Yuki Zoë Amara "
    "Björn Carmen Dmitri Elif Fatima Giulia Hamid Ingrid José Kwame Lucía Malik"
).split()
LAST_NAMES = (
    "Martin Chen Dubois Müller Rossi Novak García Kowalski Silva Nguyen Okafor "
    "Schmidt Jensen Moreau Ivanova Tanaka Haddad Costa Larsen Fischer O'Brien "
    "Petrov Lindqvist Yilmaz Santos Kim Bauer Ferreira Dupont Andersen"
).split()
DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "fastmail.com",
    "acme.io",
    "globex.net",
    "initech.org",
    "example.com",  # blocked by default: left out by allowed_domains()
)
VIP_DOMAIN_SHARE = 0.05
PRODUCTS = (
    "Website redesign",
    "Annual support",
    "Consulting day",
    "Hosting plan",
    "Training session",
    "Audit",
    "License renewal",
    "Data migration",
)
STATUSES = tuple(Order.Status.values)
STATUS_WEIGHTS = (2, 1, 7)  # most orders are done, some are open
SPAN = timedelta(days=730)
#: The order values the generator makes in the types the database stores.
RAW_ORDER_VALUES = frozenset({"client_id", "title", "amount", "status", "created_at"})
BATCH = 10_000
SQLITE_CACHE_KIB = 512 * 1024


def allowed_domains():
    """Return the ordinary domains that no blocked-domain rule rejects."""
    return [d for d in DOMAINS if not is_blocked_email(f"x@{d}")]


def vip_domain():
    """Return the first configured VIP domain that is not also blocked."""
    for domain in settings.CRM_VIP_EMAIL_DOMAINS:
        if not is_blocked_email(f"x@{domain}"):
            return domain.lower()
    return None


def _insert(model, rows, *, raw=frozenset()):
    """Insert ``rows`` (dicts of attribute values): one statement per batch.

    The columns are the model's own, each value prepared by its field (so an
    email is stored as the model stores it); a field a row leaves out gets its
    default, so adding a field to a model never breaks the generator. On
    PostgreSQL the batch goes in with ``COPY`` (psycopg 3's ``cursor.copy``),
    elsewhere with a multi-row ``executemany``. On PostgreSQL the attributes
    named in ``raw`` go as they are (psycopg adapts ints, strings, decimals and
    aware datetimes itself): the orders' columns, where preparing each value
    cost more than writing it.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields}
    # The wrapper itself, not the thread-local proxy: looked up once per value.
    wrapper = connections[connection.alias]
    table = wrapper.ops.quote_name(model._meta.db_table)
    columns = ", ".join(wrapper.ops.quote_name(f.column) for f in fields)
    if wrapper.vendor != "postgresql":
        raw = frozenset()
    prepare = [
        (
            f.attname,
            defaults[f.attname],
            (lambda value, _: value) if f.attname in raw else f.get_db_prep_save,
        )
        for f in fields
    ]
    params = (
        [save(row.get(name, default), wrapper) for name, default, save in prepare]
        for row in rows
    )
    with wrapper.cursor() as cursor:
        if wrapper.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for values in params:
                    copy.write_row(values)
            return
        placeholders = ", ".join(["%s"] * len(fields))
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(params)
        )


@contextmanager
def _big_cache():
    """Give SQLite room to keep the growing indexes in memory until commit."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = {-SQLITE_CACHE_KIB:d}")
        try:
            yield
        finally:
            cursor.execute(f"PRAGMA cache_size = {int(previous):d}")


@contextmanager
def _order_totals_trigger_off():
    """Drop SQLite's per-order totals trigger inside the current transaction.

    Updating a client's totals row once per inserted order is most of the cost
    of a million-order insert; the caller recounts the totals once instead.
    DDL is transactional in SQLite: other connections never see the trigger
    missing, and a failure rolls it back with the rows. PostgreSQL's triggers
    are per statement already (and ALTER TABLE would refuse while deferred
    foreign-key checks are pending), so there it stays on.
    """
    if connection.vendor != "sqlite":
        yield
        return
    name = ORDER_INSERT_TRIGGER
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s",
            [name],
        )
        (create_sql,) = cursor.fetchone()
        cursor.execute(f"DROP TRIGGER {name}")
    yield
    with connection.cursor() as cursor:
        cursor.execute(create_sql)


#: On PostgreSQL, from this many new rows on a table's indexes and foreign keys
#: are dropped during the load and built again at the end (see ``_bulk_load``).
BULK_LOAD_ROWS = 200_000
#: Memory for PostgreSQL to build each index at the end of a bulk load.
BULK_INDEX_MEMORY = "256MB"


def _catalog(sql, table):
    with connection.cursor() as cursor:
        cursor.execute(sql, [table])
        return cursor.fetchall()


@contextmanager
def _bulk_load(model, rows, *, triggers=()):
    """Load ``rows`` rows into ``model``'s table the way ``pg_restore`` does.

    On PostgreSQL, for a big load, inside the caller's transaction: drop the
    table's secondary indexes (unique ones too: they are built, and so
    checked, again at the end) and its foreign keys, and disable ``triggers``;
    afterwards create each again from its own definition (``pg_get_indexdef``,
    ``pg_get_constraintdef``) and re-enable the triggers. Building an index
    once is many times faster than updating it row by row, and a foreign key
    is checked by one join instead of one lookup per row. The caller does what
    the disabled triggers would have done. The table is locked (ACCESS
    EXCLUSIVE) until the transaction ends: a tool for development and
    benchmark databases. Yields whether it took the bulk path.
    """
    if connection.vendor != "postgresql" or rows < BULK_LOAD_ROWS:
        yield False
        return
    table = model._meta.db_table
    quoted = connection.ops.quote_name(table)
    indexes = _catalog(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "WHERE c.conindid = i.indexrelid)",
        table,
    )
    foreign_keys = _catalog(
        "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f'",
        table,
    )
    with connection.cursor() as cursor:
        # ALTER TABLE refuses while checks of rows written earlier in this
        # transaction are pending: run them now. Django's constraints are all
        # DEFERRABLE INITIALLY DEFERRED, which the second statement restores.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for name, _definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {quoted} DROP CONSTRAINT {name}")
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {name}")
        for name in triggers:
            cursor.execute(f"ALTER TABLE {quoted} DISABLE TRIGGER {name}")
    yield True
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = %s", [BULK_INDEX_MEMORY])
        for _name, definition in indexes:
            cursor.execute(definition)
        for name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {quoted} ADD CONSTRAINT {name} {definition}")
        for name in triggers:
            cursor.execute(f"ALTER TABLE {quoted} ENABLE TRIGGER {name}")
        cursor.execute(f"ANALYZE {quoted}")


def _ascii(text):
    """Return ``text`` without accents or apostrophes, as email local parts need."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c != "'")


def _when(rng, now, not_before=None):
    start = now - SPAN if not_before is None else not_before
    seconds = max((now - start).total_seconds(), 0)
    return start + timedelta(seconds=rng.random() * seconds)


def generate_data(clients, orders, *, seed=None, progress=None):
    """Insert ``clients`` new clients and ``orders`` orders spread over them.

    Rows go in with raw multi-row ``executemany`` batches: ``bulk_create``
    would overwrite the spread-out ``created_at`` values with "now"
    (``auto_now_add``). Emails are unique and never at a blocked domain; each
    client gets the rules of a new client (``apply_create_rules``: VIP).
    Returns ``(clients, orders)``.
    """
    if orders and not clients and not Client.objects.exists():
        raise ValueError("Orders need clients: pass --clients too.")
    rng = random.Random(seed)
    now = timezone.now()
    report = progress or (lambda label, done, total: None)

    with transaction.atomic(), _big_cache():
        # Numbering after the highest id keeps emails unique on a filled table.
        start = (Client.objects.aggregate(n=Max("pk"))["n"] or 0) + 1
        with _bulk_load(Client, clients):
            _insert_clients(rng, now, start, clients, report)
        ids = list(
            Client.objects.filter(pk__gte=start if clients else 0)
            .order_by("pk")
            .values_list("pk", "created_at")
        )
        if clients:
            # Their first history rows, in one statement.
            record_history(Client.objects.filter(pk__gte=start), history_type="+")
        if orders:
            last = Order.objects.aggregate(n=Max("pk"))["n"] or 0
            with (
                _order_totals_trigger_off(),
                _bulk_load(Order, orders, triggers=[ORDER_INSERT_TRIGGER]) as bulk,
            ):
                _insert_orders(rng, now, ids, orders, report)
            if connection.vendor == "sqlite":
                recount_totals(connection, first_order_id=last + 1)
            elif bulk:
                # What the disabled trigger would have done, in one statement.
                add_orders_to_totals(connection, first_order_id=last + 1)
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE crm_clienttotals")
            record_history(Order.objects.filter(pk__gt=last), history_type="+")
    invalidate_client_list()
    return clients, orders


def _insert_clients(rng, now, start, count, report):
    domains = allowed_domains()
    vip = vip_domain()
    made = []
    for number in range(start, start + count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if vip and rng.random() < VIP_DOMAIN_SHARE:
            domain = vip
        else:
            domain = rng.choice(domains)
        local = _ascii(f"{first}.{last}".lower())
        phone = f"+1 555 {rng.randrange(10**7):07d}" if rng.random() < 0.7 else ""
        created = _when(rng, now)
        client = Client(
            name=f"{first} {last}",
            email=f"{local}.{number}@{domain}",
            phone=phone,
            created_at=created,
            updated_at=created,
        )
        client.apply_create_rules()
        client.refresh_keys()
        made.append(vars(client))
        if len(made) == BATCH:
            _insert(Client, made)
            made.clear()
            report("clients", number - start + 1, count)
    if made:
        _insert(Client, made)
        report("clients", count, count)


def _insert_orders(rng, now, clients, count, report):
    # A long tail: most clients have a few orders, some have many, some none.
    weights = [rng.paretovariate(2.5) for _ in clients]
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    rows = []
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        picks = rng.choices(clients, cum_weights=cumulative, k=size)
        statuses = rng.choices(STATUSES, weights=STATUS_WEIGHTS, k=size)
        if done == 0:
            statuses[: len(STATUSES)] = STATUSES[:size]  # every status shows up
        for (client_id, client_created), status in zip(picks, statuses, strict=True):
            rows.append(
                {
                    "client_id": client_id,
                    "amount": Decimal(rng.randrange(500, 500_000)) / 100,
                    "title": f"{rng.choice(PRODUCTS)} #{rng.randrange(1, 10_000)}",
                    "status": status,
                    "created_at": _when(rng, now, not_before=client_created),
                }
            )
        _insert(Order, rows, raw=RAW_ORDER_VALUES)
        rows.clear()
        done += size
        report("orders", done, count)
