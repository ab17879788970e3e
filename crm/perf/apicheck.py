"""Check the whole API schema against a live throwaway server with schemathesis."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.utils import get_random_secret_key

from .loadtest import free_port, manage, wait_until_up


class ApiCheckError(Exception):
    """The API check could not run, or found failures."""


# A team member who reads, and a staff member with every permission who writes.
USERS_SCRIPT = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
User = get_user_model()
reader = User.objects.create_user("apicheck-reader", "reader@apicheck.test", None)
reader.groups.add(Group.objects.get(name="Sales team"))
writer = User.objects.create_superuser("apicheck-staff", "staff@apicheck.test", None)
print(Token.objects.create(user=reader).key, Token.objects.create(user=writer).key)
"""

#: The response checks: no 5xx, and every answer as the schema says.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def prepare(env, say):
    """Build the throwaway database; return (reader token, staff token)."""
    say("Preparing a throwaway database…")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "loaddata", "demo", "-v0")
    manage(env, "generate_data", "--clients", "200", "--orders", "1000")
    manage(env, "collectstatic", "--noinput", "-v0")
    out = manage(env, "shell", "-c", USERS_SCRIPT, stdout=subprocess.PIPE)
    return out.stdout.split()[-2:]


def check_docs_page(base):
    """Fail unless /api/docs/ and every script and style it loads come from us."""
    with urllib.request.urlopen(f"{base}/api/docs/", timeout=10) as response:
        html = response.read().decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    local = [url for url in assets if url.startswith("/")]
    foreign = [url for url in assets if not url.startswith(("/", "#", "?"))]
    if foreign or not any("swagger-ui-bundle" in url for url in local):
        raise ApiCheckError(f"/api/docs/ loads {foreign or 'no Swagger UI'}.")
    for url in local:
        with urllib.request.urlopen(base + url, timeout=10) as response:
            if response.status != 200:
                raise ApiCheckError(f"{url}: {response.status}")
    return len(local)


def schemathesis(base, token, methods, max_examples, say, cwd):
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/api/schema/?format=json",
        "--header",
        f"Authorization: Token {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(max_examples),
        # One worker: Python 3.11's ast.parse, which Hypothesis calls, is not
        # thread-safe ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--seed",
        "13",
        "--no-shrink",
        "--no-color",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
    ]
    for method in methods:
        command += ["--include-method", method]
    say(f"schemathesis ({', '.join(methods)})…")
    # In the throwaway folder: schemathesis keeps a cache where it runs.
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=cwd
    )
    if result.returncode:
        say(result.stdout[-3000:])
        say(result.stderr[-3000:])
        return False
    # Its whole report only on failure: its closing "=== … in 19.46s ===" reads
    # like a test runner's summary that ran no test (CI judges those lines).
    cases = re.search(r"(\d+) generated", result.stdout)
    say(f"schemathesis: {cases[1] if cases else 'all'} cases, no failures")
    return True


def run(*, max_examples, say=print):
    """Serve a throwaway copy, check it; return summary lines, raise on failure."""
    if not shutil.which("schemathesis", path=str(Path(sys.executable).parent)):
        raise ApiCheckError("schemathesis is not installed: make test installs it.")
    with tempfile.TemporaryDirectory(prefix="crm-apicheck-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": os.environ.get("APICHECK_DATABASE_URL")
            or f"sqlite:///{tmp}/api.sqlite3",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": get_random_secret_key(),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_STATIC_ROOT": f"{tmp}/static",
            "DJANGO_MEDIA_ROOT": f"{tmp}/media",
            "CRM_PRIVATE_FILES_DIR": f"{tmp}/private",
            "CRM_API_THROTTLE_ANON": "1000000/min",
            "CRM_API_THROTTLE_USER": "1000000/min",
            "GUNICORN_ACCESS_LOG": "/dev/null",
        }
        env.pop("REDIS_URL", None)  # one process's own cache: nothing shared
        reader, staff = prepare(env, say)
        log = open(f"{tmp}/server.log", "w")  # noqa: SIM115 (closed below)
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
                "--workers",
                "1",
                "crm_site.asgi:application",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(f"{base}/health/")
            assets = check_docs_page(base)
            reads = schemathesis(base, reader, ["GET"], max_examples, say, tmp)
            writes = schemathesis(
                base, staff, ["POST", "PUT", "PATCH", "DELETE"], max_examples, say, tmp
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
            errors = re.findall(
                r"^.*(?:Traceback|Internal Server Error).*$",
                Path(f"{tmp}/server.log").read_text(),
                re.M,
            )
            if errors:
                say("The server logged:\n" + "\n".join(errors[:20]))
    lines = [
        f"apicheck.docs_assets_served: {assets}",
        f"apicheck.reads_as_user: {'passed' if reads else 'FAILED'}",
        f"apicheck.writes_as_staff: {'passed' if writes else 'FAILED'}",
    ]
    if not (reads and writes):
        raise ApiCheckError("\n".join([*lines, "schemathesis found failures."]))
    return lines
