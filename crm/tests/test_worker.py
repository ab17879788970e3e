import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="a real Celery worker needs Redis (set REDIS_URL)"
)


@pytest.fixture
def site(tmp_path):
    """A migrated SQLite database and the environment of a site using a worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'site.sqlite3'}",
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_QUEUE=f"test-{uuid.uuid4().hex}",  # this test's own queue
        DJANGO_CACHE_KEY_PREFIX=f"test-{uuid.uuid4().hex}",
        DJANGO_EMAIL_URL=f"file:///{tmp_path / 'mail'}",
        CRM_REPORT_RECIPIENTS="boss@company.com",
        CRM_PRIVATE_FILES_DIR=str(tmp_path / "private"),
        CRM_IMPORT_UPLOAD_DIR=str(tmp_path / "uploads"),
        CRM_JOB_STALL_SECONDS="2",
    )
    manage(env, "migrate", "--noinput", "-v0")
    return env, tmp_path


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def shell(env, code):
    """Run Python in the site's Django shell; return the last line it printed."""
    return manage(env, "shell", "-c", code).strip().splitlines()[-1]


class Worker:
    """A real ``celery worker`` process on the site's queue."""

    def __init__(self, env, tmp_path):
        self.log = open(tmp_path / f"worker-{uuid.uuid4().hex}.log", "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "crm_site",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "-Q",
                env["CELERY_QUEUE"],
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def job_state(tmp_path, job_id):
    with sqlite3.connect(tmp_path / "site.sqlite3", timeout=30) as db:
        state, error, result = db.execute(
            "SELECT state, error, result FROM crm_job WHERE id = ?", (job_id,)
        ).fetchone()
    return state, error, json.loads(result)


def wait_for(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.25)
    raise AssertionError("timed out waiting for the worker")


def client_file(path, count):
    lines = ["name,email"] + [f"Person {n},p{n}@mail.test" for n in range(count)]
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


START_IMPORT = """
from pathlib import Path
from crm import jobs
data = Path({path!r}).read_bytes()
job = jobs.start_import(user=None, model_name="client", file_name="big.csv",
                        data=data, rows=data.count(b"\\n") - 1)
print(job.pk)
"""
CONFIRM = (
    "from crm import jobs; from crm.models import Job;"
    "print(jobs.{}(Job.objects.get(pk={})))"
)


def test_a_worker_sends_the_monthly_report(site):
    env, tmp_path = site
    shell(
        env,
        "from crm.models import Client, Order; from django.utils import timezone;"
        "import datetime;"
        "c = Client.objects.create(name='Ann', email='ann@mail.test');"
        "o = Order.objects.create(client=c, title='Desk', amount='12.50');"
        "Order.objects.filter(pk=o.pk).update("
        "created_at=timezone.make_aware(datetime.datetime(2026, 10, 15)));"
        "print(o.pk)",
    )
    worker = Worker(env, tmp_path)
    try:
        shell(
            env,
            "from crm.tasks import send_order_report;"
            "print(send_order_report.delay('2026-10').id)",
        )
        shell(
            env,
            "from crm.tasks import send_order_report;"
            "print(send_order_report.delay('2026-10').id)",
        )
        mails = wait_for(lambda: list((tmp_path / "mail").glob("*.log")))
        time.sleep(2)  # the second task runs too, and sends nothing
        assert len(list((tmp_path / "mail").glob("*.log"))) == 1
        text = mails[0].read_text()
        assert "To: boss@company.com" in text and "orders-2026-10.csv" in text
    finally:
        worker.stop()


def test_a_worker_previews_and_imports_a_big_file(site):
    env, tmp_path = site
    upload = client_file(tmp_path / "big.csv", 3000)
    worker = Worker(env, tmp_path)
    try:
        job_id = int(shell(env, START_IMPORT.format(path=str(upload))))
        wait_for(lambda: job_state(tmp_path, job_id)[0] == "previewed")
        assert job_state(tmp_path, job_id)[2]["totals"]["new"] == 3000
        shell(env, CONFIRM.format("confirm_import", job_id))
        wait_for(lambda: job_state(tmp_path, job_id)[0] == "done")
        assert (
            shell(env, "from crm.models import Client; print(Client.objects.count())")
            == "3000"
        )
    finally:
        worker.stop()


def test_a_worker_killed_mid_import_leaves_nothing_and_a_retry_succeeds(site):
    env, tmp_path = site
    upload = client_file(tmp_path / "big.csv", 60_000)
    worker = Worker(env, tmp_path)
    try:
        job_id = int(shell(env, START_IMPORT.format(path=str(upload))))
        wait_for(lambda: job_state(tmp_path, job_id)[0] == "previewed")
        shell(env, CONFIRM.format("confirm_import", job_id))
        wait_for(lambda: job_state(tmp_path, job_id)[0] == "running")
        time.sleep(1.5)  # well into the import
        worker.kill()
    finally:
        worker.stop()
    count = "from crm.models import Client; print(Client.objects.count())"
    assert shell(env, count) == "0"  # the transaction died with the worker

    time.sleep(2.5)  # longer than CRM_JOB_STALL_SECONDS without progress
    shell(env, "from crm.tasks import tidy_jobs; print(tidy_jobs())")
    state, error, _ = job_state(tmp_path, job_id)
    assert state == "failed" and "Nothing was imported" in error

    worker = Worker(env, tmp_path)
    try:
        assert shell(env, CONFIRM.format("retry", job_id)) == "True"
        wait_for(lambda: job_state(tmp_path, job_id)[0] in ("done", "failed"), 300)
        state, error, result = job_state(tmp_path, job_id)
        assert state == "done", error
        assert result["totals"]["new"] == 60_000
        assert shell(env, count) == "60000"
    finally:
        worker.stop()
