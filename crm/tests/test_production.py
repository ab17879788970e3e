import http.cookiejar
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.core.management.utils import get_random_secret_key

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "crm_site" / "gunicorn.conf.py"
REDIS_URL = os.environ.get("REDIS_URL", "")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(tmp_path, **extra):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    clean.pop("DATABASE_URL", None)
    return {
        **clean,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": get_random_secret_key(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "GUNICORN_ACCESS_LOG": "/dev/null",
        **extra,
    }


def manage(env, *args):
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


class Server:
    """A gunicorn process of ours on a free loopback port."""

    def __init__(self, env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(GUNICORN_CONF),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "crm_site.asgi:application",  # as production serves it
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(150):
            try:
                self.get("/health/")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(self.process.stderr.read().decode())

    def get(self, path, opener=None, **headers):
        request = urllib.request.Request(self.base + path, headers=headers)
        return (opener or NO_REDIRECTS).open(request, timeout=10)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)


@pytest.fixture
def prod_env(tmp_path):
    env = production_env(tmp_path, CRM_PUBLIC_LOGIN_REQUIRED="0")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    return env


def test_gunicorn_serves_static_files_and_health_in_production_mode(prod_env):
    server = Server({**prod_env, "DJANGO_SECURE_SSL_REDIRECT": "0"})
    try:
        health = server.get("/health/")
        assert (health.status, health.read()[:3]) == (200, b"ok\n")
        css = server.get("/static/admin/css/base.css")
        assert css.status == 200
        assert css.headers["Content-Type"].startswith("text/css")
    finally:
        server.stop()


def test_production_mode_redirects_to_https_but_not_the_health_check(prod_env):
    server = Server(prod_env)
    try:
        with pytest.raises(urllib.error.HTTPError) as redirect:
            server.get("/clients/")
        assert redirect.value.code == 301
        assert redirect.value.headers["Location"].startswith("https://")
        assert server.get("/health/").status == 200
    finally:
        server.stop()


def test_behind_a_tls_proxy_pages_are_served_with_hsts(prod_env):
    env = {**prod_env, "DJANGO_SECURE_PROXY_SSL_HEADER": "1"}
    server = Server(env)
    try:
        page = server.get("/clients/", **{"X-Forwarded-Proto": "https"})
        assert page.status == 200
        assert "max-age=31536000" in page.headers["Strict-Transport-Security"]
    finally:
        server.stop()


@pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set (needs Redis)")
def test_edit_through_one_server_is_visible_through_another_at_once(prod_env):
    # Each run gets its own cache key space on the shared Redis.
    redis_url = REDIS_URL
    env = {
        **prod_env,
        "REDIS_URL": redis_url,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_CSRF_COOKIE_SECURE": "0",
        "DJANGO_CACHE_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    database = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO crm_client (name, email, phone, avatar, vip, created_at,"
            " updated_at) VALUES ('Before Edit', 'shared@mail.test', '', '', 0,"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        client_id = db.execute("SELECT id FROM crm_client").fetchone()[0]
    one, two = Server(env), Server(env)
    try:
        assert b"Before Edit" in one.get("/clients/").read()
        # A write that bypasses the app is not seen through either server: both
        # read the list from the one shared cache.
        with sqlite3.connect(database) as db:
            db.execute("UPDATE crm_client SET phone = '555-BYPASS'")
        assert b"555-BYPASS" not in two.get("/clients/").read()

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar), _NoRedirect
        )
        form = two.get(f"/clients/{client_id}/edit/", opener).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
        body = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token,
                "name": "After Edit",
                "email": "shared@mail.test",
                "phone": "555-0100",
            }
        ).encode()
        request = urllib.request.Request(
            f"{two.base}/clients/{client_id}/edit/",
            data=body,
            headers={"Referer": two.base + "/"},
        )
        with pytest.raises(urllib.error.HTTPError) as saved:
            opener.open(request, timeout=10)
        assert saved.value.code == 302

        html = one.get("/clients/").read().decode()
        assert "After Edit" in html and "Before Edit" not in html
    finally:
        one.stop()
        two.stop()


LOGIN_SESSION = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import get_user_model
user = get_user_model().objects.create_user("viewer", "v@acme.io", "pw-viewer-123")
session = import_module(settings.SESSION_ENGINE).SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "crm.permissions.CachedPermissionsBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def test_avatars_are_served_in_production_to_logged_in_users_only(prod_env, tmp_path):
    media = tmp_path / "media"
    (media / "avatars").mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    (media / "avatars" / "0123abcd.png").write_bytes(png)
    env = {
        **prod_env,
        "DJANGO_MEDIA_ROOT": str(media),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
    }
    session = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", LOGIN_SESSION],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()[-1]
    server = Server(env)
    try:
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            server.get("/media/avatars/0123abcd.png")
        assert anonymous.value.code == 302
        assert "/accounts/login/" in anonymous.value.headers["Location"]

        served = server.get(
            "/media/avatars/0123abcd.png", Cookie=f"sessionid={session}"
        )
        assert served.status == 200
        assert served.headers["Content-Type"] == "image/png"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert served.read() == png
    finally:
        server.stop()
