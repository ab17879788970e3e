"""Measure import, export, changelist and merge against baselines in one run."""

import csv
import gc
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.utils import load_backend
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import include, path
from django.utils import timezone
from import_export import resources
from import_export.formats.base_formats import CSV

from .exports import HEADER
from .generate import generate_data
from .models import Client, Order, is_vip_email
from .resources import ClientResource
from .services import client_merge

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sizes:
    clients: int
    orders: int
    import_rows: int
    baseline_import_rows: int
    requests: int


def sizes(clients=None, orders=None, quick=False):
    """Return the sizes of a run: the defaults, --quick, or what was asked."""
    clients = clients or (300 if quick else 100_000)
    orders = orders if orders is not None else clients * 10
    return Sizes(
        clients=clients,
        orders=orders,
        import_rows=clients,
        # The library's default import is sampled at the file's midpoint.
        baseline_import_rows=min(clients, 100 if quick else 5_000),
        requests=3 if quick else 9,
    )


class StockClientAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "created_at")


class DefaultClientResource(resources.ModelResource):
    """import-export with its default options, keyed by email."""

    class Meta:
        model = Client
        fields = ("name", "email", "phone")
        import_id_fields = ("email",)


stock_site = admin.AdminSite(name="stock_admin")
stock_site.register(Client, StockClientAdmin)


class BenchmarkUrls:
    """The project's URLs plus a stock admin for Client."""

    urlpatterns = [
        path("stock-admin/", stock_site.urls),
        path("", include(settings.ROOT_URLCONF)),
    ]


@contextmanager
def throwaway_database():
    """Point the default connection at a new SQLite file; delete it afterwards.

    The user's connection object is put aside unopened and restored, so their
    database is never connected to, let alone written.
    """
    directory = tempfile.mkdtemp(prefix="crm-benchmark-")
    db_path = Path(directory) / "benchmark.sqlite3"
    db_settings = connections.configure_settings(
        {
            DEFAULT_DB_ALIAS: {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(db_path),
                "CONN_MAX_AGE": None,
            }
        }
    )[DEFAULT_DB_ALIAS]
    users_connection = connections[DEFAULT_DB_ALIAS]
    throwaway = load_backend(db_settings["ENGINE"]).DatabaseWrapper(
        db_settings, DEFAULT_DB_ALIAS
    )
    connections[DEFAULT_DB_ALIAS] = throwaway
    ContentType.objects.clear_cache()
    try:
        with override_settings(
            DEBUG=False,  # no query log growing through a million-row run
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=BenchmarkUrls,
            CACHES={
                "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
            },
            STORAGES={
                **settings.STORAGES,
                "staticfiles": {
                    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
                },
            },
        ):
            call_command("migrate", verbosity=0, interactive=False)
            yield db_path
    finally:
        throwaway.close()
        connections[DEFAULT_DB_ALIAS] = users_connection
        ContentType.objects.clear_cache()
        shutil.rmtree(directory, ignore_errors=True)


def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE / 2**20


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


# Import -------------------------------------------------------------------


def client_csv(count, seed=11):
    """Return a client CSV like a spreadsheet user's: mixed-case emails, VIPs."""
    rng = random.Random(seed)
    lines = ["name,email,phone"]
    for number in range(count):
        domain = "company.com" if rng.random() < 0.05 else "mail.test"
        email = f"Person.{number}@{domain}"
        if rng.random() < 0.5:
            email = email.upper()
        phone = f"+1 555 {rng.randrange(10**7):07d}"
        lines.append(f"Person {number} Ünal,{email},{phone}")
    return "\r\n".join(lines) + "\r\n"


def import_with(resource, text):
    dataset = CSV(encoding="utf-8-sig").create_dataset(text)
    result = resource.import_data(dataset, dry_run=False)
    if result.has_errors() or result.has_validation_errors():
        raise RuntimeError(f"{type(resource).__name__} import failed")
    return len(dataset)


