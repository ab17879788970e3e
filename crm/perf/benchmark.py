"""Measure import, export, changelist and merge against baselines in one run."""

import csv
import gc
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.apps.registry import Apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.utils import load_backend
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import include, path
from django.utils import timezone
from import_export import resources
from import_export.formats.base_formats import CSV

from crm_site.celery import app as celery_app

from .. import jobs
from ..models import Client, Job, Order
from ..rules import is_vip_email
from ..services import client_merge
from ..spreadsheets.columns import CLIENT_COLUMNS
from ..spreadsheets.resources import ClientResource, CrmResource
from .generate import generate_data

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sizes:
    clients: int
    orders: int
    import_rows: int
    baseline_import_rows: int
    refuse_rows: int
    job_rows: int
    requests: int


def sizes(clients=None, orders=None, quick=False, job_rows=None):
    """Return the sizes of a run: the defaults, --quick, or what was asked."""
    clients = clients or (300 if quick else 100_000)
    orders = orders if orders is not None else clients * 10
    return Sizes(
        clients=clients,
        orders=orders,
        import_rows=clients,
        # The library's default costs the same per row at any size on the
        # stock schema (its lookup is indexed): a sample of the file will do.
        baseline_import_rows=min(clients, 100 if quick else 20_000),
        refuse_rows=3_000 if quick else 300_000,
        job_rows=job_rows or (2_000 if quick else 1_000_000),
        requests=3 if quick else 9,
    )


class StockClientAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "created_at")


STOCK_APPS = Apps()


class StockClient(models.Model):
    """A client table as Django builds it by default: the baseline's schema."""

    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    phone = models.CharField(max_length=15, blank=True)

    class Meta:
        apps = STOCK_APPS
        app_label = "benchmark"
        db_table = "benchmark_stock_client"

    def __str__(self):
        return self.email

    def __reduce__(self):
        # The library deep-copies rows; Django would look the model up in the
        # project's apps, where this stand-alone model is not.
        return (_new_stock_client, (), super().__reduce__()[2])


def _new_stock_client():
    return StockClient.__new__(StockClient)


class DefaultClientResource(resources.ModelResource):
    """import-export with its default options, keyed by email, on a stock table."""

    class Meta:
        model = StockClient
        fields = ("name", "email", "phone")
        import_id_fields = ("email",)


class StockOrderAdmin(admin.ModelAdmin):
    list_display = ("title", "client", "amount", "status", "created_at")
    search_fields = ("title", "client__name", "client__email")


stock_site = admin.AdminSite(name="stock_admin")
stock_site.register(Client, StockClientAdmin)
stock_site.register(Order, StockOrderAdmin)


class BenchmarkUrls:
    """The project's URLs plus a stock admin for Client."""

    urlpatterns = [
        path("stock-admin/", stock_site.urls),
        path("", include(settings.ROOT_URLCONF)),
    ]


