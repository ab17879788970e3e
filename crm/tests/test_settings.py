import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.utils import get_random_secret_key

from crm.models import Client, Order

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production_mode():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=get_random_secret_key(),
        DJANGO_ALLOWED_HOSTS="crm.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_mode_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="x.org")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_demo_fixture_covers_every_status_a_vip_and_a_client_without_orders():
    call_command("loaddata", "demo", verbosity=0)
    assert Client.objects.count() >= 5
    assert Client.objects.filter(vip=True).exists()
    assert Client.objects.with_order_totals().filter(order_count=0).exists()
    statuses = set(Order.objects.values_list("status", flat=True))
    assert statuses == set(Order.Status.values)
    assert not Client.objects.filter(created_at__isnull=True).exists()


@pytest.mark.django_db
def test_bootstrap_dev_loads_demo_once_and_prints_the_login(capsys, settings):
    settings.DEBUG = True
    call_command("bootstrap_dev")
    first = capsys.readouterr().out
    assert "Loaded the demo" in first and "password '" in first
    count = Client.objects.count()
    call_command("bootstrap_dev")
    second = capsys.readouterr().out
    assert "Loaded" not in second and "changepassword admin" in second
    assert Client.objects.count() == count


SITE_IMPORTS = """
import sys
import django
django.setup()
from django.test import Client
import crm_site.wsgi
for url in ("/health/", "/admin/login/", "/accounts/login/"):
    response = Client(HTTP_HOST="localhost").get(url)
    assert response.status_code == 200, (url, response.status_code)
print(sorted(name for name in sys.modules if name.startswith("crm.perf")))
"""


def test_the_running_site_never_imports_the_development_tooling():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="crm_site.settings", DATABASE_URL="sqlite://")
    result = subprocess.run(
        [sys.executable, "-c", SITE_IMPORTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "crm.perf" not in result.stdout


def test_production_requirements_leave_out_the_test_tools():
    runtime = (ROOT / "requirements.txt").read_text().lower()
    dev = (ROOT / "requirements-dev.txt").read_text().lower()
    for tool in ("pytest==", "playwright==", "ruff=="):
        assert tool not in runtime
        assert tool in dev
    assert "-r requirements.txt" in dev


LOCKOUT_SETTINGS = (
    "from django.conf import settings; "
    "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())"
)


def test_login_lockout_defaults_to_10_failures_and_15_minutes():
    result = run_manage("shell", "-c", LOCKOUT_SETTINGS)
    assert result.stdout.split()[-2:] == ["10", "900.0"]


def test_login_lockout_limit_and_wait_come_from_the_environment():
    result = run_manage(
        "shell",
        "-c",
        LOCKOUT_SETTINGS,
        CRM_LOGIN_FAILURE_LIMIT="5",
        CRM_LOGIN_COOLOFF_MINUTES="60",
    )
    assert result.stdout.split()[-2:] == ["5", "3600.0"]


def test_a_sqlite_file_lets_pages_read_while_an_import_writes(tmp_path):
    db = tmp_path / "site.sqlite3"
    url = f"sqlite:///{db}"
    assert run_manage("migrate", "-v0", DATABASE_URL=url).returncode == 0
    writer = sqlite3.connect(db)
    writer.execute("BEGIN IMMEDIATE")
    writer.executemany(
        "INSERT INTO crm_client"
        " (name, email, phone, avatar, vip, created_at, updated_at)"
        " VALUES (?, ?, '', '', 0, '2026-01-01', '2026-01-01')",
        [(f"C{i}", f"c{i}@x.io") for i in range(50_000)],
    )
    try:
        code = "from crm.models import Client; print(Client.objects.count())"
        result = run_manage("shell", "-c", code, DATABASE_URL=url)
        assert result.stdout.split()[-1:] == ["0"], result.stderr
    finally:
        writer.rollback()
        writer.close()
