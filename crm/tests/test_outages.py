"""Real services stopped and started under a running server: nothing fails after.

Each test runs its own throwaway Redis and PostgreSQL (crm/perf/throwaway.py),
never the machine's shared ones; they run where CI provides PostgreSQL and
Redis (DATABASE_URL, REDIS_URL) and the server binaries that come with them.
"""

import os
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

import pytest

from crm.perf.throwaway import Services, available
from crm.tests.test_production import Server, manage, production_env

REASON = available()
pytestmark = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL", "").startswith("postgres"))
    or not os.environ.get("REDIS_URL")
    or bool(REASON),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL, with their server "
    f"binaries to run throwaway copies {REASON}",
)


def status_of(server, path):
    try:
        with server.get(path) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def shell(env, code):
    manage(env, "shell", "-c", code)


RENAME = (
    "from crm.models import Client; c = Client.objects.get(); c.name = 'New'; c.save()"
)


def test_after_a_postgresql_restart_no_request_fails(tmp_path):
    with Services(redis=False) as services:
        env = production_env(
            tmp_path,
            CRM_PUBLIC_LOGIN_REQUIRED="0",
            DJANGO_SECURE_SSL_REDIRECT="0",
            DATABASE_URL=services.postgres.url,
            DJANGO_CONN_MAX_AGE="600",  # persistent connections, one per thread
            GUNICORN_THREADS="4",
        )
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        shell(
            env,
            "from crm.models import Client; Client(name='Ann', email='a@x.io').save()",
        )
        server = Server(env)
        try:
            with ThreadPoolExecutor(8) as pool:  # every server thread connects
                before = list(
                    pool.map(lambda _: status_of(server, "/clients/"), range(40))
                )
            assert [status for status, _ in before] == [200] * 40

            services.postgres.stop()
            status, body = status_of(server, "/health/")
            assert status == 503 and body.startswith("database unavailable")

            services.postgres.start()
            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(lambda _: status_of(server, "/clients/"), range(40))
                )
        finally:
            server.stop()
    assert [status for status, _ in answers] == [200] * 40
    assert all("Ann" in body for _, body in answers)


def test_redis_away_costs_no_page_and_its_return_serves_no_stale_list(tmp_path):
    with Services(postgres=False) as services:
        env = production_env(
            tmp_path,
            CRM_PUBLIC_LOGIN_REQUIRED="0",
            DJANGO_SECURE_SSL_REDIRECT="0",
            REDIS_URL=services.redis.url,
        )
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        shell(
            env,
            "from crm.models import Client; Client(name='Old', email='o@x.io').save()",
        )
        server = Server(env)
        try:
            assert "Old" in status_of(server, "/clients/")[1]  # now cached
            services.redis.save()  # Redis will come back with this page
            services.redis.stop()

            during = [
                status_of(server, path) for path in ("/clients/", "/clients/?q=ol")
            ]
            health = status_of(server, "/health/")
            # Saved while Redis is away: the list's invalidation cannot reach it.
            shell(env, RENAME)
            renamed = status_of(server, "/clients/")

            services.redis.start()
            time.sleep(3)  # the server's watcher notices Redis is back
            after = status_of(server, "/clients/")
            health_after = status_of(server, "/health/")
        finally:
            server.stop()
    assert [status for status, _ in during] == [200, 200]
    assert health[0] == 200 and "cache: unavailable" in health[1]
    assert renamed[0] == 200 and "New" in renamed[1]
    assert after[0] == 200 and "New" in after[1] and ">Old<" not in after[1]
    assert "cache: ok" in health_after[1]
