"""A bounded soak: the production processes under load while their services fail.

gunicorn (uvicorn workers: pages and websockets), a Celery worker and beat run
on a throwaway PostgreSQL and Redis of their own (``crm.perf.throwaway``,
never the machine's shared ones). wrk reads the client list without pause and
a writer adds clients through the public form, while, phase after phase, Redis
is stopped and started, PostgreSQL is stopped and started, and the worker is
killed in the middle of an import that is then retried. At the end every row is
counted: no client, order or import row may be lost or written twice.
"""

import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.utils import get_random_secret_key

from .throwaway import Services, available, free_port


class SoakError(Exception):
    """The soak could not run, or it found a failure."""


#: wrk counts answers by status: 500s (bugs) apart from 503s (said "try again").
WRK_SCRIPT = """
local threads = {}
local paths = {"/clients/", "/clients/?q=soak", "/clients/?page=3", "/health/"}
local n = 0
function setup(thread) table.insert(threads, thread) end
function init(args) s500 = 0; s503 = 0 end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
function response(status, headers, body)
  if status == 503 then s503 = s503 + 1 elseif status >= 500 then s500 = s500 + 1 end
end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("s500"); b = b + t:get("s503") end
  local e = summary.errors
  io.write(string.format("COUNTS %d %d %d %d\\n", summary.requests, a, b,
    e.connect + e.read + e.write + e.timeout))
  io.write(string.format("unanswered: connect %d, read %d, write %d, timeout %d\\n",
    e.connect, e.read, e.write, e.timeout))
end
"""

IMPORT_ROWS = 20_000

START_IMPORT = """
from pathlib import Path
from crm import jobs
data = Path({path!r}).read_bytes()
job = jobs.start_import(user=None, model_name="client", file_name="soak.csv",
                        data=data, rows=data.count(b"\\n") - 1)
print(job.pk)
"""

COUNTS = """
from django.db.models import Count, Sum
from django.db.models.functions import Lower
from crm.models import Client, Order
emails = Client.objects.values(e=Lower("email")).annotate(n=Count("id"))
print(Client.objects.count(), emails.filter(n__gt=1).count(),
      Order.objects.count(), Order.objects.aggregate(s=Sum("amount"))["s"])
"""