def import_raw_sqlite(db_path, text):
    """Insert the same rows with sqlite3.executemany in one transaction."""
    now = timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = [
        (name, email.lower(), phone, "", is_vip_email(email), now, now)
        for name, email, phone in csv.reader(text.splitlines()[1:])
    ]
    raw = sqlite3.connect(db_path, isolation_level=None)
    try:
        raw.execute("BEGIN")
        raw.executemany(
            "INSERT INTO crm_client (name, email, phone, avatar, vip, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        raw.execute("COMMIT")
    finally:
        raw.close()
    return len(rows)


def delete_all_clients():
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_client")


def measure_import(db_path, size, say):
    text = client_csv(size.import_rows)
    header, *lines = text.split("\r\n")
    say(f"import: {size.import_rows:,} rows with ClientResource")
    ours, rows = timed(import_with, ClientResource(), text)
    assert Client.objects.count() == rows == size.import_rows
    delete_all_clients()
    # The library's default finds each row's client with its own query, which
    # scans the table (the unique index is on Lower(email)), so its cost per row
    # grows with the table. Importing the whole file that way would take many
    # minutes; a sample taken at the file's midpoint, into a table already
    # holding the rows before it, costs what the whole file costs on average.
    sample = size.baseline_import_rows
    before = (size.import_rows - sample) // 2
    import_raw_sqlite(db_path, "\r\n".join([header, *lines[:before]]))
    sample_text = "\r\n".join([header, *lines[before : before + sample]])
    say(f"import: {sample:,} rows with the library's defaults, after {before:,}")
    default, default_rows = timed(import_with, DefaultClientResource(), sample_text)
    delete_all_clients()
    say(f"import: {size.import_rows:,} rows with sqlite3.executemany")
    raw, raw_rows = timed(import_raw_sqlite, db_path, text)
    delete_all_clients()
    ours_rate = rows / ours
    return {
        "import.rows": rows,
        "import.rows_per_s": ours_rate,
        "import.import_export_default_rows": default_rows,
        "import.import_export_default_rows_per_s": default_rows / default,
        "import.speedup_vs_import_export_default": ours_rate / (default_rows / default),
        "import.raw_sqlite_rows_per_s": raw_rows / raw,
        "import.slowdown_vs_raw_sqlite": (raw_rows / raw) / ours_rate,
    }


# Changelist ---------------------------------------------------------------


def superuser_client():
    user = get_user_model().objects.create_superuser("bench", "bench@mail.test", None)
    http = HttpClient()
    http.force_login(user)
    return user, http


def total_column_param(user):
    """Return the ?o= value that sorts our ClientAdmin by total, descending."""
    request = RequestFactory().get("/admin/crm/client/")
    request.user = user
    changelist = admin.site._registry[Client].get_changelist_instance(request)
    return f"-{changelist.list_display.index('total_amount')}"


def median_ms(http, url, params, repeats):
    http.get(url, params)  # warm caches and compiled templates
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = http.get(url, params)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    return statistics.median(times) * 1000


def queries_of(http, url, params):
    with CaptureQueriesContext(connection) as context:
        http.get(url, params)
    return len(context)


def measure_changelist(size, say):
    user, http = superuser_client()
    ours_url, stock_url = "/admin/crm/client/", "/stock-admin/crm/client/"
    sort = {"o": total_column_param(user)}
    say(f"changelist: {size.requests} requests each, page 1")
    stock = median_ms(http, stock_url, {}, size.requests)
    ours = median_ms(http, ours_url, {}, size.requests)
    ours_sorted = median_ms(http, ours_url, sort, size.requests)
    return {
        "changelist.stock_ms": stock,
        "changelist.ms": ours,
        "changelist.sorted_ms": ours_sorted,
        "changelist.stock_queries": queries_of(http, stock_url, {}),
        "changelist.queries": queries_of(http, ours_url, {}),
        "changelist.sorted_queries": queries_of(http, ours_url, sort),
        "changelist.ratio_vs_stock_admin": ours / stock,
        "changelist.sorted_ratio_vs_stock_admin": ours_sorted / stock,
    }


# Merge --------------------------------------------------------------------


def merge_queries(user, orders):
    survivor = Client.objects.create(name="Keep", email=f"keep{orders}@mail.test")
    other = Client.objects.create(name="Gone", email=f"gone{orders}@mail.test")
    Order.objects.bulk_create(
        (Order(client=other, title="o", amount=Decimal("1.00")) for _ in range(orders)),
        batch_size=1000,
    )
    with CaptureQueriesContext(connection) as context:
        started = time.perf_counter()
        result = client_merge(survivor=survivor, others=[other], user=user)
        seconds = time.perf_counter() - started
    assert result.orders_moved == orders
    return len(context), seconds


def measure_merge(size, say):
    say("merge: 10 and 10,000 orders")
    user = get_user_model().objects.get(username="bench")
    merge_queries(user, 1)  # warm the content type cache that LogEntry uses
    few, _ = merge_queries(user, 10)
    many, seconds = merge_queries(user, 10_000)
    return {
        "merge.queries_10_orders": few,
        "merge.queries_10k_orders": many,
        "merge.seconds_10k_orders": seconds,
    }


# Export -------------------------------------------------------------------


def export_through_view(http):
    """Stream /clients/export.csv; return (rows, seconds, peak RSS growth MB)."""
    gc.collect()
    before = peak = rss_mb()
    started = time.perf_counter()
    response = http.get("/clients/export.csv")
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        peak = max(peak, rss_mb())
    seconds = time.perf_counter() - started
    response.close()
    return lines - 1, seconds, peak - before


class _Discard:
    def write(self, value):
        return len(value)


def export_raw_csv():
    """csv.writer over a raw cursor running the export's own SQL."""
    queryset = Client.objects.search("").with_order_totals()
    sql, params = queryset.values_list(*HEADER).query.sql_with_params()
    writer = csv.writer(_Discard())
    started = time.perf_counter()
    rows = 0
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(2000):
            writer.writerows(batch)
            rows += len(batch)
    return rows, time.perf_counter() - started


def measure_export(size, say):
    http = HttpClient()
    http.force_login(get_user_model().objects.get(username="bench"))
    say(f"export: {Client.objects.count():,} clients through /clients/export.csv")
    rows, seconds, growth = export_through_view(http)
    raw_rows, raw_seconds = export_raw_csv()
    if rows != raw_rows:
        raise RuntimeError(f"the export wrote {rows} rows of {raw_rows}")
    extra = size.clients * 9
    say(f"export: adding {extra:,} clients for the 10x run")
    generate_data(extra, 0, seed=2)
    rows_10x, _, growth_10x = export_through_view(http)
    return {
        "export.rows": rows,
        "export.rows_per_s": rows / seconds,
        "export.raw_csv_rows_per_s": raw_rows / raw_seconds,
        "export.fraction_of_raw_csv": (rows / seconds) / (raw_rows / raw_seconds),
        "export.rss_growth_mb": growth,
        "export.rows_10x": rows_10x,
        "export.rss_growth_mb_10x": growth_10x,
    }


def run(clients=None, orders=None, quick=False, say=print):
    """Run every measurement on a throwaway database; return {name: value}."""
    size = sizes(clients, orders, quick)
    results = {"benchmark.clients": size.clients, "benchmark.orders": size.orders}
    started = time.perf_counter()
    with throwaway_database() as db_path:
        results.update(measure_import(db_path, size, say))
        say(f"data: {size.clients:,} clients, {size.orders:,} orders")
        generate_data(size.clients, size.orders, seed=1)
        results.update(measure_changelist(size, say))
        results.update(measure_merge(size, say))
        results.update(measure_export(size, say))
    results["benchmark.seconds"] = time.perf_counter() - started
    return results


def format_results(results):
    """Return ``name: value`` lines, integers as such and ratios to 3 digits."""
    lines = []
    for name, value in results.items():
        if isinstance(value, int):
            lines.append(f"{name}: {value}")
        else:
            lines.append(
                f"{name}: {value:.3f}" if value < 100 else f"{name}: {value:.0f}"
            )
    return "\n".join(lines)
