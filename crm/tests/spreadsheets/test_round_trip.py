from decimal import Decimal

import pytest

from crm.models import Client, Order
from crm.spreadsheets.columns import CLIENT_COLUMNS, ORDER_COLUMNS
from crm.spreadsheets.export import csv_chunks
from crm.spreadsheets.files import row_error_lines
from crm.spreadsheets.resources import ClientResource, OrderResource

pytestmark = pytest.mark.django_db

# Values the forms accept that a spreadsheet would take for formulae, or that
# look like our own escaping.
TRICKY_CLIENTS = (
    {"name": "'=already quoted", "email": "+sales@plus.io", "phone": "+33 1 23"},
    {"name": "=SUM(A1:A2)", "email": "-dash@qa.io", "phone": ""},
    {"name": "@home", "email": "=eq@mail.test", "phone": "+1 555"},
    {"name": "''=two quotes", "email": "o'neil@mail.test", "phone": ""},
    {"name": "'plain quote", "email": "plain@mail.test", "phone": ""},
    {"name": 'Quote "in" name, and comma', "email": "q@mail.test", "phone": ""},
    {"name": "Two\nlines", "email": "two@mail.test", "phone": ""},
    {"name": "crlf1\r\ncrlf2", "email": "crlf@mail.test", "phone": ""},
    {"name": "Zoë Ünal 日本", "email": "zoe@company.com", "phone": ""},
    {"name": "Local number", "email": "local@mail.test", "phone": "06 12 34 56 78"},
    {"name": "Dialled abroad", "email": "abroad@mail.test", "phone": "0044 20 7946"},
)


def snapshot():
    return (
        list(Client.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
    )


def exported(queryset, columns):
    return "".join(csv_chunks(queryset, columns)).encode("utf-8")


def import_file(resource_class, data, dry_run):
    result = resource_class().import_data(
        resource_class.read_csv(data), dry_run=dry_run
    )
    assert not result.has_errors(), row_error_lines(result)
    assert not result.has_validation_errors(), row_error_lines(result)
    return result


@pytest.fixture
def tricky_data(make_client, make_order):
    for fields in TRICKY_CLIENTS:
        client = make_client(**fields)
        make_order(client, amount="10.50", title="=1+1")
        make_order(client, amount="0.00", title="-discount", status=Order.Status.DONE)


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_exported_client_file_imports_back_unchanged(tricky_data, dry_run):
    before = snapshot()
    data = exported(Client.objects.with_order_totals(), CLIENT_COLUMNS)
    assert b"'+sales@plus.io" in data and b"'''=two quotes" in data
    # Text, so a spreadsheet keeps the leading zero.
    assert b",'0612345678," in data and b",'004420" in data

    result = import_file(ClientResource, data, dry_run)

    totals = result.totals
    assert (totals["new"], totals["update"]) == (0, 0)
    assert totals["skip"] == len(TRICKY_CLIENTS)
    assert snapshot() == before


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_exported_order_file_imports_back_unchanged(tricky_data, dry_run):
    before = snapshot()
    data = exported(Order.objects.all(), ORDER_COLUMNS)
    assert b"'-dash@qa.io" in data and b"'=1+1" in data

    result = import_file(OrderResource, data, dry_run)

    assert (result.totals["new"], result.totals["update"]) == (0, 0)
    assert result.totals["skip"] == 2 * len(TRICKY_CLIENTS)
    assert snapshot() == before


def test_an_edited_export_updates_what_changed_and_shows_old_and_new(tricky_data):
    order = Order.objects.get(client__email="-dash@qa.io", title="=1+1")
    data = exported(Order.objects.all(), ORDER_COLUMNS).decode("utf-8")
    line = next(row for row in data.splitlines() if row.startswith(f"{order.pk},"))
    data = data.replace(line, line.replace(",10.50,", ",12.00,"))

    preview = import_file(OrderResource, data.encode(), dry_run=True)
    [updated] = [row for row in preview.rows if row.import_type == "update"]
    assert "10.50 → 12.00" in updated.diff
    import_file(OrderResource, data.encode(), dry_run=False)

    order.refresh_from_db()
    assert order.amount == Decimal("12.00")
    assert Order.objects.count() == 2 * len(TRICKY_CLIENTS)


def test_a_client_file_edited_in_a_spreadsheet_shows_what_changes(make_client):
    make_client(name="Ann", email="ann@mail.test", phone="0123")
    data = b"name,email,phone\r\nAnn,ANN@mail.test,123\r\n"

    result = import_file(ClientResource, data, dry_run=True)

    [row] = result.rows
    assert row.import_type == "update"
    assert row.diff == ["Ann", "ann@mail.test", "0123 → 123"]


def test_an_order_row_with_an_unknown_id_is_a_new_order(make_client):
    make_client(email="ann@mail.test")
    data = (
        b"id,client,title,amount\r\n"
        b"999999,ann@mail.test,Desk,5\r\n"
        b",ann@mail.test,Lamp,2\r\n"
    )

    result = import_file(OrderResource, data, dry_run=False)

    assert result.totals["new"] == 2
    assert set(Order.objects.values_list("title", flat=True)) == {"Desk", "Lamp"}


def test_an_order_id_that_is_not_a_number_is_a_row_error(make_client):
    make_client(email="ann@mail.test")
    data = b"id,client,title,amount\r\nabc,ann@mail.test,Desk,5\r\n"

    result = OrderResource().import_data(OrderResource.read_csv(data))

    assert "row 1: id: “abc” is not an order id" in " ".join(row_error_lines(result))
    assert not Order.objects.exists()


def test_a_phone_kept_as_text_imports_without_its_quote(make_client):
    data = (
        "\ufeffname,email,phone\r\n"
        "Local,local@mail.test,'0612345678\r\n"
        "Other,other@mail.test,612345678\r\n"
    ).encode()

    import_file(ClientResource, data, dry_run=False)

    phones = dict(Client.objects.values_list("email", "phone"))
    assert phones == {"local@mail.test": "0612345678", "other@mail.test": "612345678"}