class Site:
    """The processes compose runs, natively, on throwaway services."""

    def __init__(self, services, folder):
        self.services = services
        self.folder = Path(folder)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes = {}
        self.logs = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
            "DATABASE_URL": services.postgres.url,
            "REDIS_URL": services.redis.url,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": get_random_secret_key(),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
            "DJANGO_SESSION_COOKIE_SECURE": "0",
            "DJANGO_CSRF_COOKIE_SECURE": "0",
            "DJANGO_STATIC_ROOT": str(self.folder / "static"),
            "DJANGO_CONN_MAX_AGE": "60",
            "CRM_PUBLIC_LOGIN_REQUIRED": "0",
            "CRM_PRIVATE_FILES_DIR": str(self.folder / "private"),
            "CRM_IMPORT_UPLOAD_DIR": str(self.folder / "uploads"),
            "CRM_JOB_STALL_SECONDS": "3",
            "GUNICORN_ACCESS_LOG": "/dev/null",
            "GUNICORN_WORKERS": "2",
            # A recycled worker closes its idle keep-alive connections: browsers
            # resend on a new one, wrk counts an error. Not an outage: off here.
            "GUNICORN_MAX_REQUESTS": "0",
        }
        self.env.pop("CELERY_BROKER_URL", None)

    def manage(self, *args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode:
            raise SoakError(f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def sql(self, query, *params):
        """The first value a query returns (cheaper than a Django shell)."""
        import psycopg

        url = self.services.postgres.url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute(query, params).fetchone()
        return row and row[0]

    def shell(self, code):
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    COMMANDS = {
        "web": [
            "-m", "gunicorn", "-c", "crm_site/gunicorn.conf.py", "--bind", "{bind}",
            "crm_site.asgi:application",
        ],
        "worker": [
            "-m", "celery", "-A", "crm_site", "worker", "--loglevel=INFO",
            "--concurrency=1",
        ],
        "beat": [
            "-m", "celery", "-A", "crm_site", "beat", "--loglevel=INFO",
            "--schedule", "{folder}/celerybeat-schedule",
        ],
    }  # fmt: skip

    def start(self, name):
        command = [
            part.format(bind=f"127.0.0.1:{self.port}", folder=self.folder)
            for part in self.COMMANDS[name]
        ]
        log = self.logs.setdefault(name, open(self.folder / f"{name}.log", "ab"))  # noqa: SIM115
        self.processes[name] = subprocess.Popen(
            [sys.executable, *command],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name):
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)  # the worker and its children
        process.wait(30)

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        for log in self.logs.values():
            log.close()

    def wait_for_web(self, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/health/", timeout=3):
                    return
            except OSError:
                time.sleep(0.3)
        raise SoakError("gunicorn never answered /health/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Writer(threading.Thread):
    """Adds clients through the public form, one every ``pause`` seconds."""

    def __init__(self, base, pause=0.2):
        super().__init__(daemon=True)
        self.base = base
        self.pause = pause
        self.phase = "start"
        self.running = True
        self.results = []  # (phase, email, status)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            _NoRedirect,
        )

    def status(self, request):
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except OSError:
            return 0, ""  # no answer at all

    def write(self, n):
        email = f"soak-writer-{n}@mail.test"
        status, page = self.status(f"{self.base}/clients/add/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or not token:
            return email, status or -1  # the form did not even load
        data = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token.group(1),
                "name": f"Soak Writer {n}",
                "email": email,
                "phone": "",
            }
        ).encode()
        request = urllib.request.Request(
            f"{self.base}/clients/add/",
            data=data,
            headers={"Referer": f"{self.base}/clients/add/"},
        )
        return email, self.status(request)[0]

    def run(self):
        n = 0
        while self.running:
            n += 1
            started = self.phase
            email, status = self.write(n)
            # A write counts in the phase it started in, unless the database
            # went away while it was on its way: then it counts in the outage.
            phase = OUTAGE if OUTAGE in (started, self.phase) else started
            self.results.append((phase, email, status))
            time.sleep(self.pause)


def wrk(base, seconds, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        out = subprocess.run(
            [
                "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                "-s", script.name, base,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    found = re.search(r"COUNTS (\d+) (\d+) (\d+) (\d+)", out)
    if not found:
        raise SoakError(f"wrk printed no counts:\n{out}")
    counts = [int(n) for n in found.groups()]
    if counts[3]:
        print(re.search(r"unanswered: .*", out).group(0), file=sys.stderr)
    return counts


class Load:
    """wrk without pause, counted per phase: a phase's counts are its own."""

    def __init__(self, base, connections):
        self.base = base
        self.connections = connections
        self.counts = {}  # phase: [requests, 500s, 503s, unanswered]

    def during(self, phase, seconds, action=None):
        """Load for ``seconds`` and, if given, until ``action()`` has returned."""
        errors = []

        def act():
            try:
                action()
            except BaseException as error:  # noqa: BLE001 (raised below)
                errors.append(error)

        worker = threading.Thread(target=act, daemon=True) if action else None
        if worker:
            worker.start()
        total = self.counts.setdefault(phase, [0, 0, 0, 0])
        started = time.monotonic()
        while True:
            left = seconds - (time.monotonic() - started)
            busy = worker is not None and worker.is_alive()
            if left <= 0 and not busy:
                break
            chunk = max(1, round(left)) if left > 0 else 3
            for i, n in enumerate(wrk(self.base, chunk, self.connections)):
                total[i] += n
        if errors:
            raise errors[0]


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise SoakError(f"timed out waiting for {what}")


JOB_ACTION = (
    "from crm import jobs; from crm.models import Job;"
    "print(jobs.{action}(Job.objects.get(pk={job})))"
)
TIDY = "from crm.tasks import tidy_jobs; tidy_jobs(); print('ok')"


def import_killed_and_retried(site, say):
    """Start an import, kill the worker during it, then retry it: once, whole."""
    path = site.folder / "soak.csv"
    rows = [f"Soak Import {n},soak-import-{n}@mail.test" for n in range(IMPORT_ROWS)]
    path.write_text("name,email\r\n" + "\r\n".join(rows) + "\r\n")
    job = int(site.shell(START_IMPORT.format(path=str(path))))

    def state():
        return site.sql("SELECT state FROM crm_job WHERE id = %s", job)

    def act(action):
        return site.shell(JOB_ACTION.format(action=action, job=job))

    wait_for(lambda: state() == "previewed", 300, "the preview")
    act("confirm_import")
    wait_for(lambda: state() == "running", 120, "the import to start")
    time.sleep(1)
    say("  killing the worker in the middle of the import")
    site.kill("worker")
    site.start("worker")

    def marked_failed():
        site.shell(TIDY)
        return state() == "failed"

    wait_for(marked_failed, 120, "the killed import to be marked failed")
    if act("retry") != "True":
        raise SoakError("the failed import could not be retried")
    final = wait_for(lambda: (s := state()) in ("done", "failed") and s, 600, "retry")
    if final != "done":
        raise SoakError("the retried import failed")


def run(*, seconds=10, connections=8, clients=2000, orders=5000, say=print):
    """Run the soak; return ``name: value`` lines, raise ``SoakError`` on failure."""
    if reason := available():
        raise SoakError(f"throwaway services cannot run here: {reason}")
    if not shutil.which("wrk"):
        raise SoakError("wrk is not installed: apt-get install wrk")
    with Services() as services:
        folder = services.folder / "site"
        folder.mkdir()
        site = Site(services, folder)
        say("Preparing the throwaway site…")
        site.manage("migrate", "--noinput", "-v0")
        site.manage("collectstatic", "--noinput", "-v0")
        site.manage("generate_data", "--clients", str(clients), "--orders", str(orders))
        before = site.shell(COUNTS).split()
        for name in ("web", "worker", "beat"):
            site.start(name)
        load, writer = Load(site.base, connections), Writer(site.base)
        try:
            site.wait_for_web()
            writer.start()

            def phase(name, action=None, *, under_load=False, database=False):
                say(f"phase: {name}")
                # Writes made while PostgreSQL stops or starts count as made
                # during its outage; the others, in the phase that follows.
                writer.phase = OUTAGE if database else name
                if action and not under_load:
                    action()  # the outage or the recovery, then the load
                    action = None
                writer.phase = name
                load.during(name, seconds, action)

            phase("steady")
            phase("redis_down", services.redis.stop)
            phase("redis_back", services.redis.start)
            phase("postgres_down", services.postgres.stop, database=True)
            phase("postgres_back", services.postgres.start, database=True)
            phase(
                "worker_killed",
                lambda: import_killed_and_retried(site, say),
                under_load=True,
            )
            phase("after")
        finally:
            writer.running = False
            writer.join(60)
            try:
                after = site.shell(COUNTS).split()
                landed = site.shell(LANDED).split()[1:]
                imported = int(site.shell(IMPORTED))
            finally:
                site.stop()
                kept = Path(tempfile.gettempdir()) / "crm-soak-logs"
                shutil.rmtree(kept, ignore_errors=True)
                kept.mkdir()
                for log in folder.glob("*.log"):
                    shutil.copy(log, kept / log.name)
                say(f"Logs of web, worker and beat: {kept}")
    return report(load.counts, writer.results, before, after, landed, imported)


LANDED = """
from crm.models import Client
print("emails", *Client.objects.filter(email__startswith="soak-writer-")
      .values_list("email", flat=True))
"""
IMPORTED = """
from crm.models import Client
print(Client.objects.filter(email__startswith="soak-import-").count())
"""
#: The only phase where refusals ("try again", 503) and unanswered requests are
#: allowed: the database is down.
OUTAGE = "postgres_down"


def report(counts, writes, before, after, landed, imported):
    """Return the soak's ``name: value`` lines; raise if anything was lost or failed."""
    lines, failures = [], []
    for phase, (requests, s500, s503, socket_errors) in counts.items():
        mine = [status for name, _, status in writes if name == phase]
        ok = sum(status == 302 for status in mine)
        lines += [
            f"soak.{phase}.requests: {requests}",
            f"soak.{phase}.http_500: {s500}",
            f"soak.{phase}.http_503: {s503}",
            f"soak.{phase}.unanswered: {socket_errors}",
            f"soak.{phase}.writes_ok: {ok}",
            f"soak.{phase}.writes_refused: {len(mine) - ok}",
        ]
        if s500:
            failures.append(f"{s500} responses 500 in {phase}")
        refused = sorted({status for status in mine if status != 302})
        if phase != OUTAGE and (s503 or socket_errors or refused):
            failures.append(
                f"requests failed in {phase} (only {OUTAGE} may refuse): "
                f"{s503} answered 503, {socket_errors} unanswered, writes "
                f"refused with {refused}"
            )
    confirmed = {email for _, email, status in writes if status == 302}
    landed = set(landed)
    lost = confirmed - landed
    clients0, dups0, orders0, sum0 = before
    clients1, dups1, orders1, sum1 = after
    lines += [
        f"soak.rows.writes_confirmed: {len(confirmed)}",
        f"soak.rows.writes_lost: {len(lost)}",
        f"soak.rows.writes_unconfirmed_but_saved: {len(landed - confirmed)}",
        f"soak.rows.import_rows: {imported} of {IMPORT_ROWS}",
        f"soak.rows.duplicate_emails: {dups1}",
        f"soak.rows.orders: {orders0} -> {orders1}",
        f"soak.rows.order_total: {sum0} -> {sum1}",
    ]
    expected = int(clients0) + len(landed) + imported
    if lost:
        failures.append(f"{len(lost)} confirmed writes are missing")
    if imported != IMPORT_ROWS:
        failures.append(f"the import left {imported} rows, not {IMPORT_ROWS}")
    if int(clients1) != expected:
        failures.append(f"{clients1} clients, expected {expected}")
    if dups1 != "0" or (orders0, sum0) != (orders1, sum1):
        failures.append("orders or emails changed")
    lines.append(f"soak.failures: {len(failures)}")
    if failures:
        raise SoakError("\n".join([*lines, *failures]))
    return lines