@contextmanager
def throwaway_database(database=None):
    """Point the default connection at a new database; delete it afterwards.

    A new SQLite file, or with ``database`` (Django settings of a PostgreSQL
    database) a new database on that server, created and dropped here. The
    user's connection object is put aside unopened and restored, so their
    database is never connected to, let alone written.
    """
    directory = tempfile.mkdtemp(prefix="crm-benchmark-")
    db_path = Path(directory) / "benchmark.sqlite3"
    if database is None:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db_path)}
    db_settings = connections.configure_settings(
        {DEFAULT_DB_ALIAS: {**database, "CONN_MAX_AGE": None}}
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
            CRM_IMPORT_UPLOAD_DIR=Path(directory) / "uploads",
            CRM_PRIVATE_FILES_DIR=Path(directory) / "private",
            IMPORT_EXPORT_TMP_STORAGE_CLASS="crm.spreadsheets.storage.FolderStorage",
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


@contextmanager
def postgresql_database(url):
    """Create a new database on the server of ``url``; drop it afterwards.

    Yield its Django settings. The database named in ``url`` (or, if it does
    not exist, the server's ``postgres`` database) is only connected to
    (autocommit) to run ``CREATE DATABASE`` and ``DROP DATABASE`` for the new
    one, whose name is random: nothing in it is read or written.
    """
    import dj_database_url
    import psycopg

    database = dj_database_url.parse(url)
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError("--database-url must be a postgres:// URL.")
    name = f"crm_benchmark_{secrets.token_hex(4)}"
    params = {
        "dbname": database["NAME"] or "postgres",
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
    }
    params = {key: value for key, value in params.items() if value}
    try:
        psycopg.connect(**params, autocommit=True).close()
    except psycopg.OperationalError:
        params["dbname"] = "postgres"  # the named one may not exist: the server's own
    with psycopg.connect(**params, autocommit=True) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**database, "NAME": name}
    finally:
        with psycopg.connect(**params, autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def import_with_library_default(text):
    dataset = CSV(encoding="utf-8-sig").create_dataset(text)
    result = DefaultClientResource().import_data(dataset, dry_run=False)
    if result.has_errors() or result.has_validation_errors():
        raise RuntimeError("the library default's import failed")
    return len(dataset)


def import_ours(text, dry_run=False):
    dataset = ClientResource.read_csv(text.encode("utf-8"))
    result = ClientResource().import_data(dataset, dry_run=dry_run)
    if result.has_errors() or result.has_validation_errors():
        raise RuntimeError("ClientResource's import failed")
    return len(dataset)


def import_bare(text):
    """Check every row with the model's rules and write it with its history.

    ``full_clean()``, the create rules, and ``ClientResource``'s batched
    INSERT and history rows in one transaction, and nothing else: no lookup of
    existing clients, no duplicate check, no preview, no result per row. What
    any import that checks and records each row must do: a ceiling for ours.
    """
    exclude = list(ClientResource.clean_exclude)
    clients = []
    for name, email, phone in csv.reader(text.splitlines()[1:]):
        client = Client(name=name, email=email, phone=phone)
        client.full_clean(
            exclude=exclude, validate_unique=False, validate_constraints=False
        )
        client.apply_create_rules()
        clients.append(client)
    resource = ClientResource()
    with transaction.atomic():
        resource._execute_inserts(clients)
        resource._write_history(clients, "+")
    return len(clients)


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
        cursor.execute(f"DELETE FROM {Client.history.model._meta.db_table}")
        cursor.execute("DELETE FROM crm_importrecord")


@contextmanager
def history_off():
    """Import without writing history rows: the baseline of their cost."""
    write = CrmResource._write_history
    CrmResource._write_history = lambda self, instances, history_type: None
    try:
        yield
    finally:
        CrmResource._write_history = write


def measure_history(size, say):
    """The import with its history rows against the same import without them."""
    text = client_csv(size.import_rows, seed=14)
    say(f"history: {size.import_rows:,} rows imported without, then with history")
    with history_off():
        without, rows = timed(import_ours, text)
    delete_all_clients()
    with_history, _ = timed(import_ours, text)
    written = Client.history.model.objects.count()
    delete_all_clients()
    if written != rows:
        raise RuntimeError(f"the import wrote {written} history rows for {rows}")
    return {
        "history.import_rows": rows,
        "history.import_seconds_without": without,
        "history.import_seconds_with": with_history,
        "history.import_ratio": with_history / without,
    }


def measure_import(db_path, size, say):
    text = client_csv(size.import_rows)
    header, *lines = text.split("\r\n")
    say(f"import: {size.import_rows:,} rows with ClientResource")
    ours, rows = timed(import_ours, text)
    assert Client.objects.count() == rows == size.import_rows
    delete_all_clients()
    sample = size.baseline_import_rows
    say(f"import: {sample:,} rows with the library's defaults on a stock schema")
    with connection.schema_editor() as editor:
        editor.create_model(StockClient)
    sample_text = "\r\n".join([header, *lines[:sample]])
    default, default_rows = timed(import_with_library_default, sample_text)
    with connection.schema_editor() as editor:
        editor.delete_model(StockClient)
    say(f"import: {size.import_rows:,} rows checked and written, nothing else")
    bare, bare_rows = timed(import_bare, text)
    delete_all_clients()
    say(f"import: {size.import_rows:,} rows with sqlite3.executemany")
    raw, raw_rows = timed(import_raw_sqlite, db_path, text)
    delete_all_clients()
    ours_rate = rows / ours
    return {
        "import.rows": rows,
        "import.rows_per_s": ours_rate,
        "import.library_default_rows": default_rows,
        "import.library_default_rows_per_s": default_rows / default,
        "import.speedup_vs_library_default": ours_rate / (default_rows / default),
        "import.bare_rows_per_s": bare_rows / bare,
        "import.bare_speedup_vs_library_default": (bare_rows / bare)
        / (default_rows / default),
        "import.fraction_of_bare": ours_rate / (bare_rows / bare),
        "import.raw_sqlite_rows_per_s": raw_rows / raw,
        "import.slowdown_vs_raw_sqlite": (raw_rows / raw) / ours_rate,
    }


class PeakRss:
    """Sample this process's resident memory in a thread; keep the peak."""

    def __enter__(self):
        gc.collect()
        self.before = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self):
        return self.peak - self.before


