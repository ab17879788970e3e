"""Shared fixtures for the Mini CRM tests."""

import io
import os
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from crm.models import Client, Order
from crm_site.celery import app as celery_app

from .helpers import sales_team_group


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.CRM_IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    settings.CRM_PRIVATE_FILES_DIR = tmp_path / "private"


@pytest.fixture(autouse=True)
def _tasks_run_here():
    # In-process tests run tasks eagerly even where a broker is configured (CI
    # sets REDIS_URL); test_worker.py starts a real worker instead.
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.fixture(autouse=True)
def _private_cache(settings):
    # In-process tests never touch a shared Redis (clear() would flush it), and
    # cached client lists must not outlive the test database they came from.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    cache.clear()


@pytest.fixture
def sales_team(db):
    """Return the "Sales team" group (made by a migration; again after a flush)."""
    return sales_team_group()


@pytest.fixture
def user(django_user_model, sales_team):
    """Return a team member: in the Sales team group, not staff."""
    user = django_user_model.objects.create_user("sam", "sam@acme.io", "pw-for-tests-1")
    user.groups.add(sales_team)
    return user


@pytest.fixture
def nobody(django_user_model):
    """Return a logged-in-able user without any permission."""
    return django_user_model.objects.create_user(
        "nobody", "nobody@acme.io", "pw-for-tests-2"
    )


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def make_client():
    counter = iter(range(1, 10**6))

    def make(**fields):
        n = next(counter)
        fields.setdefault("name", f"Client {n}")
        fields.setdefault("email", f"client{n}@mail.test")
        return Client.objects.create(**fields)

    return make


@pytest.fixture
def make_order():
    def make(client, amount="10.00", status=Order.Status.NEW, title="Order"):
        return Order.objects.create(
            client=client, amount=Decimal(amount), status=status, title=title
        )

    return make


def image_upload(name="avatar.png", size=(10, 10), fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # CI sets CRM_REQUIRE_SERVICES=1 where PostgreSQL and Redis run: a test
    # skipped for want of them is then a failure, not a quiet skip.
    report = yield
    if (
        report.skipped
        and os.environ.get("CRM_REQUIRE_SERVICES") == "1"
        and any(name in str(report.longrepr) for name in ("DATABASE_URL", "REDIS_URL"))
    ):
        report.outcome = "failed"
        report.longrepr = f"{report.longrepr} (CRM_REQUIRE_SERVICES=1 needs it)"
    return report
