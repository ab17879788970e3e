import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Client, Order

from ..conftest import image_upload
from .conftest import sign_in
from .pages import admin_column, admin_messages, admin_row, admin_rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def created_on(obj, *day):
    moment = timezone.make_aware(datetime.datetime(*day, 12, 0))
    type(obj).objects.filter(pk=obj.pk).update(created_at=moment)


@pytest.fixture
def three_clients(make_client, make_order):
    ann = make_client(name="Ann Archer", email="ann@mail.test")
    make_order(ann, "10.50", title="Desk")
    make_order(ann, "20.00", title="Chair", status=Order.Status.DONE)
    bob = make_client(name="Bob Baker", email="bob@mail.test")
    make_order(bob, "99.99", title="Lamp")
    cat = make_client(name="Cat Cooper", email="cat@company.com")
    created_on(ann, 2024, 1, 10)
    created_on(bob, 2024, 6, 15)
    created_on(cat, 2025, 3, 1)
    return ann, bob, cat


def test_staff_see_order_count_and_total_on_the_client_changelist(
    staff_page, three_clients
):
    page = staff_page
    page.goto("/admin/")
    page.get_by_role("link", name="Clients").first.click()
    expect(page.get_by_role("heading", name="Select client to change")).to_be_visible()
    header = page.locator("#result_list thead")
    expect(header).to_contain_text("Orders")
    expect(header).to_contain_text("Total amount")

    expect(admin_row(page, "Ann Archer").locator("td.field-order_count")).to_have_text(
        "2"
    )
    expect(admin_row(page, "Ann Archer").locator("td.field-total_amount")).to_have_text(
        "30.50"
    )
    expect(admin_row(page, "Bob Baker").locator("td.field-total_amount")).to_have_text(
        "99.99"
    )
    expect(admin_row(page, "Cat Cooper").locator("td.field-order_count")).to_have_text(
        "0"
    )
    expect(admin_row(page, "Cat Cooper").locator("td.field-total_amount")).to_have_text(
        "0.00"
    )

    page.locator("#result_list thead").get_by_role("link", name="Total amount").click()
    expect(admin_column(page, "total_amount")).to_have_text(["0.00", "30.50", "99.99"])


def test_date_range_filter_narrows_the_client_changelist(staff_page, three_clients):
    page = staff_page
    page.goto("/admin/crm/client/")
    expect(admin_rows(page)).to_have_count(3)

    created = page.locator("#created-form")
    created.get_by_placeholder("From date").fill("2024-06-01")
    created.get_by_placeholder("To date").fill("2024-12-31")
    created.get_by_role("button", name="Search").click()

    expect(page).to_have_url(
        re.compile(
            r"created_at__range__gte=2024-06-01&created_at__range__lte=2024-12-31"
        )
    )
    expect(admin_rows(page)).to_have_count(1)
    expect(admin_row(page, "Bob Baker")).to_be_visible()
    expect(page.get_by_placeholder("From date")).to_have_value("2024-06-01")

    created = page.locator("#created-form")
    created.get_by_placeholder("To date").fill("")
    created.get_by_role("button", name="Search").click()
    expect(admin_rows(page)).to_have_count(2)
    expect(admin_row(page, "Ann Archer")).to_have_count(0)

    open_orders = page.locator("details[data-filter-title='has open orders']")
    open_orders.get_by_role("link", name="Yes").click()
    expect(admin_rows(page)).to_have_count(1)
    expect(admin_row(page, "Bob Baker")).to_be_visible()


def test_client_page_shows_and_edits_its_orders_inline(staff_page, three_clients):
    page = staff_page
    page.goto("/admin/crm/client/")
    page.get_by_role("link", name="Ann Archer", exact=True).click()
    expect(
        page.get_by_role("heading", name="Ann Archer <ann@mail.test>")
    ).to_be_visible()

    orders = page.locator("#orders-group")
    expect(orders.get_by_role("heading", name="Orders")).to_be_visible()
    titles = orders.locator("tr.has_original input[name$='-title']")
    expect(titles).to_have_count(2)
    desk = orders.locator("tr.has_original").filter(
        has=page.locator("input[value=Desk]")
    )
    expect(desk.locator("input[name$='-amount']")).to_have_value("10.50")

    desk.locator("input[name$='-amount']").fill("15.25")
    desk.locator("select[name$='-status']").select_option(label="In progress")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(admin_messages(page)).to_contain_text("was changed successfully")
    expect(admin_row(page, "Ann Archer").locator("td.field-total_amount")).to_have_text(
        "35.25"
    )
    desk_order = Order.objects.get(title="Desk")
    assert desk_order.status == Order.Status.IN_PROGRESS
    assert Client.objects.get(name="Ann Archer").orders.count() == 2


DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture
def desktop_staff_page(browser, live_server, admin_user):
    """Return a page 1366 px wide (the usual laptop), signed in as a superuser."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    sign_in(context, live_server, admin_user)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_client_changelist_fits_a_1366_px_screen(
    desktop_staff_page, make_client, make_order
):
    for n in range(25):
        client = make_client(
            name=f"Maximilian Alexander von Hohenzollern-Sigmaringen {n}",
            email=f"maximilian.alexander.{n}@very-long-company-domain.example.org",
            phone="+44 20 7946 0958",
            avatar=image_upload() if n % 2 else "",
        )
        make_order(client, "1234567.89")
    page = desktop_staff_page
    page.goto("/admin/crm/client/")
    expect(admin_rows(page)).to_have_count(25)

    widths = page.evaluate(
        """() => {
          const results = document.querySelector('#changelist .results');
          return {
            page: document.documentElement.scrollWidth
                  - document.documentElement.clientWidth,
            table: results.scrollWidth - results.clientWidth,
            lastColumnEnd: document.querySelector('th.column-avatar_thumbnail')
                           .getBoundingClientRect().right,
          };
        }"""
    )
    assert widths["page"] <= 0 and widths["table"] <= 0, widths
    assert widths["lastColumnEnd"] <= DESKTOP["width"], widths
    expect(page.locator("th.column-created_at")).to_be_in_viewport()
    # The avatars load (served to the logged-in user).
    avatar = page.locator("td.field-avatar_thumbnail img").first
    expect(avatar).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", avatar.element_handle()) > 0


@pytest.mark.parametrize("changelist", ["/admin/crm/client/", "/admin/crm/order/"])
def test_both_created_filters_pick_dates_from_the_admin_calendar(
    desktop_staff_page, three_clients, changelist
):
    page = desktop_staff_page
    page.goto(changelist)
    created = page.locator("#created-form")
    calendar_links = created.locator("a[id^=calendarlink]")
    expect(calendar_links).to_have_count(2)  # from and to

    calendar_links.first.click()
    calendar = page.locator(".calendarbox").filter(has=page.locator("table")).first
    expect(calendar).to_be_visible()
    calendar.get_by_role("link", name="15", exact=True).click()
    expect(created.get_by_placeholder("From date")).to_have_value(
        re.compile(r"^\d{4}-\d{2}-15$")
    )
    expect(calendar).to_be_hidden()


def test_the_admin_is_titled_mini_crm(desktop_staff_page):
    page = desktop_staff_page
    page.goto("/admin/")
    expect(page).to_have_title(re.compile(r"Mini CRM"))
    expect(page.locator("#site-name")).to_have_text("Mini CRM")
    expect(
        page.get_by_role("heading", name="Mini CRM", exact=True).first
    ).to_be_visible()
