import csv
import io

import pytest
from playwright.sync_api import expect

from crm.models import Client

from .pages import admin_messages, admin_row, read_download

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


WITH_BAD_ROW = (
    "name,email,phone\r\n"
    "Nadia Petrova,NADIA@Petrova.bg,+359 2 555 0123\r\n"
    "Oscar Lindqvist,oscar@example.com,+46 8 555 0199\r\n"
    "Ann Archer,ANN@mail.test,+1 555 0199\r\n"
)


@pytest.fixture
def ann(make_client, make_order):
    ann = make_client(name="Ann Archer", email="ann@mail.test", phone="+1 555 0100")
    make_order(ann, "10.50")
    make_order(ann, "20.00")
    return ann


def upload(page, tmp_path, text):
    csv_file = tmp_path / "clients.csv"
    csv_file.write_bytes(text.encode("utf-8-sig"))
    page.locator("input[type=file]").set_input_files(csv_file)
    page.get_by_role("button", name="Submit").click()


def test_import_reports_the_bad_row_then_imports_the_fixed_file(
    staff_page, ann, tmp_path
):
    page = staff_page
    page.goto("/admin/crm/client/")
    page.get_by_role("link", name="Import").click()
    expect(page.get_by_role("heading", name="Import")).to_be_visible()

    upload(page, tmp_path, WITH_BAD_ROW)
    expect(
        page.get_by_role("heading", name="Some rows failed to validate")
    ).to_be_visible()
    bad_rows = page.locator("table.import-preview tbody tr")
    expect(bad_rows).to_have_count(1)
    bad = bad_rows.first
    expect(bad.locator("td").first).to_have_text("2")
    expect(bad).to_contain_text("oscar@example.com")
    # The reason shows in the row itself, not behind a hover.
    expect(bad.locator(".row-errors")).to_contain_text(
        "email: Email addresses at example.com are not accepted."
    )
    expect(page.get_by_text("1 with errors")).to_be_visible()
    expect(page.get_by_role("button", name="Confirm import")).to_have_count(0)
    assert list(Client.objects.values_list("email", flat=True)) == ["ann@mail.test"]

    upload(page, tmp_path, WITH_BAD_ROW.replace("oscar@example.com", "oscar@lq.se"))
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    preview = page.locator("table.import-preview tbody tr")
    expect(preview).to_have_count(3)
    expect(
        preview.filter(has_text="Nadia Petrova").locator("td.import-type")
    ).to_have_text("New")
    ann_row = preview.filter(has_text="Ann Archer")
    expect(ann_row.locator("td.import-type")).to_have_text("Update")
    expect(ann_row).to_contain_text("+15550100 → +15550199")
    assert Client.objects.count() == 1

    page.get_by_role("button", name="Confirm import").click()
    expect(admin_messages(page)).to_contain_text("Import finished")
    expect(admin_row(page, "Nadia Petrova")).to_contain_text("nadia@petrova.bg")
    expect(admin_row(page, "Oscar Lindqvist")).to_contain_text("oscar@lq.se")
    updated = admin_row(page, "Ann Archer")
    expect(updated.locator("td.field-phone")).to_have_text("+15550199")
    expect(updated.locator("td.field-order_count")).to_have_text("2")
    assert sorted(Client.objects.values_list("email", flat=True)) == [
        "ann@mail.test",
        "nadia@petrova.bg",
        "oscar@lq.se",
    ]


def test_admin_export_downloads_a_csv(staff_page, ann, make_client):
    make_client(name="=1+2", email="formula@mail.test")
    page = staff_page
    page.goto("/admin/crm/client/")
    page.get_by_role("link", name="Export").click()
    expect(page.get_by_role("heading", name="Export")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("button", name="Submit").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")

    rows = list(
        csv.DictReader(io.StringIO(read_download(download).decode("utf-8-sig")))
    )
    by_email = {row["email"]: row for row in rows}
    assert set(by_email) == {"ann@mail.test", "formula@mail.test"}
    assert by_email["ann@mail.test"]["name"] == "Ann Archer"
    assert by_email["ann@mail.test"]["order_count"] == "2"
    assert by_email["ann@mail.test"]["total_amount"] == "30.50"
    assert by_email["formula@mail.test"]["name"] == "'=1+2"
