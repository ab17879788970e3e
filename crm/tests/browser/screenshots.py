"""Save the README's screenshots: `pytest crm/tests/browser/screenshots.py`."""

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from crm.models import Client, Order

from .conftest import PHONE, sign_in
from .pages import admin_row, admin_rows, run_admin_action

# Not named test_*.py, so only an explicit run (make screenshots) takes them.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
WIDE = {"width": 1440, "height": 900}
# The usual laptop: the client changelist fits it without sideways scrolling.
LAPTOP = {"width": 1366, "height": 768}

MORE_CLIENTS = [
    ("Grace Okafor", "grace@okafor-logistics.ng", "+234 1 555 0142", "4100.00"),
    ("Hiroshi Tanaka", "h.tanaka@kaizen.jp", "+81 3 5555 0123", "860.00"),
    ("Ingrid Larsen", "ingrid@fjord.no", "", None),
    ("José Álvarez", "jose@alvarez.es", "+34 91 555 0188", "75.20"),
    ("Kofi Mensah", "kofi@mensah.gh", "+233 30 555 0101", "1999.99"),
    ("Lena Schmidt", "lena@company.com", "+49 30 5550 1234", "12500.00"),
]
DUPLICATES = [
    ("Alice M.", "alice.martin@acme.io", "", "99.00"),
    ("A. Martin", "amartin@acme.io", "+33 6 98 76 54 32", None),
]


def add_clients(rows):
    for name, email, phone, amount in rows:
        client = Client.objects.create(name=name, email=email, phone=phone)
        if amount:
            Order.objects.create(client=client, title="Consulting", amount=amount)


@pytest.fixture
def demo():
    call_command("loaddata", "demo", verbosity=0)
    add_clients(MORE_CLIENTS)


def save(page, name, **options):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", animations="disabled", **options)


@pytest.fixture
def signed_in(browser, base_url, live_server, admin_user):
    """Return a factory of pages signed in as a staff user, at a given size."""
    contexts = []

    def new_page(viewport=DESKTOP, **options):
        context = browser.new_context(base_url=base_url, viewport=viewport, **options)
        contexts.append(context)
        sign_in(context, live_server, admin_user)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


def test_client_list(signed_in, demo):
    page = signed_in()
    page.goto("/clients/")
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    save(page, "client-list", full_page=True)


def test_client_list_on_a_phone(signed_in, demo):
    page = signed_in(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto("/clients/")
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    save(page, "client-list-phone")


def test_form_with_errors(signed_in, demo):
    page = signed_in()
    page.goto("/clients/add/")
    page.get_by_label("Email").fill("mallory@EXAMPLE.com")
    page.get_by_label("Phone").fill("020 7946 0958")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".errorlist")).to_have_count(2)
    save(page, "client-form-errors", full_page=True)


def test_delete_confirmation(signed_in, demo):
    page = signed_in()
    farah = Client.objects.get(email="farah@haddad.dev")
    page.goto(f"/clients/{farah.pk}/delete/")
    expect(page.get_by_role("button", name="Confirm Delete")).to_be_visible()
    save(page, "client-delete-confirm", full_page=True)


def test_admin_changelist_with_filters(signed_in, demo):
    page = signed_in(LAPTOP)
    page.goto("/admin/crm/client/")
    created = page.locator("#created-form")
    created.get_by_placeholder("From date").fill("2026-09-01")
    created.get_by_placeholder("To date").fill("2026-10-31")
    created.get_by_role("button", name="Search").click()
    expect(admin_rows(page)).to_have_count(4)
    page.locator("#result_list thead").get_by_role("link", name="Total amount").click()
    page.locator("#result_list thead").get_by_role("link", name="Total amount").click()
    expect(admin_rows(page).first).to_contain_text("Bob Chen")
    save(page, "admin-changelist", full_page=True)


def test_admin_client_with_orders_inline(signed_in, demo):
    page = signed_in(WIDE)
    page.goto("/admin/crm/client/")
    page.get_by_role("link", name="Bob Chen", exact=True).click()
    expect(page.locator("#orders-group tr.has_original")).to_have_count(2)
    save(page, "admin-client-orders", full_page=True)


