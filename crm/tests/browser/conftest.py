"""Fixtures for the browser tests: Debian's Chromium driven by Playwright."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client as DjangoClient

# Between calls, Playwright's sync API leaves its event loop marked as running
# in the main thread, so Django would refuse the tests' own ORM calls. It stays
# that way until the session ends, which is why this is process-wide.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}


def chromium_missing_reason():
    """Return why the browser tests cannot run here, or '' when they can."""
    if os.access(CHROMIUM, os.X_OK):
        return ""
    return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"


@pytest.fixture(scope="session", autouse=True)
def _chromium():
    # Session-scoped and autouse, so it runs before Playwright starts.
    reason = chromium_missing_reason()
    if reason and os.environ.get("CRM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; CRM_REQUIRE_BROWSER=1 needs it", pytrace=False)
    if reason:
        pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    reason = chromium_missing_reason()
    if report.skipped and reason and isinstance(report.longrepr, tuple):
        # One summary line for all of them instead of one per test.
        line = chromium_missing_reason.__code__.co_firstlineno
        report.longrepr = (__file__, line, f"Skipped: {reason}")
    return report


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Users are made (and one logs in) in nearly every test; PBKDF2 is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def page(page):
    page.set_default_timeout(10_000)
    return page


@pytest.fixture(scope="session")
def base_url(live_server):
    """Let pages open paths (``page.goto("/clients/")``) on the live server."""
    return live_server.url


def sign_in(context, live_server, user):
    """Give the browser context a session cookie for ``user``."""
    http = DjangoClient()
    http.force_login(user)
    cookie = http.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
    )


@pytest.fixture
def member_page(page, live_server, user):
    """Return a page signed in as a team member (no admin access)."""
    sign_in(page.context, live_server, user)
    return page


@pytest.fixture
def staff_page(page, live_server, admin_user):
    """Return a page signed in as a superuser."""
    sign_in(page.context, live_server, admin_user)
    return page


@pytest.fixture
def new_phone_page(browser, base_url, live_server):
    """Return a factory of pages in phone-sized touch contexts, signed in as given."""
    contexts = []

    def new_page(user=None):
        context = browser.new_context(
            base_url=base_url,
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
            device_scale_factor=3,
        )
        contexts.append(context)
        if user is not None:
            sign_in(context, live_server, user)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture
def phone_page(new_phone_page, user):
    """Return a phone-sized page signed in as a team member."""
    return new_phone_page(user)


class AsgiServer:
    """The whole ASGI site (pages and websockets) served by uvicorn from a thread.

    pytest-django's live server speaks WSGI only; this one runs in the test
    process, so it shares the test database and the in-memory channel layer,
    as ``make run`` does with Daphne. It can stop and start on its port, as a
    restarted server would.
    """

    def __init__(self):
        from channels.routing import ProtocolTypeRouter
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        from crm_site.asgi import application as site

        # The production application, with static files served as in DEBUG.
        self.app = ProtocolTypeRouter(
            {
                "http": ASGIStaticFilesHandler(site.application_mapping["http"]),
                "websocket": site.application_mapping["websocket"],
            }
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = self.thread = None

    def start(self):
        import threading

        import uvicorn

        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            threading.Event().wait(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def asgi_server(live_server):
    server = AsgiServer()
    server.start()
    yield server
    server.stop()


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
