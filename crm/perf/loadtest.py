"""Serve a throwaway copy with gunicorn on loopback, load it with wrk, print ratios."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management.utils import get_random_secret_key

from . import throwaway


class LoadTestError(Exception):
    """The load test could not run, or requests failed under load."""


# A colleague as the site sees most of them: staff, in the Sales team group
# (permissions are checked, as for everyone but a superuser).
SESSION_SCRIPT = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
user = get_user_model().objects.create_user("load", "load@load.test", None)
user.is_staff = True
user.save()
user.groups.add(Group.objects.get(name="Sales team"))
session = import_module(settings.SESSION_ENGINE).SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "crm.permissions.CachedPermissionsBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(url, seconds, connections, cookie):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    if cookie:
        command += ["-H", f"Cookie: sessionid={cookie}"]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return rate, total, errors


#: (name, path, logged in): what is loaded, in turn; the first is the baseline.
TARGETS = (
    ("health", "/health/", False),
    ("client_list", "/clients/", True),
    ("admin_changelist", "/admin/crm/client/", True),
    ("api_clients", "/api/clients/", True),
)


def manage(env, *args, stdout=None):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        text=True,
        stdout=stdout,
    )


def prepare(env, clients, orders, say):
    """Build the throwaway database; return a logged-in session key."""
    say("Preparing a throwaway database…")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "loaddata", "demo", "-v0")
    manage(env, "generate_data", "--clients", str(clients), "--orders", str(orders))
    manage(env, "collectstatic", "--noinput", "-v0")
    out = manage(env, "shell", "-c", SESSION_SCRIPT, stdout=subprocess.PIPE)
    return out.stdout.strip().splitlines()[-1]


def wait_until_up(url):
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise LoadTestError("gunicorn did not start.")


@contextmanager
def serving(env, application, worker_class):
    """Run gunicorn with ``worker_class`` on a free port; yield its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(Path(settings.BASE_DIR) / "crm_site" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            worker_class,
            application,
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    try:
        wait_until_up(f"{base}/health/")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


#: How pages can be served: gthread (pages only) and what production runs,
#: uvicorn workers (pages through a2wsgi's thread pool, and websockets).
GTHREAD = ("crm_site.wsgi", "gthread")
ASGI = ("crm_site.asgi:application", "uvicorn_worker.UvicornWorker")


def serve_and_load(env, session, seconds, connections):
    """Load each target on gthread workers, then the client list on the ASGI
    workers production runs; return ``{name: (rate, requests, errors)}``."""
    with serving(env, *GTHREAD) as base:
        results = {
            name: wrk(base + path, seconds, connections, session if login else None)
            for name, path, login in TARGETS
        }
    with serving(env, *ASGI) as base:
        results["client_list_asgi"] = wrk(
            base + "/clients/", seconds, connections, session
        )
    return results


def fan_out(env, session, redis_url, sockets=200, events=5):
    """Open ``sockets`` websockets as logged-in pages; send ``events`` order
    events through the Redis channel layer; return ``(delivered, expected,
    latencies)``, the latencies in seconds from send to arrival."""
    import asyncio

    import websockets
    from channels_redis.core import RedisChannelLayer

    async def measure(base):
        url = base.replace("http://", "ws://") + "/ws/updates/"
        headers = {"Cookie": f"sessionid={session}", "Origin": base}
        layer = RedisChannelLayer(
            hosts=[redis_url],
            prefix=env.get("DJANGO_CACHE_KEY_PREFIX", "crm") + ":asgi",
        )
        opened = [
            await websockets.connect(url, additional_headers=headers, open_timeout=20)
            for _ in range(sockets)
        ]

        async def arrival(socket, number):
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if message.get("order", {}).get("id") == number:
                    return time.time() - message["sent_at"]

        latencies, delivered = [], 0
        try:
            await asyncio.sleep(1)  # every socket has joined its groups
            for number in range(events):
                waiting = [arrival(socket, number) for socket in opened]
                event = {
                    "type": "order.created",
                    "order": {"id": number, "title": "Load", "amount": "1.00"},
                    "client": {"id": 0, "name": "Load", "email": "load@load.test"},
                    "sent_at": time.time(),
                }
                await layer.group_send("orders", event)
                for result in await asyncio.gather(*waiting, return_exceptions=True):
                    if isinstance(result, float):
                        delivered += 1
                        latencies.append(result)
        finally:
            for socket in opened:
                await socket.close()
        return delivered, sockets * events, latencies

    with serving(env, *ASGI) as base:
        return asyncio.run(measure(base))


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(*, seconds, connections, clients, orders, sockets=200, say=print):
    """Run the whole load test; return ``name: value`` lines, raise on failures."""
    if not shutil.which("wrk"):
        raise LoadTestError("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="crm-loadtest-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": os.environ.get("LOADTEST_DATABASE_URL")
            or f"sqlite:///{tmp}/load.sqlite3",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": get_random_secret_key(),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_STATIC_ROOT": f"{tmp}/static",
            "GUNICORN_ACCESS_LOG": "/dev/null",
            # One user makes every request here: the API's throttle measures
            # nothing but itself at that rate.
            "CRM_API_THROTTLE_USER": "100000000/min",
        }
        redis = None
        if shutil.which("redis-server"):
            # As in production: Redis for the cache and the channel layer.
            redis = throwaway.Redis(tmp)
            redis.start()
            env["REDIS_URL"] = redis.url
        try:
            session = prepare(env, clients, orders, say)
            results = serve_and_load(env, session, seconds, connections)
            if redis:
                say(f"Opening {sockets} websockets…")
                fanned = fan_out(env, session, redis.url, sockets)
        finally:
            if redis:
                redis.stop()
    return report(results, fanned if redis else None)


def report(results, fanned):
    baseline = results[TARGETS[0][0]][0]
    lines, errors = [], 0
    for name, (rate, total, bad) in results.items():
        errors += bad
        lines.append(f"loadtest.{name}.requests_per_s: {rate:.1f}")
        lines.append(f"loadtest.{name}.requests: {total}")
        lines.append(f"loadtest.{name}.errors: {bad}")
        if name != TARGETS[0][0]:
            lines.append(
                f"loadtest.{name}.ratio_vs_trivial_view: {rate / baseline:.3f}"
            )
    asgi, gthread = results["client_list_asgi"][0], results["client_list"][0]
    lines.append(f"loadtest.client_list.asgi_vs_gthread: {asgi / gthread:.3f}")
    if fanned is None:
        lines.append("loadtest.websockets: skipped (redis-server is not installed)")
    else:
        delivered, expected, latencies = fanned
        lines.append(f"loadtest.websockets.delivered: {delivered} of {expected}")
        if latencies:
            p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
            lines.append(f"loadtest.websockets.p50_ms: {p50 * 1000:.0f}")
            lines.append(f"loadtest.websockets.p95_ms: {p95 * 1000:.0f}")
        errors += expected - delivered
    if errors:
        raise LoadTestError(
            "\n".join([*lines, f"{errors} requests or events failed under load."])
        )
    return lines
