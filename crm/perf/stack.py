"""Run compose.yaml's web, worker and beat natively, and check the stack works.

This machine has no container engine. The services' own commands and
environment are read from compose.yaml (not copied): the container host names
become this machine's PostgreSQL and Redis, and the image's paths a temporary
folder. Then: health, a page, a task through a real Celery worker, beat, and a
websocket event.
"""

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}")


class StackError(Exception):
    """The stack did not come up, or a check failed."""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def interpolate(value, variables):
    """Resolve compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def replace(match):
        name, kind, rest = match.groups()
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise StackError(f"compose.yaml needs {name}: {rest}")
        return rest if kind == "-" else ""

    return VARIABLE.sub(replace, str(value))


def compose_services(variables):
    """Return ``{service: (command, environment)}`` from compose.yaml."""
    spec = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = {}
    for name in ("web", "worker", "beat"):
        service = spec["services"][name]
        environment = {
            key: interpolate(value, variables)
            for key, value in service.get("environment", {}).items()
        }
        command = interpolate(service["command"], variables).replace("$$", "$")
        services[name] = (command, environment)
    return services


def image_environment():
    """Return the ENV lines of the Dockerfile's runtime stage."""
    lines = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    block = re.search(r"\nENV (.*?)\n(?=[A-Z])", lines, re.S)[1]
    pairs = shlex.split(block.replace("\\\n", " "))
    return dict(pair.split("=", 1) for pair in pairs)


class Stack:
    """The three processes and their shared throwaway database, Redis db, folder."""

    def __init__(self, say=print):
        self.say = say
        self.folder = Path(tempfile.mkdtemp(prefix="crm-stack-"))
        self.port = free_port()
        self.database = f"crm_stack_{secrets.token_hex(4)}"
        self.processes = {}

    def environment(self, service_environment):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update(image_environment())
        env.update(service_environment)
        # The container names of compose's services, here on this machine.
        env.update(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{self.database}",
            REDIS_URL=os.environ.get("STACK_REDIS_URL", "redis://127.0.0.1:6379/3"),
            DJANGO_STATIC_ROOT=str(ROOT / "staticfiles"),
            DJANGO_MEDIA_ROOT=str(self.folder / "media"),
            CRM_PRIVATE_FILES_DIR=str(self.folder / "private"),
            CRM_IMPORT_UPLOAD_DIR=str(self.folder / "uploads"),
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_ACCESS_LOG="/dev/null",
            # This run's own queue and keys on the shared Redis.
            CELERY_QUEUE=self.database,
            DJANGO_CACHE_KEY_PREFIX=self.database,
            DJANGO_EMAIL_URL=f"file:///{self.folder / 'mail'}",
            CRM_REPORT_RECIPIENTS="manager@company.com",
            # The image's /venv is this checkout's virtualenv.
            PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        )
        return env

    def start(self):
        variables = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
        self.services = compose_services(variables)
        self.env = self.environment(self.services["web"][1])
        self._psql(f'CREATE DATABASE "{self.database}"')
        self.manage("collectstatic", "--noinput", "-v0")
        for name, (command, environment) in self.services.items():
            log = open(self.folder / f"{name}.log", "w")
            self.say(f"stack: {name}: {command}")
            self.processes[name] = subprocess.Popen(
                command,
                shell=True,
                cwd=ROOT,
                env=self.environment(environment),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self._psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def _psql(self, sql):
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", sql],
            check=True,
            capture_output=True,
        )

    def manage(self, *args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout

    def shell(self, code):
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    def log(self, name):
        return (self.folder / f"{name}.log").read_text()

    # Checks -----------------------------------------------------------------

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for_health(self, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise StackError(f"{name} stopped:\n{self.log(name)[-3000:]}")
            try:
                with urllib.request.urlopen(self.url("/health/"), timeout=3) as page:
                    body = page.read().decode()
                    if page.status == 200:
                        return body
            except OSError:
                pass
            time.sleep(0.5)
        raise StackError("web never answered /health/:\n" + self.log("web")[-3000:])

    def log_in(self):
        """Create an admin in the stack's database; return a logged-in opener."""
        password = secrets.token_urlsafe(16)
        self.shell(
            "from django.contrib.auth import get_user_model; User = get_user_model();"
            f"User.objects.create_superuser('stack', 's@x.io', {password!r});"
            "print('ok')"
        )
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(self.url("/accounts/login/")).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": "stack", "password": password}
        ).encode()
        request = urllib.request.Request(
            self.url("/accounts/login/"),
            data=body,
            headers={"Referer": self.url("/accounts/login/")},
        )
        opener.open(request)
        return opener, "; ".join(f"{c.name}={c.value}" for c in jar)

    def check_task(self, seconds=60):
        """Send the monthly report through the real worker; wait for its mail."""
        self.shell(
            "from crm.tasks import send_order_report;"
            "print(send_order_report.delay('2026-10').id)"
        )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            mails = list((self.folder / "mail").glob("*.log"))
            if mails:
                return mails[0].read_text()
            time.sleep(0.5)
        raise StackError("the worker sent no report:\n" + self.log("worker")[-3000:])

    def check_websocket(self, cookie):
        """Open /ws/updates/ as a browser would; an order saved anywhere arrives."""
        import asyncio

        import websockets

        async def run():
            async with websockets.connect(
                f"ws://127.0.0.1:{self.port}/ws/updates/",
                additional_headers={"Cookie": cookie, "Origin": self.url("")},
            ) as socket:
                await socket.send(json.dumps({"type": "ping"}))
                assert json.loads(await socket.recv()) == {"type": "pong"}
                self.shell(
                    "from crm.models import Client, Order;"
                    "c = Client.objects.create(name='Stack', email='stack@mail.test');"
                    "print(Order.objects.create(client=c, title='Desk', amount=5).pk)"
                )
                return json.loads(await asyncio.wait_for(socket.recv(), 20))

        return asyncio.run(run())


def run(say=print):
    """Bring the stack up, check it, take it down; return ``check: result`` lines."""
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode:
        raise StackError("PostgreSQL is not running on 127.0.0.1:5432.")
    stack = Stack(say)
    lines = []
    try:
        stack.start()
        health = stack.wait_for_health()
        lines.append(f"stack.health: {health!r}")
        opener, cookie = stack.log_in()
        page = opener.open(stack.url("/clients/"))
        lines.append(f"stack.page: /clients/ {page.status}")
        mail = stack.check_task()
        lines.append(f"stack.task: report mailed ({'orders-2026-10.csv' in mail})")
        event = stack.check_websocket(cookie)
        lines.append(f"stack.websocket: {event['type']} {event['order']['title']}")
        if "beat: Starting" not in stack.log("beat"):
            raise StackError("beat did not start:\n" + stack.log("beat")[-3000:])
        lines.append("stack.beat: running")
        return lines
    finally:
        stack.stop()
