import csv

import pytest

from .pages import read_download

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPORT_HEADER = "id,name,email,phone,vip,created_at,order_count,total_amount"


def test_public_export_downloads_the_searched_clients(
    member_page, make_client, make_order
):
    ann = make_client(name="Ann Archer", email="ann@mail.test")
    make_order(ann, "10.50")
    make_order(ann, "20.00")
    make_client(name="Bob Baker", email="bob@other.test")
    page = member_page
    page.goto("/clients/")
    page.get_by_role("searchbox", name="Search clients").fill("archer")
    page.get_by_role("button", name="Search").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename == "clients.csv"

    body = read_download(download)
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == EXPORT_HEADER
    rows = list(csv.DictReader(lines))
    assert [(r["name"], r["email"]) for r in rows] == [("Ann Archer", "ann@mail.test")]
    assert (rows[0]["order_count"], rows[0]["total_amount"]) == ("2", "30.50")
