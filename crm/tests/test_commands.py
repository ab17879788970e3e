import io
import os
import re
import subprocess
import sys
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from import_export.formats.base_formats import CSV

from crm.models import Client, Order
from crm.rules import is_blocked_email

pytestmark = pytest.mark.django_db


def generate(*args):
    out = StringIO()
    call_command("generate_data", *args, stdout=out)
    return out.getvalue()


def test_generate_data_creates_realistic_clients_and_orders():
    out = generate("--clients", "200", "--orders", "1500", "--seed", "7")
    assert "Generated 200 clients and 1,500 orders" in out
    assert Client.objects.count() == 200
    assert Order.objects.count() == 1500
    emails = list(Client.objects.values_list("email", flat=True))
    assert len(set(emails)) == 200
    assert all(email == email.lower() and email.isascii() for email in emails)
    assert not any(is_blocked_email(email) for email in emails)
    vips = Client.objects.filter(vip=True)
    assert vips.exists()
    assert all(c.email.endswith("@company.com") for c in vips)
    assert not Client.objects.filter(vip=False, email__endswith="@company.com").exists()
    statuses = set(Order.objects.values_list("status", flat=True))
    assert statuses == set(Order.Status.values)


def test_generated_rows_pass_model_validation():
    generate("--clients", "30", "--orders", "60", "--seed", "1")
    for client in Client.objects.all():
        client.full_clean()
    for order in Order.objects.all()[:20]:
        order.full_clean()


def test_generated_dates_spread_over_two_years_and_follow_the_client():
    generate("--clients", "300", "--orders", "900", "--seed", "2")
    dates = sorted(Client.objects.values_list("created_at", flat=True))
    assert (dates[-1] - dates[0]).days > 365
    late = Order.objects.select_related("client")
    assert all(order.created_at >= order.client.created_at for order in late)


def test_generate_data_is_repeatable_with_a_seed_and_adds_to_existing_data():
    generate("--clients", "20", "--orders", "40", "--seed", "5")
    first = list(Client.objects.order_by("pk").values_list("name", "phone"))
    generate("--clients", "20", "--orders", "40", "--seed", "5")
    second = list(Client.objects.order_by("pk").values_list("name", "phone"))[20:]
    assert first == second
    assert Client.objects.count() == 40  # emails stayed unique


def test_generate_data_skips_blocked_domains(settings):
    settings.CRM_BLOCKED_EMAIL_DOMAINS = ["gmail.com", "company.com"]
    generate("--clients", "200", "--orders", "0", "--seed", "3")
    domains = {e.split("@")[1] for e in Client.objects.values_list("email", flat=True)}
    assert not domains & {"gmail.com", "company.com"}
    assert not Client.objects.filter(vip=True).exists()


def test_generate_data_shows_progress_on_long_runs(monkeypatch):
    monkeypatch.setattr("crm.management.commands.generate_data.PROGRESS_EVERY", 10)
    monkeypatch.setattr("crm.perf.generate.BATCH", 10)
    out = generate("--clients", "30", "--orders", "20")
    assert re.search(r"clients: 10/30", out)
    assert re.search(r"orders: 20/20", out)


def test_generate_data_refuses_orders_without_clients():
    with pytest.raises(CommandError, match="clients"):
        generate("--clients", "0", "--orders", "5")
    with pytest.raises(CommandError):
        generate("--clients", "-1")


def test_settings_default_blocked_domain_is_never_generated():
    assert "example.com" in settings.CRM_BLOCKED_EMAIL_DOMAINS
    generate("--clients", "300", "--orders", "0", "--seed", "9")
    assert not Client.objects.filter(email__endswith="@example.com").exists()


LINE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+: -?\d+(\.\d+)?$")


REQUIRED = (
    "import.rows_per_s",
    "import.speedup_vs_library_default",
    "import.slowdown_vs_raw_sqlite",
    "preview.page_kb",
    "preview.rss_growth_mb",
    "refuse.seconds",
    "export.rows_per_s",
    "export.fraction_of_raw_csv",
    "export.rss_growth_mb",
    "export.rss_growth_mb_10x",
    "export.admin.fraction_of_raw_csv",
    "export.admin.rss_growth_mb",
    "export.admin.rss_growth_mb_10x",
    "changelist.queries",
    "changelist.ratio_vs_stock_admin",
    "changelist.sorted_ratio_vs_stock_admin",
    "merge.queries_10k_orders",
    "merge.queries_10_orders",
    "history.import_ratio",
    "duplicates.page_ms",
    "duplicates.ratio_vs_changelist",
)


def result_block(output):
    block = output.split("\n\n")[-1].strip().splitlines()
    assert block, output
    for line in block:
        assert LINE.match(line), line
    return dict(line.split(": ") for line in block)


