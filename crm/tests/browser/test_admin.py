import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Client, Order

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