def upload_to_admin(http, text, name="clients.csv"):
    """Post a file to the admin's client import page (the preview, or a job)."""
    upload = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    return http.post("/admin/crm/client/import/", {"import_file": upload, "format": 0})


def measure_preview(size, say):
    """The admin's import preview of a big file, and the refusal of one."""
    _user, http = superuser_client()
    text = client_csv(size.import_rows, seed=12)
    say(f"preview: {size.import_rows:,}-row file through the admin")
    # The in-page preview (a file this big would otherwise go to a job: the
    # job lines measure that).
    with (
        override_settings(CRM_IMPORT_JOB_ROWS=size.import_rows + 1),
        PeakRss() as memory,
    ):
        seconds, response = timed(upload_to_admin, http, text)
    if "confirm_form" not in getattr(response, "context_data", {}):
        raise RuntimeError("the preview offered no confirm")
    refused = "foo,bar\r\n" + "1,2\r\n" * size.refuse_rows
    say(f"refuse: {size.refuse_rows:,}-row file without an email column")
    refuse_seconds, refusal = timed(upload_to_admin, http, refused)
    # A big file is refused with a message on the import page, a small one by
    # its form; either way no job starts and nothing is imported.
    refused_by_form = refusal.status_code == 200 and "no email column" in str(
        refusal.context_data["form"].errors
    )
    refused_by_message = refusal.status_code == 302 and not Job.objects.exists()
    if not (refused_by_form or refused_by_message):
        raise RuntimeError("the file was not refused by its header")
    return {
        "preview.rows": size.import_rows,
        "preview.seconds": seconds,
        "preview.page_kb": len(response.content) / 1024,
        "preview.rss_growth_mb": memory.growth,
        "refuse.rows": size.refuse_rows,
        "refuse.seconds": refuse_seconds,
    }


def compact():
    """Empty the client table and give its space back, so runs start alike."""
    delete_all_clients()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")


def measure_job(size, say):
    """A big import as a background job, against the same import in-process.

    Both preview the file (a dry run) and then import it, each on a freshly
    compacted table. The job's phases run in this process, as its worker would
    run them, so their time and memory are the worker's.
    """
    _user, http = superuser_client()
    rows = size.job_rows
    text = client_csv(rows, seed=13)
    say(f"job: {rows:,} rows previewed and imported in-process")
    preview_here, _ = timed(import_ours, text, dry_run=True)
    import_here, _ = timed(import_ours, text)
    compact()
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    # The request only queues the job, to an in-memory broker.
    conf.task_always_eager, conf.broker_url = False, "memory://"
    try:
        say(f"job: uploading a {rows:,}-row file")
        with override_settings(CRM_IMPORT_JOB_ROWS=min(rows - 1, 5000)):
            request_seconds, response = timed(upload_to_admin, http, text, "big.csv")
        job = Job.objects.get()
        if response.status_code != 302 or job.state != Job.State.QUEUED:
            raise RuntimeError("the upload did not start a job")
        say("job: its preview and its import, as the worker runs them")
        with PeakRss() as memory:
            preview_seconds, _ = timed(jobs.run, job.pk)
            jobs.confirm_import(job)
            import_seconds, _ = timed(jobs.run, job.pk)
    finally:
        conf.task_always_eager, conf.broker_url = saved
    job.refresh_from_db()
    if job.state != Job.State.DONE:
        raise RuntimeError(f"the job failed: {job.error}")
    compact()
    return {
        "job.rows": rows,
        "job.request_seconds": request_seconds,
        "job.preview_seconds": preview_seconds,
        "job.import_seconds": import_seconds,
        "job.in_process_seconds": preview_here + import_here,
        "job.ratio_vs_in_process": (preview_seconds + import_seconds)
        / (preview_here + import_here),
        "job.worker_rss_growth_mb": memory.growth,
        "job.progress_reports": job.result["progress_reports"],
        "job.largest_progress_step_percent": 100 * job.result["largest_progress_step"],
    }


