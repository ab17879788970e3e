"""Load-test gunicorn on loopback with wrk and print requests/s ratios."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.management.utils import get_random_secret_key

SESSION_SCRIPT = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.create_superuser("load", "load@load.test", None)
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
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


class Command(BaseCommand):
    help = (
        "Serve a throwaway copy of Mini CRM with gunicorn on loopback, load it "
        "with wrk and print requests/s against a trivial view."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int, default=10)
        parser.add_argument("--connections", type=int, default=8)
        parser.add_argument("--clients", type=int, default=20_000)
        parser.add_argument("--orders", type=int, default=100_000)

    def handle(self, *args, **options):
        if not shutil.which("wrk"):
            raise CommandError("wrk is not installed: apt-get install wrk")
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
            }
            self.prepare(env, options)
            self.serve_and_load(env, options)

    def manage(self, env, *args, stdout=None):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            text=True,
            stdout=stdout,
        )

    def prepare(self, env, options):
        self.stdout.write("Preparing a throwaway database…")
        self.manage(env, "migrate", "--noinput", "-v0")
        self.manage(env, "loaddata", "demo", "-v0")
        self.manage(
            env,
            "generate_data",
            "--clients",
            str(options["clients"]),
            "--orders",
            str(options["orders"]),
        )
        self.manage(env, "collectstatic", "--noinput", "-v0")
        out = self.manage(env, "shell", "-c", SESSION_SCRIPT, stdout=subprocess.PIPE)
        self.session = out.stdout.strip().splitlines()[-1]

    def serve_and_load(self, env, options):
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
                "crm_site.wsgi",
            ],
            cwd=settings.BASE_DIR,
            env=env,
        )
        try:
            self.wait_until_up(f"{base}/health/")
            results = {
                name: wrk(
                    base + path, options["seconds"], options["connections"], cookie
                )
                for name, path, cookie in (
                    ("health", "/health/", None),
                    ("client_list", "/clients/", self.session),
                    ("admin_changelist", "/admin/crm/client/", self.session),
                )
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
        baseline = results["health"][0]
        errors = 0
        for name, (rate, total, bad) in results.items():
            errors += bad
            self.stdout.write(f"loadtest.{name}.requests_per_s: {rate:.1f}")
            self.stdout.write(f"loadtest.{name}.requests: {total}")
            self.stdout.write(f"loadtest.{name}.errors: {bad}")
            if name != "health":
                self.stdout.write(
                    f"loadtest.{name}.ratio_vs_trivial_view: {rate / baseline:.3f}"
                )
        if errors:
            raise CommandError(f"{errors} requests failed under load.")

    def wait_until_up(self, url):
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise CommandError("gunicorn did not start.")