def test_quick_benchmark_prints_every_figure_and_leaves_the_database_alone(
    make_client, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mine = make_client(name="Mine")
    out = StringIO()
    call_command("benchmark", "--quick", stdout=out)
    results = result_block(out.getvalue())
    assert set(REQUIRED) <= set(results)
    assert results["merge.queries_10_orders"] == results["merge.queries_10k_orders"]
    assert int(results["changelist.queries"]) == int(
        results["changelist.sorted_queries"]
    )
    # The test database (standing in for the user's) saw none of it.
    assert list(Client.objects.all()) == [mine]
    assert list(tmp_path.iterdir()) == []  # the throwaway database is gone


def test_benchmark_never_opens_the_configured_database(tmp_path):
    users_db = tmp_path / "users.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{users_db}",
        "TMPDIR": str(tmp_path),
        # A site that sends small files to jobs: the in-page preview is still measured.
        "CRM_IMPORT_JOB_ROWS": "5",
    }
    env.pop("REDIS_URL", None)
    finished = subprocess.run(
        [sys.executable, "manage.py", "benchmark", "--quick"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert set(REQUIRED) <= set(result_block(finished.stdout))
    assert not users_db.exists()  # SQLite creates the file on first connect
    assert [p.name for p in Path(tmp_path).iterdir()] == []


def dataset(text):
    """Read CSV text the way the admin does (BOM-aware decoding)."""
    return CSV(encoding="utf-8-sig").create_dataset(text.encode("utf-8"))


def test_import_command_line_uses_the_client_resource(tmp_path, make_client):
    make_client(name="Old", email="user@mail.com")
    path = tmp_path / "clients.csv"
    path.write_bytes(
        "\ufeffname,email\r\nNew,USER@mail.com\r\nAnn,ann@mail.test\r\n".encode()
    )
    call_command(
        "import",
        "crm.spreadsheets.resources.ClientResource",
        str(path),
        "--no-input",
        stderr=io.StringIO(),
    )
    assert sorted(Client.objects.values_list("name", flat=True)) == ["Ann", "New"]


def test_import_command_line_refuses_a_bad_file(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text("name,email\nAnn,ann@mail.test\nBad,bad@example.com\n")
    stderr = io.StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "import",
            "crm.spreadsheets.resources.ClientResource",
            str(path),
            "--no-input",
            stderr=stderr,
        )
    assert "example.com are not accepted" in stderr.getvalue()
    assert Client.objects.count() == 0


def test_export_command_line_escapes_cells(make_client, capsysbinary):
    make_client(name="=cmd()", email="x@mail.test")
    call_command("export", "CSV", "crm.spreadsheets.resources.ClientResource")
    out = capsysbinary.readouterr().out.decode()
    assert "'=cmd()" in out
    assert "x@mail.test" in out


def test_import_clients_command_prints_counts(tmp_path, make_client):
    make_client(email="old@mail.test")
    path = tmp_path / "big.csv"
    path.write_bytes(
        b"\xef\xbb\xbfname,email\r\nOld,old@mail.test\r\nNew,new@mail.test\r\n"
    )
    out = io.StringIO()
    call_command("import_clients", str(path), stdout=out)
    assert "1 new, 1 updated" in out.getvalue()
    assert Client.objects.count() == 2


def test_import_clients_command_lists_row_errors_and_imports_nothing(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,email\nAnn,ann@mail.test\n,nobody@mail.test\n")
    with pytest.raises(Exception, match="row 2: name: This field cannot be blank"):
        call_command("import_clients", str(path), stdout=io.StringIO())
    assert Client.objects.count() == 0


def test_import_clients_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("name,email\nAnn,ann@mail.test\n")
    out = io.StringIO()
    call_command("import_clients", str(path), "--dry-run", stdout=out)
    assert "1 new" in out.getvalue()
    assert Client.objects.count() == 0


def test_import_command_explains_unreadable_files(tmp_path):
    from django.core.management import CommandError, call_command

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("name,email\r\nJosé,jose@mail.test\r\n".encode("latin-1"))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("name,email\r\nA,a@mail.test,extra\r\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for path, reason in (
        (latin1, "not UTF-8"),
        (ragged, "row 1: This row has 3 cells but the header has 2 columns"),
        (empty, "empty"),
        (tmp_path / "missing.csv", "Cannot read"),
    ):
        with pytest.raises(CommandError, match=reason):
            call_command("import_clients", str(path))
    assert not Client.objects.exists()


def test_benchmark_refuses_a_database_url_that_is_not_postgresql():
    with pytest.raises(CommandError, match="postgres://"):
        call_command("benchmark", "--database-url", "sqlite:///x.sqlite3", "--quick")


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the PostgreSQL benchmark needs a server (set DATABASE_URL)",
)
def test_benchmark_on_postgresql_uses_a_database_it_creates_and_drops(make_client):
    import psycopg

    url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)

    def benchmark_databases():
        server_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(server_url) as server:
            rows = server.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'crm_benchmark_%'"
            ).fetchall()
        return set(rows)

    before = benchmark_databases()
    mine = make_client(name="Mine")
    out = StringIO()
    call_command("benchmark", "--database-url", url, "--quick", stdout=out)
    results = result_block(out.getvalue())
    for name in (
        "generate.seconds",
        "changelist.ratio_vs_stock_admin",
        "changelist.orders_ms",
        "changelist.orders_ratio_vs_stock_admin",
        "search.admin_ms",
        "search.public_ms",
        "search.orders_admin_ms",
    ):
        assert name in results
    assert list(Client.objects.all()) == [mine]
    assert benchmark_databases() <= before  # its own database was dropped