def test_merge_confirmation(signed_in, demo):
    add_clients(DUPLICATES)
    page = signed_in(WIDE)
    page.goto("/admin/crm/client/?q=martin")
    expect(admin_row(page, "A. Martin")).to_be_visible()
    run_admin_action(
        page, "Merge selected clients", "Alice Martin", "Alice M.", "A. Martin"
    )
    expect(page.get_by_role("heading", name="Merge clients")).to_be_visible()
    page.get_by_label("Alice Martin").check()
    save(page, "admin-merge-confirmation", full_page=True)


IMPORT_WITH_ERROR = (
    "name,email,phone\r\n"
    "Nadia Petrova,NADIA@petrova.bg,+359 2 555 0123\r\n"
    "Oscar Lindqvist,oscar@example.com,+46 8 555 0199\r\n"
    "Alice Martin,ALICE@acme.io,+33 612345678\r\n"
)


def upload(page, tmp_path, text):
    csv = tmp_path / "clients.csv"
    csv.write_text(text, encoding="utf-8")
    page.goto("/admin/crm/client/import/")
    page.locator("input[type=file]").set_input_files(csv)
    page.get_by_role("button", name="Submit").click()


def test_import_preview(signed_in, demo, tmp_path):
    page = signed_in(WIDE)
    upload(page, tmp_path, IMPORT_WITH_ERROR)
    bad_row = page.locator("table.import-preview tbody tr").first
    expect(bad_row.locator(".row-errors")).to_contain_text("example.com")
    save(page, "admin-import-errors", full_page=True)

    upload(
        page, tmp_path, IMPORT_WITH_ERROR.replace("oscar@example.com", "oscar@lq.se")
    )
    expect(page.get_by_role("button", name="Confirm import")).to_be_visible()
    save(page, "admin-import-preview", full_page=True)


LOOK_ALIKES = [
    ("alice  MARTIN", "alice@martin.fr", "0033 6 98 76 54 32", "250.00"),
    ("Emilie Dubois", "emilie+shop@boulangerie.fr", "", None),
]


def test_possible_duplicates(signed_in, demo):
    add_clients(DUPLICATES + LOOK_ALIKES)
    page = signed_in(WIDE)
    page.goto("/admin/crm/client/")
    page.get_by_role("link", name="Possible duplicates").click()
    page.get_by_role("link", name="Same name (2)").click()
    expect(page.locator(".duplicate-group")).to_have_count(2)
    save(page, "admin-duplicates", full_page=True)


def test_client_history(signed_in, demo):
    page = signed_in(WIDE)
    alice = Client.objects.get(email="alice@acme.io")
    page.goto(f"/admin/crm/client/{alice.pk}/change/")
    page.get_by_label("Phone").fill("+33 6 00 11 22 33")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("ul.messagelist li.success")).to_be_visible()
    page.goto(f"/admin/crm/client/{alice.pk}/history/")
    expect(page.locator("#change-history")).to_contain_text("Phone:")
    save(page, "admin-client-history", full_page=True)


def test_undo_merge(signed_in, demo, admin_user):
    from crm.services import client_merge

    add_clients(DUPLICATES)
    survivor = Client.objects.get(email="alice@acme.io")
    others = Client.objects.filter(
        email__in=["alice.martin@acme.io", "amartin@acme.io"]
    )
    record = client_merge(
        survivor=survivor, others=list(others), user=admin_user
    ).record
    page = signed_in(WIDE)
    page.goto(f"/admin/crm/mergerecord/{record.pk}/change/")
    page.get_by_role("link", name="Undo this merge…").click()
    expect(page.get_by_role("button", name="Undo the merge")).to_be_visible()
    save(page, "admin-undo-merge", full_page=True)
    page.get_by_role("button", name="Undo the merge").click()
    expect(page.locator("ul.messagelist li.success")).to_contain_text("Undid merge")


def test_new_order_notice(browser, asgi_server, admin_user, demo):
    from .test_live import _sign_in, add_order_in_admin

    watching = _sign_in(
        browser.new_context(base_url=asgi_server.url, viewport=DESKTOP),
        asgi_server.url,
        admin_user,
    )
    watching.goto("/clients/")
    expect(watching.locator("html")).to_have_attribute("data-crm-live", "open")
    staff = _sign_in(
        browser.new_context(base_url=asgi_server.url), asgi_server.url, admin_user
    )
    client = Client.objects.get(email="ingrid@fjord.no")  # no orders yet
    add_order_in_admin(staff, client, "Warehouse audit", "2400")
    expect(watching.locator(".crm-live-notice")).to_contain_text("Warehouse audit")
    save(watching, "live-new-order-notice")
    watching.context.close()
    staff.context.close()
