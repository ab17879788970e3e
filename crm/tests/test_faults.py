"""A dependency that is away costs speed or a feature, never a page (in-process).

Redis here is a port nobody listens on; the broker likewise. The tests that
stop and start real services are in ``test_outages.py``.
"""

import logging
import socket
from unittest import mock

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.urls import reverse
from kombu.exceptions import OperationalError as KombuOperationalError

from crm import cache as resilient
from crm import jobs
from crm.admin.spreadsheets import UPLOAD_GONE
from crm.models import Client, Job
from crm.tasks import run_job
from crm.tests.helpers import messages_of

pytestmark = pytest.mark.django_db

LIST = reverse("clients:list")


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fresh_outage(monkeypatch):
    outage = resilient._Outage()
    monkeypatch.setattr(resilient, "outage", outage)
    yield resilient
    outage.down = False  # stops its watcher


def redis_away_caches():
    return {
        "default": {
            "BACKEND": "crm.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.fixture
def redis_away(settings, fresh_outage):
    settings.CACHES = redis_away_caches()
    settings.IMPORT_EXPORT_TMP_STORAGE_CLASS = (
        "crm.spreadsheets.storage.SharedCacheStorage"
    )
    return fresh_outage


@pytest.fixture
def broker_away():
    conf = run_job.app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager = False
    conf.broker_url = f"redis://127.0.0.1:{closed_port()}/0"
    run_job.app._pool = None
    yield
    conf.task_always_eager, conf.broker_url = saved
    run_job.app._pool = None


def test_with_redis_away_the_pages_read_the_database(
    redis_away, logged_in, make_client, caplog
):
    make_client(name="Zoë Ward", email="zoe@mail.test")
    caplog.set_level(logging.WARNING, logger="crm.cache")

    for _ in range(3):
        assert "Zoë Ward" in logged_in.get(LIST).content.decode()
    assert "Zoë Ward" in logged_in.get(LIST, {"q": "zoë"}).content.decode()
    assert logged_in.get(reverse("clients:export")).status_code == 200

    records = caplog.get_records("setup") + caplog.get_records("call")
    warnings = [r for r in records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once per request


def test_with_redis_away_saves_succeed_and_show(redis_away, logged_in, make_client):
    client = make_client(name="Old Name", email="old@mail.test")
    logged_in.get(LIST)

    response = logged_in.post(
        reverse("clients:edit", args=(client.pk,)),
        {"name": "New Name", "email": "old@mail.test", "phone": ""},
    )

    assert response.status_code == 302
    assert Client.objects.get().name == "New Name"
    page = logged_in.get(LIST).content.decode()
    assert "New Name" in page and "Old Name" not in page


def test_with_redis_away_the_admin_and_logins_work(redis_away, client, admin_user):
    assert client.login(username="admin", password="password")
    assert client.get(reverse("admin:crm_client_changelist")).status_code == 200
    assert client.get(reverse("admin:crm_order_changelist")).status_code == 200


def test_with_redis_away_an_upload_is_refused_with_the_reason(redis_away, admin_client):
    file = SimpleUploadedFile("c.csv", b"name,email\r\nAnn,ann@mail.test\r\n")
    response = admin_client.post(
        reverse("admin:crm_client_import"), {"import_file": file, "format": 0}
    )

    assert response.status_code == 200
    assert "Imports are unavailable right now" in response.content.decode()
    assert not Client.objects.exists()


def test_with_redis_away_a_waiting_upload_must_be_uploaded_again(
    settings, admin_client, fresh_outage
):
    settings.IMPORT_EXPORT_TMP_STORAGE_CLASS = (
        "crm.spreadsheets.storage.SharedCacheStorage"
    )
    file = SimpleUploadedFile("c.csv", b"name,email\r\nAnn,ann@mail.test\r\n")
    preview = admin_client.post(
        reverse("admin:crm_client_import"), {"import_file": file, "format": 0}
    )
    form = preview.context["confirm_form"].initial
    settings.CACHES = redis_away_caches()  # Redis goes away before the confirm

    response = admin_client.post(reverse("admin:crm_client_process_import"), form)

    assert ("error", UPLOAD_GONE) in messages_of(response)
    assert not Client.objects.exists()


def test_health_names_a_cache_that_is_away_but_stays_200(redis_away, client):
    response = client.get("/health/")

    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith("ok, degraded: cache\n")
    assert "database: ok\n" in body
    assert "cache: unavailable" in body
    assert client.get("/health/", {"strict": "1"}).status_code == 503


def test_health_lists_each_dependency(client):
    response = client.get("/health/")

    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0] == "ok"
    assert [line.split(":")[0] for line in lines[1:]] == ["database", "cache", "broker"]


def test_a_cache_that_comes_back_drops_what_was_cached_before(
    settings, fresh_outage, logged_in, make_client
):
    # The invalidation of a save made while Redis was away never reached it:
    # when Redis answers again, nothing cached before the outage is served.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    client = make_client(name="Old Name", email="old@mail.test")
    assert "Old Name" in logged_in.get(LIST).content.decode()
    Client.objects.filter(pk=client.pk).update(name="New Name")  # no invalidation
    assert "Old Name" in logged_in.get(LIST).content.decode()  # cached

    fresh_outage.cache_reconnected.send(sender=None)

    assert "New Name" in logged_in.get(LIST).content.decode()


def test_a_cache_back_after_an_outage_is_announced_once(
    settings, fresh_outage, monkeypatch
):
    settings.CACHES = {
        "default": {
            "BACKEND": "crm.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    monkeypatch.setattr(fresh_outage, "RETRY_AFTER", 0)
    heard = []
    fresh_outage.cache_reconnected.connect(
        lambda **kwargs: heard.append(kwargs), weak=False, dispatch_uid="t"
    )
    try:
        assert cache.get("k", "miss") == "miss"
        with mock.patch("redis.Redis.execute_command", return_value=None):
            cache.get("k")  # Redis answers again
            cache.set("k", 1)
            cache.get("k")
    finally:
        fresh_outage.cache_reconnected.disconnect(dispatch_uid="t")
    assert len(heard) == 1


def big_file():
    rows = "".join(f"P {n},p{n}@mail.test\r\n" for n in range(20))
    return SimpleUploadedFile("big.csv", ("name,email\r\n" + rows).encode())


def test_with_the_broker_away_a_big_import_starts_nothing(
    broker_away, settings, admin_client
):
    settings.CRM_IMPORT_JOB_ROWS = 5
    response = admin_client.post(
        reverse("admin:crm_client_import"), {"import_file": big_file(), "format": 0}
    )

    assert ("error", jobs.QUEUE_AWAY) in messages_of(response)
    assert not Job.objects.exists()
    assert not any(jobs.files_dir().iterdir())


def test_with_the_broker_away_a_confirm_leaves_the_preview_waiting(
    broker_away, admin_client, admin_user
):
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        model_name="client",
        user=admin_user,
        state=Job.State.PREVIEWED,
        phase=Job.Phase.PREVIEW,
    )
    response = admin_client.post(reverse("admin:crm_job_confirm", args=(job.pk,)))

    assert ("error", jobs.QUEUE_AWAY) in messages_of(response)
    job.refresh_from_db()
    assert (job.state, job.phase) == ("previewed", "preview")


@pytest.mark.django_db(transaction=True)
def test_a_broker_lost_between_check_and_send_undoes_the_start(
    settings, admin_client, monkeypatch
):
    settings.CRM_IMPORT_JOB_ROWS = 5
    monkeypatch.setattr(jobs, "queue_available", lambda: True)
    monkeypatch.setattr(
        run_job, "delay", mock.Mock(side_effect=KombuOperationalError("gone"))
    )
    response = admin_client.post(
        reverse("admin:crm_client_import"), {"import_file": big_file(), "format": 0}
    )

    assert ("error", jobs.QUEUE_AWAY) in messages_of(response)
    assert not Job.objects.exists()
    assert not any(jobs.files_dir().iterdir())


def test_a_database_that_is_away_is_a_503_that_says_so(client, settings):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    client.raise_request_exception = False
    with mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.cursor",
        side_effect=OperationalError("connection refused"),
    ):
        response = client.get(LIST)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "The database is unavailable right now" in response.content.decode()


def test_other_errors_stay_a_500(client, settings):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    client.raise_request_exception = False
    with mock.patch("crm.views.client_list_page", side_effect=ValueError("bug")):
        response = client.get(LIST)

    assert response.status_code == 500


def test_with_redis_away_api_throttling_fails_open(redis_away, client, settings):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    settings.CRM_API_THROTTLE_ANON = "2/min"

    codes = [client.get("/api/clients/").status_code for _ in range(4)]

    assert codes == [200] * 4  # not counted while Redis is away, and no 500
