import pytest
from playwright.sync_api import expect

from crm.models import Client, Order

from .pages import admin_messages, admin_row, admin_rows, run_admin_action

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def duplicates(make_client, make_order):
    ann = make_client(name="Ann Archer", email="ann@mail.test", phone="+1 555 0100")
    make_order(ann, "10.00", title="Desk")
    bob = make_client(name="Ann A.", email="ann.archer@mail.test")
    make_order(bob, "5.00", title="Chair")
    make_order(bob, "7.50", title="Lamp", status=Order.Status.DONE)
    cat = make_client(name="A. Archer", email="ann@company.com")
    make_order(cat, "2.25", title="Pen")
    make_client(name="Dan Bystander", email="dan@mail.test")
    return ann, bob, cat


def test_merge_three_clients_into_the_chosen_survivor(staff_page, duplicates):
    ann, bob, cat = duplicates
    page = staff_page
    page.goto("/admin/crm/client/")
    run_admin_action(
        page, "Merge selected clients", "Ann Archer", "Ann A.", "A. Archer"
    )

    expect(page.get_by_role("heading", name="Merge clients")).to_be_visible()
    choices = page.locator("form tbody tr")
    expect(choices).to_have_count(3)
    expect(choices.filter(has_text="ann.archer@mail.test")).to_contain_text("12.50")
    expect(
        choices.filter(has_text="ann.archer@mail.test").locator("td.order-count")
    ).to_have_text("2")
    # The oldest client is preselected.
    expect(page.get_by_label("Ann Archer")).to_be_checked()

    page.get_by_label("Ann A.").check()
    page.get_by_role("button", name="Confirm merge").click()

    expect(admin_messages(page)).to_have_text(
        "Merged 2 clients into “Ann A. <ann.archer@mail.test>”; moved 2 orders. "
        "Undo it…"
    )
    expect(admin_rows(page)).to_have_count(2)
    survivor = admin_row(page, "Ann A.")
    expect(survivor.locator("td.field-order_count")).to_have_text("4")
    expect(survivor.locator("td.field-total_amount")).to_have_text("24.75")
    expect(survivor.locator("td.field-phone")).to_have_text("+15550100")
    expect(survivor.locator("td.field-vip img")).to_have_attribute("alt", "True")
    expect(admin_row(page, "Dan Bystander")).to_be_visible()

    assert list(Client.objects.order_by("name").values_list("name", flat=True)) == [
        "Ann A.",
        "Dan Bystander",
    ]
    assert set(Order.objects.values_list("client_id", flat=True)) == {bob.pk}


def test_merge_can_be_cancelled_from_the_confirmation_page(staff_page, duplicates):
    page = staff_page
    page.goto("/admin/crm/client/")
    run_admin_action(page, "Merge selected clients", "Ann Archer", "Ann A.")
    expect(page.get_by_role("heading", name="Merge clients")).to_be_visible()
    page.get_by_role("link", name="No, take me back").click()
    expect(page.get_by_role("heading", name="Select client to change")).to_be_visible()
    expect(admin_rows(page)).to_have_count(4)
    assert Client.objects.count() == 4


def test_merge_of_one_client_is_refused_with_a_warning(staff_page, duplicates):
    page = staff_page
    page.goto("/admin/crm/client/")
    run_admin_action(page, "Merge selected clients", "Ann Archer")
    expect(admin_messages(page, "warning")).to_have_text(
        "Select at least two clients to merge."
    )
    expect(admin_rows(page)).to_have_count(4)
