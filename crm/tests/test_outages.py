"""Real services stopped and started under a running server: nothing fails after.

Each test runs its own throwaway Redis and PostgreSQL (crm/perf/throwaway.py),
never the machine's shared ones; they run where CI provides PostgreSQL and
Redis (DATABASE_URL, REDIS_URL) and the server binaries that come with them.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

import pytest

from crm.perf.throwaway import Services, available
from crm.tests.test_production import ROOT, Server, manage, production_env

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


def site(tmp_path, **variables):
    """A migrated production-mode site over plain HTTP; return its environment."""
    env = production_env(tmp_path, DJANGO_SECURE_SSL_REDIRECT="0", **variables)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    return env


def session_key(env):
    """Log a superuser in (a session in the database); return its key."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SESSION],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]


RENAME = (
    "from crm.models import Client; c = Client.objects.get(); c.name = 'New'; c.save()"
)


def test_after_a_postgresql_restart_no_request_fails(tmp_path):
    with Services(redis=False) as services:
        env = site(
            tmp_path,
            CRM_PUBLIC_LOGIN_REQUIRED="0",
            DATABASE_URL=services.postgres.url,
            DJANGO_CONN_MAX_AGE="600",  # persistent connections, one per thread
            GUNICORN_THREADS="4",
        )
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
        env = site(
            tmp_path,
            CRM_PUBLIC_LOGIN_REQUIRED="0",
            REDIS_URL=services.redis.url,
        )
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


SESSION = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import get_user_model
user = get_user_model().objects.create_superuser("live", "live@x.io", None)
session = import_module(settings.SESSION_ENGINE).SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "crm.permissions.CachedPermissionsBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""
NEW_ORDER = (
    "from crm.models import Client, Order;"
    "c = Client.objects.get_or_create(name='Live', email='live@mail.test')[0];"
    "Order.objects.create(client=c, title={title!r}, amount=5)"
)


def test_an_open_page_gets_updates_again_once_redis_is_back(tmp_path):
    import asyncio

    import websockets

    with Services(postgres=False) as services:
        env = site(
            tmp_path,
            DJANGO_SESSION_COOKIE_SECURE="0",
            REDIS_URL=services.redis.url,
        )
        key = session_key(env)
        server = Server(env)
        url = f"ws://127.0.0.1:{server.port}/ws/updates/"
        headers = {"Cookie": f"sessionid={key}", "Origin": server.base}
        titles, connections = [], []

        async def page():
            """Listen, and reconnect whenever closed, as crm/live.js does."""
            while "After" not in titles:
                try:
                    async with websockets.connect(
                        url, additional_headers=headers, open_timeout=5
                    ) as socket:
                        connections.append(time.monotonic())
                        async for text in socket:
                            titles.append(
                                json.loads(text).get("order", {}).get("title")
                            )
                            if "After" in titles:
                                return
                except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                    await asyncio.sleep(0.5)

        async def outage_then_orders():
            listening = asyncio.create_task(page())
            while not connections:
                await asyncio.sleep(0.1)
            # Redis restarts empty: the groups the open socket joined are gone.
            await asyncio.to_thread(services.redis.stop)
            await asyncio.to_thread(shell, env, NEW_ORDER.format(title="During"))
            await asyncio.to_thread(services.redis.start)
            deadline = time.monotonic() + 60
            while not listening.done() and time.monotonic() < deadline:
                await asyncio.to_thread(shell, env, NEW_ORDER.format(title="After"))
                await asyncio.sleep(2)
            listening.cancel()

        try:
            asyncio.run(outage_then_orders())
        finally:
            server.stop()
    assert "After" in titles


def test_an_idle_page_keeps_its_socket_and_gets_the_next_order(tmp_path):
    import asyncio

    import websockets

    with Services(postgres=False) as services:
        env = site(
            tmp_path,
            REDIS_URL=services.redis.url,
        )
        key = session_key(env)
        server = Server(env)

        async def idle_then_order():
            async with websockets.connect(
                f"ws://127.0.0.1:{server.port}/ws/updates/",
                additional_headers={
                    "Cookie": f"sessionid={key}",
                    "Origin": server.base,
                },
            ) as socket:
                await asyncio.sleep(12)  # longer than redis-py's default read timeout
                await asyncio.to_thread(shell, env, NEW_ORDER.format(title="Later"))
                return json.loads(await asyncio.wait_for(socket.recv(), 15))

        try:
            message = asyncio.run(idle_then_order())
        finally:
            server.stop()
    assert message["order"]["title"] == "Later"
