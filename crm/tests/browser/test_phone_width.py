import pytest
from playwright.sync_api import expect

from .conftest import PHONE
from .pages import scrolls_sideways

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_EMAIL = "firstname.middlename.lastname.department@subsidiary-holdings.example.org"


@pytest.fixture
def crowded_list(make_client, make_order):
    for _ in range(12):
        make_client()
    make_client(name="Boss", email="boss@company.com")
    busy = make_client(
        name="Konstantinopolitanische Dudelsackpfeifenmachergesellschaft mbH",
        email=LONG_EMAIL,
        phone="+49 30 1234567",
    )
    make_order(busy, "1234567.89")
    return busy


def test_phone_width_list_has_no_horizontal_scrolling(phone_page, crowded_list):
    page = phone_page
    page.goto("/clients/")
    assert page.viewport_size == PHONE
    expect(page.get_by_role("heading", name="Clients")).to_be_visible()
    expect(page.get_by_text(LONG_EMAIL)).to_be_visible()
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    assert not scrolls_sideways(page)
    # Column headers are hidden on a phone; each value carries its own label.
    expect(page.locator("thead")).to_be_hidden()
    expect(
        page.locator("tbody tr").first.locator("td[data-label=Email]")
    ).to_be_visible()
    for link in ("Add client", "Edit", "Delete"):
        box = page.get_by_role("link", name=link).first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], link


def test_phone_width_form_with_errors_has_no_horizontal_scrolling(
    phone_page, crowded_list
):
    page = phone_page
    page.goto("/clients/add/")
    page.get_by_label("Name").fill("Someone New")
    page.get_by_label("Email").fill("BOSS@company.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("A client with this email already exists.")).to_be_visible()
    assert not scrolls_sideways(page)


def test_phone_width_delete_page_has_no_horizontal_scrolling(phone_page, make_client):
    client = make_client(name="Short Name", email="short@mail.test")
    page = phone_page
    page.goto(f"/clients/{client.pk}/delete/")
    expect(page.get_by_role("button", name="Confirm Delete")).to_be_visible()
    assert not scrolls_sideways(page)


def test_phone_width_long_name_and_email_wrap_on_edit_and_delete_pages(
    phone_page, crowded_list
):
    page = phone_page
    page.goto(f"/clients/{crowded_list.pk}/edit/")
    expect(
        page.get_by_role("heading", name="Edit Konstantinopolitanische")
    ).to_be_visible()
    edit_scrolls = scrolls_sideways(page)
    page.goto(f"/clients/{crowded_list.pk}/delete/")
    expect(page.get_by_text("has orders and cannot be deleted")).to_be_visible()
    expect(page.get_by_text(LONG_EMAIL)).to_be_visible()
    assert (edit_scrolls, scrolls_sideways(page)) == (False, False)


def test_phone_width_login_page_has_no_horizontal_scrolling(new_phone_page):
    page = new_phone_page()
    page.goto("/clients/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert not scrolls_sideways(page)


def test_phone_width_admin_changelist_has_no_horizontal_scrolling(
    new_phone_page, admin_user, crowded_list
):
    page = new_phone_page(admin_user)
    page.goto("/admin/crm/client/")
    expect(page.get_by_text(LONG_EMAIL)).to_be_visible()
    assert not scrolls_sideways(page)