# Changelist ---------------------------------------------------------------


def superuser_client():
    User = get_user_model()
    user = User.objects.filter(username="bench").first()
    user = user or User.objects.create_superuser("bench", "bench@mail.test", None)
    http = HttpClient()
    http.force_login(user)
    return user, http


def total_column_param(user):
    """Return the ?o= value that sorts our ClientAdmin by total, descending."""
    request = RequestFactory().get("/admin/crm/client/")
    request.user = user
    changelist = admin.site._registry[Client].get_changelist_instance(request)
    return f"-{changelist.list_display.index('total_amount')}"


def median_ms(http, url, params, repeats, before=None):
    http.get(url, params)  # warm caches and compiled templates
    times = []
    for _ in range(repeats):
        if before:
            before()
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


# Possible duplicates --------------------------------------------------------


def measure_duplicates(size, say, changelist_ms):
    """The "possible duplicates" page, each kind, against the client list."""
    _user, http = superuser_client()
    url = "/admin/crm/client/duplicates/"
    say(f"duplicates: {size.requests} requests per kind")
    results = {}
    for kind in ("email_key", "phone_key", "name_key"):
        name = kind.removesuffix("_key")
        results[f"duplicates.{name}_ms"] = median_ms(
            http, url, {"kind": kind}, size.requests
        )
        results[f"duplicates.{name}_queries"] = queries_of(http, url, {"kind": kind})
    slowest = max(v for k, v in results.items() if k.endswith("_ms"))
    results["duplicates.page_ms"] = slowest
    results["duplicates.ratio_vs_changelist"] = slowest / changelist_ms
    return results


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


def measure_merge(say):
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


def stream(request):
    """Make a request for a streamed file and read it all.

    Return (rows, seconds, peak RSS growth MB), from the request to the last byte.
    """
    lines = 0
    with PeakRss() as memory:
        started = time.perf_counter()
        response = request()
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
    response.close()
    return lines - 1, seconds, memory.growth


def public_export(http):
    return stream(lambda: http.get("/clients/export.csv"))


ADMIN_EXPORT = "/admin/crm/client/export/"


def admin_export(http):
    """Post the admin's export form for every column, as its page does."""
    form = http.get(ADMIN_EXPORT).context_data["form"]
    data = {
        name: "on"
        for name in form.fields
        if name not in ("format", "resource", "export_items")
    }
    data.update(format=0, resource=0)
    return stream(lambda: http.post(ADMIN_EXPORT, data))


class _Discard:
    def write(self, value):
        return len(value)


