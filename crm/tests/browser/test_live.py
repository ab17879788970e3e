import pytest
from django.contrib.auth.models import Permission
from django.test import Client as DjangoClient
from playwright.sync_api import expect

from crm.models import Order

from .pages import admin_messages

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in_page(browser):
    """Return a factory of pages, each in its own browser, signed in as given."""
    contexts = []

    def new_page(base, user):
        context = browser.new_context(base_url=base)
        contexts.append(context)
        return _sign_in(context, base, user)

    yield new_page
    for context in contexts:
        context.close()


def _sign_in(context, base, user):
    http = DjangoClient()
    http.force_login(user)
    cookie = http.cookies["sessionid"]
    context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": base}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def add_order_in_admin(staff, client, title, amount):
    """Add an order on the client's admin page, as staff do."""
    staff.goto(f"/admin/crm/client/{client.pk}/change/")
    staff.locator("#orders-group .add-row a").click()
    staff.locator("input[name='orders-0-title']").fill(title)
    staff.locator("input[name='orders-0-amount']").fill(amount)
    staff.get_by_role("button", name="Save", exact=True).click()
    expect(admin_messages(staff)).to_contain_text("was changed successfully")


def live(page):
    """Wait until the page's live socket is open."""
    expect(page.locator("html")).to_have_attribute("data-crm-live", "open")


@pytest.fixture
def member(user):
    user.user_permissions.add(Permission.objects.get(codename="view_client"))
    return user


def test_a_new_order_appears_in_two_browsers_without_a_reload(
    signed_in_page, asgi_server, member, admin_user, make_client
):
    ann = make_client(name="Ann Archer", email="ann@mail.test")
    first = signed_in_page(asgi_server.url, member)
    second = signed_in_page(asgi_server.url, member)
    for page in (first, second):
        page.goto("/clients/")
        live(page)

    staff = signed_in_page(asgi_server.url, admin_user)
    add_order_in_admin(staff, ann, "Standing desk", "640.5")

    for page in (first, second):
        notice = page.locator(".crm-live-notice")
        expect(notice).to_contain_text(
            "New order: Ann Archer — Standing desk — 640.50", timeout=2_000
        )
    assert Order.objects.get().title == "Standing desk"


def test_a_page_reconnects_by_itself_after_a_server_restart(
    signed_in_page, asgi_server, member, admin_user, make_client
):
    page = signed_in_page(asgi_server.url, member)
    page.goto("/clients/")
    live(page)

    asgi_server.stop()
    expect(page.locator("html")).to_have_attribute("data-crm-live", "closed")
    asgi_server.start()
    live(page)

    ann = make_client(name="Ann Archer", email="ann@mail.test")
    add_order_in_admin(signed_in_page(asgi_server.url, admin_user), ann, "Later", "1")
    expect(page.locator(".crm-live-notice")).to_contain_text("Ann Archer — Later")
