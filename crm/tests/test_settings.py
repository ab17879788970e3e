import os
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