def export_raw_csv():
    """csv.writer over a raw cursor running the export's own SQL."""
    queryset = Client.objects.search("").with_order_totals()
    lookups = [column.lookup for column in CLIENT_COLUMNS]
    sql, params = queryset.values_list(*lookups).query.sql_with_params()
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
    results = {}
    count = Client.objects.count()
    for name, export in (("export", public_export), ("export.admin", admin_export)):
        say(f"{name}: {count:,} clients")
        rows, seconds, growth = export(http)
        raw_rows, raw_seconds = export_raw_csv()
        if rows != raw_rows:
            raise RuntimeError(f"{name} wrote {rows} rows of {raw_rows}")
        results.update(
            {
                f"{name}.rows": rows,
                f"{name}.rows_per_s": rows / seconds,
                f"{name}.raw_csv_rows_per_s": raw_rows / raw_seconds,
                f"{name}.fraction_of_raw_csv": (rows / seconds)
                / (raw_rows / raw_seconds),
                f"{name}.rss_growth_mb": growth,
            }
        )
    extra = size.clients * 9
    say(f"export: adding {extra:,} clients for the 10x runs")
    generate_data(extra, 0, seed=2)
    for name, export in (("export", public_export), ("export.admin", admin_export)):
        rows, _seconds, growth = export(http)
        results[f"{name}.rows_10x"] = rows
        results[f"{name}.rss_growth_mb_10x"] = growth
    return results


def run(clients=None, orders=None, quick=False, job_rows=None, say=print):
    """Run every measurement on a throwaway database; return {name: value}."""
    size = sizes(clients, orders, quick, job_rows)
    results = {"benchmark.clients": size.clients, "benchmark.orders": size.orders}
    started = time.perf_counter()
    with throwaway_database() as db_path:
        results.update(measure_import(db_path, size, say))
        results.update(measure_history(size, say))
        results.update(measure_preview(size, say))
        results.update(measure_job(size, say))
        say(f"data: {size.clients:,} clients, {size.orders:,} orders")
        generate_data(size.clients, size.orders, seed=1)
        results.update(measure_changelist(size, say))
        results.update(measure_duplicates(size, say, results["changelist.ms"]))
        results.update(measure_merge(say))
        results.update(measure_export(size, say))
    results["benchmark.seconds"] = time.perf_counter() - started
    return results


# PostgreSQL ---------------------------------------------------------------

#: Search terms: one no client has, one in a few thousand emails (2,556 clients
#: and 26,252 orders at a million), one in about an eighth of all emails.
SEARCH_TERMS = {"rare": "zzqx", "medium": "alice.m", "common": "gmail"}


def measure_search(size, say):
    """Admin client, public client and admin order searches, per kind of term."""
    _user, http = superuser_client()
    results = {}
    pages = (
        ("search.admin", "/admin/crm/client/"),
        ("search.public", "/clients/"),
        ("search.orders_admin", "/admin/crm/order/"),
    )
    for name, url in pages:
        times = []
        for kind, term in SEARCH_TERMS.items():
            say(f"{name}: ?q={term} ({kind}), {size.requests} requests")
            # The public list caches its pages: every request counts here.
            ms = median_ms(http, url, {"q": term}, size.requests, before=cache.clear)
            results[f"{name}_{kind}_ms"] = ms
            times.append(ms)
        results[f"{name}_ms"] = max(times)
    return results


def measure_order_changelist(size, say):
    _user, http = superuser_client()
    say(f"changelist.orders: {size.requests} requests each, page 1")
    stock = median_ms(http, "/stock-admin/crm/order/", {}, size.requests)
    ours = median_ms(http, "/admin/crm/order/", {}, size.requests)
    return {
        "changelist.orders_stock_ms": stock,
        "changelist.orders_ms": ours,
        "changelist.orders_ratio_vs_stock_admin": ours / stock,
    }


def run_postgresql(url, clients=None, orders=None, quick=False, say=print):
    """Changelists and searches on a throwaway PostgreSQL database of ``url``."""
    clients = clients or (300 if quick else 1_000_000)
    orders = orders if orders is not None else clients * 10
    size = sizes(clients, orders, quick)
    results = {"benchmark.clients": clients, "benchmark.orders": orders}
    started = time.perf_counter()
    with postgresql_database(url) as database, throwaway_database(database):
        say(f"data: {clients:,} clients, {orders:,} orders (generate_data)")
        seconds, _ = timed(generate_data, clients, orders, seed=1)
        results["generate.seconds"] = seconds
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # what autovacuum would do soon
        results.update(measure_changelist(size, say))
        results.update(measure_order_changelist(size, say))
        results.update(measure_search(size, say))
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
