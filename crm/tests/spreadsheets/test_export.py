import csv
import io

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from crm.spreadsheets.columns import CLIENT_COLUMNS, names

HEADER = names(CLIENT_COLUMNS)


pytestmark = pytest.mark.django_db


EXPORT = reverse("clients:export")


def rows_of(response):
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_export_url_is_the_documented_one():
    assert EXPORT == "/clients/export.csv"


def test_export_streams_a_bom_prefixed_csv_attachment(logged_in, make_client):
    make_client(name="Zoë Ünal", email="zoe@mail.test")
    response = logged_in.get(EXPORT)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="clients.csv"'
    rows = rows_of(response)
    assert rows[0] == list(HEADER)
    assert rows[0] == (
        "id,name,email,phone,vip,created_at,order_count,total_amount".split(",")
    )
    assert rows[1][1] == "Zoë Ünal"


def test_export_row_has_totals_with_two_decimals(logged_in, make_client, make_order):
    client = make_client(name="Ann", email="ann@company.com", phone="+1 555")
    make_order(client, amount="10.5")
    make_order(client, amount="20.00")
    make_client(name="Idle")
    rows = {row[2]: row for row in rows_of(logged_in.get(EXPORT))[1:]}
    ann = rows["ann@company.com"]
    assert ann[0] == str(client.pk)
    assert ann[1:5] == ["Ann", "ann@company.com", "'+1555", "1"]
    assert ann[5] == client.created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert ann[6:] == ["2", "30.50"]
    idle = next(row for row in rows.values() if row[1] == "Idle")
    assert (idle[4], idle[6], idle[7]) == ("0", "0", "0.00")


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_export_escapes_formula_cells(logged_in, make_client, prefix):
    make_client(name=f"{prefix}HYPERLINK(1)", phone=f"{prefix}1")
    row = rows_of(logged_in.get(EXPORT))[1]
    assert row[1] == f"'{prefix}HYPERLINK(1)"
    # Phones are stored without separators: "-", tab and CR are gone.
    assert row[3] == (f"'{prefix}1" if prefix in "=+@" else "1")


def test_export_honours_the_search(logged_in, make_client):
    make_client(name="Alpha", email="alpha@mail.test")
    make_client(name="Beta", email="beta@mail.test")
    make_client(name="Gamma", email="100%_off@mail.test")
    rows = rows_of(logged_in.get(EXPORT, {"q": "alp"}))
    assert [row[1] for row in rows[1:]] == ["Alpha"]
    rows = rows_of(logged_in.get(EXPORT, {"q": "%_"}))
    assert [row[1] for row in rows[1:]] == ["Gamma"]


@pytest.mark.parametrize("q", ["\x00", "'; DROP TABLE crm_client; --", "é" * 500, "%"])
def test_export_survives_odd_searches(logged_in, make_client, q):
    make_client(name="Alpha")
    response = logged_in.get(EXPORT, {"q": q})
    assert response.status_code == 200
    assert rows_of(response)[0] == list(HEADER)


def test_export_of_no_clients_is_just_the_header(logged_in):
    assert rows_of(logged_in.get(EXPORT)) == [list(HEADER)]


def test_export_spans_several_database_chunks(logged_in, make_client, monkeypatch):
    monkeypatch.setattr("crm.spreadsheets.export.CHUNK_SIZE", 3)
    for _ in range(8):
        make_client()
    response = logged_in.get(EXPORT)
    chunks = list(response.streaming_content)
    assert len(chunks) > 1
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(rows) == 9
    assert len({row[0] for row in rows[1:]}) == 8


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_export_is_open_when_login_is_not_required(client, settings, make_client):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    make_client(name="Open")
    assert rows_of(client.get(EXPORT))[1][1] == "Open"


def test_list_page_links_to_the_export_keeping_the_search(logged_in):
    response = logged_in.get(reverse("clients:list"), {"q": "a&b"})
    assert b'href="/clients/export.csv?q=a%26b"' in response.content
    assert b"Export CSV" in response.content
    response = logged_in.get(reverse("clients:list"))
    assert b'href="/clients/export.csv"' in response.content


@pytest.mark.django_db(transaction=True)
def test_the_export_reads_its_rows_inside_a_transaction(make_client, monkeypatch):
    # Outside one, PostgreSQL computes the whole result of the export's
    # server-side cursor (WITH HOLD) before sending its first row.
    from django.db import connection

    from crm.spreadsheets.export import client_csv_chunks

    monkeypatch.setattr("crm.spreadsheets.export.CHUNK_SIZE", 2)
    for _ in range(5):
        make_client()
    chunks = client_csv_chunks("")
    next(chunks)
    try:
        assert connection.in_atomic_block
    finally:
        chunks.close()
    assert not connection.in_atomic_block
