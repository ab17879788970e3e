"""Throwaway Redis and PostgreSQL servers on free loopback ports, to stop and start.

The outage tests and ``make soak`` break these, never the machine's shared
services. Each lives in a temporary folder that is removed with it.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ServiceError(RuntimeError):
    pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not come up")


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _postgres_bin(name):
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise ServiceError(f"{name} not found: install PostgreSQL's server binaries")


def available():
    """Return why throwaway servers cannot run here, or ``""`` when they can."""
    if not shutil.which("redis-server"):
        return "redis-server is not installed"
    try:
        _postgres_bin("initdb")
    except ServiceError as error:
        return str(error)
    return ""


class Redis:
    """``redis-server`` without persistence except an explicit ``save()``."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.port = free_port()
        self.process = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.folder),
                "--dbfilename", "dump.rdb",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: _answers(self.port), 30, "redis-server")

    def save(self):
        """Write the data to disk: the next start comes back with it."""
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "save"],
            check=True,
            capture_output=True,
        )

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()  # like a crash: no final save
            self.process.wait(30)
        self.process = None


class Postgres:
    """A PostgreSQL cluster of its own (initdb, pg_ctl), trust auth on loopback."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/crm"
        # PostgreSQL refuses to run as root.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command):
        result = subprocess.run(
            [*self._as_user, *command], capture_output=True, text=True, timeout=120
        )
        if result.returncode:
            raise ServiceError(result.stdout + result.stderr)
        return result.stdout

    def init(self):
        self.folder.mkdir()
        if self._as_user:
            os.chown(self.folder, pwd.getpwnam("postgres").pw_uid, -1)
        self._run(
            _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres",
            "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8",
        )  # fmt: skip
        self.start()
        self._run(
            _postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
            "-U", "postgres", "crm",
        )  # fmt: skip

    def start(self):
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.folder} -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            _postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "postgres.log"), "-w", "start",
        )  # fmt: skip

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            self._run(
                _postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                "stop",
            )  # fmt: skip


class Services:
    """A throwaway Redis and PostgreSQL; a context manager that removes both."""

    def __init__(self, postgres=True, redis=True):
        self.folder = Path(tempfile.mkdtemp(prefix="crm-services-"))
        self.folder.chmod(0o755)
        self.redis = Redis(self.folder / "redis") if redis else None
        self.postgres = Postgres(self.folder / "postgres") if postgres else None

    def __enter__(self):
        try:
            if self.redis:
                self.redis.folder.mkdir()
                self.redis.start()
            if self.postgres:
                self.postgres.init()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.redis:
                self.redis.stop()
            if self.postgres:
                self.postgres.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
