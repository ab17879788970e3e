import re

import pytest
from playwright.sync_api import expect

from crm.models import Client

from .pages import path_is, public_row, public_rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_anonymous_visitor_logs_in_and_lands_on_the_client_list(
    page, user, make_client
):
    make_client(name="Ada Lovelace", email="ada@acme.io")
    page.goto("/clients/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/clients/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Please enter a correct username")).to_be_visible()

    page.get_by_label("Password").fill("pw-for-tests-1")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(path_is("/clients/"))
    expect(page.get_by_role("heading", name="Clients")).to_be_visible()
    expect(public_row(page, "Ada Lovelace")).to_contain_text("ada@acme.io")
    expect(page.locator("header")).to_contain_text("sam")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(path_is("/accounts/login/"))
    page.goto("/clients/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))


def test_added_client_is_flashed_and_listed_with_lowercased_email(member_page):
    page = member_page
    page.goto("/clients/")
    expect(page.get_by_text("No clients found")).to_be_visible()
    page.get_by_role("link", name="Add client").click()
    expect(page.get_by_role("heading", name="Add client")).to_be_visible()

    page.get_by_label("Name").fill("Upper Case")
    page.get_by_label("Email").fill("USER@MAIL.COM")
    page.get_by_label("Phone").fill("+1 555 0100")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(path_is("/clients/"))
    expect(page.locator(".messages li.success")).to_have_text(
        "Client Upper Case <user@mail.com> was added."
    )
    row = public_row(page, "Upper Case")
    expect(row).to_contain_text("user@mail.com")
    expect(row).not_to_contain_text("USER@MAIL.COM")
    expect(row).to_contain_text("+15550100")  # separators dropped
    assert Client.objects.get().email == "user@mail.com"

    page.reload()
    expect(page.locator(".messages")).to_have_count(0)


def test_blocked_domain_shows_the_error_on_the_email_field(member_page):
    page = member_page
    page.goto("/clients/add/")
    page.get_by_label("Name").fill("Blocked Person")
    page.get_by_label("Email").fill("x@example.com")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(path_is("/clients/add/"))
    error = page.locator(".errorlist").filter(has_text="example.com")
    expect(error).to_have_text("Email addresses at example.com are not accepted.")
    email = page.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(
        "Email addresses at example.com are not accepted."
    )
    expect(page.get_by_label("Name")).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_value("Blocked Person")
    expect(page.get_by_label("Email")).to_have_value("x@example.com")
    assert not Client.objects.exists()


def test_duplicate_email_in_other_case_shows_the_error_on_the_form(
    member_page, make_client
):
    make_client(name="First", email="dup@mail.test")
    page = member_page
    page.goto("/clients/add/")
    page.get_by_label("Name").fill("Second")
    page.get_by_label("Email").fill("DUP@Mail.Test")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".errorlist")).to_have_text(
        "A client with this email already exists."
    )
    assert Client.objects.count() == 1


def test_search_and_pages_keep_the_query(member_page, make_client):
    for n in range(25):
        make_client(name=f"Match {n:02d}", email=f"match{n:02d}@mail.test")
    for n in range(3):
        make_client(name=f"Other {n}", email=f"other{n}@mail.test")
    page = member_page
    page.goto("/clients/")
    expect(page.get_by_text("Page 1 of 3")).to_be_visible()
    expect(public_rows(page)).to_have_count(10)

    page.get_by_role("searchbox", name="Search clients").fill("match")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"\?q=match$"))
    expect(page.get_by_text("Page 1 of 3")).to_be_visible()
    expect(public_rows(page)).to_have_count(10)
    expect(page.locator("nav.pagination a[rel=prev]")).to_have_count(0)

    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"\?q=match&page=2$"))
    expect(page.get_by_text("Page 2 of 3")).to_be_visible()
    expect(page.get_by_role("searchbox", name="Search clients")).to_have_value("match")
    expect(public_rows(page)).to_have_count(10)
    expect(public_rows(page).filter(has_text="Other")).to_have_count(0)
    page_two = set(public_rows(page).locator("td[data-label=Name]").all_inner_texts())

    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"\?q=match&page=3$"))
    expect(page.get_by_text("Page 3 of 3")).to_be_visible()
    expect(public_rows(page)).to_have_count(5)
    expect(page.locator("nav.pagination a[rel=next]")).to_have_count(0)
    page_three = set(public_rows(page).locator("td[data-label=Name]").all_inner_texts())
    assert not page_two & page_three

    page.get_by_role("link", name="Previous").click()
    expect(page).to_have_url(re.compile(r"\?q=match&page=2$"))

    page.get_by_role("searchbox", name="Search clients").fill("other")
    page.get_by_role("button", name="Search").click()
    expect(public_rows(page)).to_have_count(3)
    expect(page.locator("nav.pagination")).to_have_count(0)

    page.get_by_role("searchbox", name="Search clients").fill("nobody")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No clients found for “nobody”.")).to_be_visible()


def test_out_of_range_page_shows_the_last_page(member_page, make_client):
    for _ in range(12):
        make_client()
    member_page.goto("/clients/?page=99")
    expect(member_page.get_by_text("Page 2 of 2")).to_be_visible()


def test_edit_then_delete_through_the_confirmation_page(member_page, make_client):
    make_client(name="Old Name", email="old@mail.test")
    make_client(name="Bystander", email="by@mail.test")
    page = member_page
    page.goto("/clients/")
    public_row(page, "Old Name").get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit Old Name")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value("old@mail.test")
    page.get_by_label("Name").fill("New Name")
    page.get_by_label("Email").fill("NEW@Mail.Test")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(path_is("/clients/"))
    expect(page.locator(".messages li.success")).to_have_text(
        "Client New Name <new@mail.test> was saved."
    )
    expect(public_row(page, "New Name")).to_contain_text("new@mail.test")
    expect(public_row(page, "Old Name")).to_have_count(0)

    public_row(page, "New Name").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete client")).to_be_visible()
    expect(page.locator(".card")).to_contain_text(
        "Are you sure you want to delete New Name <new@mail.test>?"
    )
    page.get_by_role("link", name="Cancel").click()
    expect(public_row(page, "New Name")).to_have_count(1)

    public_row(page, "New Name").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Confirm Delete").click()
    expect(page).to_have_url(path_is("/clients/"))
    expect(page.locator(".messages li.success")).to_have_text(
        "Client New Name <new@mail.test> was deleted."
    )
    expect(public_row(page, "New Name")).to_have_count(0)
    expect(public_row(page, "Bystander")).to_have_count(1)
    assert list(Client.objects.values_list("name", flat=True)) == ["Bystander"]


def test_client_with_orders_cannot_be_deleted(member_page, make_client, make_order):
    client = make_client(name="Busy Buyer", email="busy@mail.test")
    make_order(client, "30.50")
    page = member_page
    page.goto("/clients/")
    row = public_row(page, "Busy Buyer")
    expect(row.locator("td[data-label=Orders]")).to_have_text("1")
    expect(row.locator("td[data-label=Total]")).to_have_text("30.50")
    row.get_by_role("link", name="Delete").click()

    card = page.locator(".card")
    expect(card).to_contain_text("has orders and cannot be deleted")
    expect(card).to_contain_text("Merge the client into another one in the admin")
    expect(page.get_by_role("button", name="Confirm Delete")).to_have_count(0)
    page.get_by_role("link", name="Back to the list").click()
    expect(public_row(page, "Busy Buyer")).to_have_count(1)
    assert Client.objects.filter(pk=client.pk).exists()


def test_delete_refused_when_an_order_arrives_after_the_page_opened(
    member_page, make_client, make_order
):
    client = make_client(name="Late Order", email="late@mail.test")
    page = member_page
    page.goto(f"/clients/{client.pk}/delete/")
    expect(page.get_by_role("button", name="Confirm Delete")).to_be_visible()
    make_order(client)
    page.get_by_role("button", name="Confirm Delete").click()

    expect(page.locator(".messages li.error")).to_contain_text(
        "has orders and cannot be deleted"
    )
    expect(page.locator(".card")).to_contain_text("Merge the client")
    assert Client.objects.filter(pk=client.pk).exists()


def test_a_view_only_colleague_sees_the_list_without_the_buttons_they_cannot_use(
    page, live_server, nobody, make_client
):
    from django.contrib.auth.models import Permission

    from .conftest import sign_in

    nobody.user_permissions.add(Permission.objects.get(codename="view_client"))
    client = make_client(name="Ada Lovelace", email="ada@acme.io")
    sign_in(page.context, live_server, nobody)
    page.goto("/clients/")
    expect(public_row(page, "Ada Lovelace")).to_be_visible()
    for name in ("Add client", "Export CSV", "Edit", "Delete"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)

    response = page.goto(f"/clients/{client.pk}/edit/")
    assert response.status == 403
