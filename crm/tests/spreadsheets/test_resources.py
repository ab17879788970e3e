import csv
import io

import pytest
import tablib
from django.db import connection
from django.test.utils import CaptureQueriesContext
from import_export.formats.base_formats import CSV

from crm.models import Client, Order
from crm.spreadsheets.files import ImportFileError, row_error_lines
from crm.spreadsheets.resources import (
    ClientResource,
    KeyInstanceLoader,
    OrderResource,
)

pytestmark = pytest.mark.django_db(transaction=False)


def dataset(text, resource=ClientResource):
    """Read CSV text the way the admin does."""
    return resource.read_csv(text.encode("utf-8"))


def import_clients(text, dry_run=False):
    return ClientResource().import_data(dataset(text), dry_run=dry_run)


def import_orders(text, dry_run=False):
    return OrderResource().import_data(dataset(text, OrderResource), dry_run=dry_run)


def errors_of(result):
    return {
        row.number: {f: [str(m) for m in ms] for f, ms in row.error_dict.items()}
        for row in result.invalid_rows
    }


def exported_rows(resource, queryset=None):
    text = resource.export(queryset).csv
    return list(csv.DictReader(io.StringIO(text)))


def test_import_creates_clients_with_stored_form_email():
    result = import_clients(
        "name,email,phone\nAda,ADA@Mail.Test ,+33 1 23\nBob,bob@mail.test,\n"
    )
    assert not result.has_errors() and not result.has_validation_errors()
    assert result.totals["new"] == 2
    ada = Client.objects.get(name="Ada")
    assert ada.email == "ada@mail.test"
    assert ada.phone == "+33123"  # stored without separators
    assert ada.created_at is not None and ada.updated_at is not None


def test_uppercase_email_in_file_updates_existing_client(make_client):
    existing = make_client(name="Old", email="user@mail.com", phone="1")
    result = import_clients("name,email\nNew Name,USER@MAIL.COM\n")
    assert result.totals["update"] == 1
    assert Client.objects.count() == 1
    existing.refresh_from_db()
    assert existing.name == "New Name"
    assert existing.email == "user@mail.com"
    assert existing.phone == "1"  # no phone column: left alone


def test_update_moves_updated_at(make_client):
    existing = make_client(email="user@mail.com")
    before = existing.updated_at
    import_clients("name,email\nRenamed,user@mail.com\n")
    existing.refresh_from_db()
    assert existing.updated_at > before


def test_id_column_is_not_used_to_match(make_client):
    first = make_client(name="First", email="first@mail.test")
    result = import_clients(f"id,name,email\n{first.pk},Someone,other@mail.test\n")
    assert result.totals["new"] == 1
    first.refresh_from_db()
    assert first.name == "First"
    assert Client.objects.get(email="other@mail.test").pk != first.pk


def test_vip_domain_makes_new_client_vip_in_bulk_mode():
    assert ClientResource._meta.use_bulk
    import_clients("name,email,vip\nBoss,boss@Company.com,0\nAnn,ann@mail.test,\n")
    assert Client.objects.get(email="boss@company.com").vip is True
    assert Client.objects.get(email="ann@mail.test").vip is False


def test_vip_column_is_optional_and_blank_keeps_value(make_client):
    make_client(email="vip@mail.test", vip=True)
    import_clients("name,email,vip\nStill VIP,vip@mail.test,\n")
    assert Client.objects.get(email="vip@mail.test").vip is True
    import_clients("name,email,vip\nNo VIP,vip@mail.test,no\n")
    assert Client.objects.get(email="vip@mail.test").vip is False


def test_blocked_domain_is_a_row_error_with_row_number():
    result = import_clients("name,email\nGood,good@mail.test\nBad,bad@EXAMPLE.com\n")
    assert errors_of(result) == {
        2: {"email": ["Email addresses at example.com are not accepted."]}
    }
    assert Client.objects.count() == 0


def test_subdomain_of_blocked_domain_is_accepted():
    import_clients("name,email\nSub,someone@sub.example.com\n")
    assert Client.objects.filter(email="someone@sub.example.com").exists()


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("Ann,not-an-email,", "email", "Enter a valid email address."),
        (",ann@mail.test,", "name", "This field cannot be blank."),
        ("Ann,,", "email", "This field cannot be blank."),
        (
            "Ann,ann@mail.test,0123456789012345",
            "phone",
            "Ensure this value has at most 15 characters (it has 16).",
        ),
    ],
)
def test_invalid_rows_are_reported_with_the_model_message(row, field, message):
    result = import_clients(f"name,email,phone\n{row}\n")
    assert errors_of(result) == {1: {field: [message]}}
    assert Client.objects.count() == 0


def test_bad_vip_value_is_a_row_error():
    result = import_clients("name,email,vip\nAnn,ann@mail.test,maybe\n")
    assert list(errors_of(result)[1]) == ["vip"]


def test_same_email_twice_in_any_case_names_both_rows():
    result = import_clients(
        "name,email\nA,a@mail.test\nB,dup@mail.test\nC,c@mail.test\nD,DUP@Mail.Test\n"
    )
    message = "“dup@mail.test” appears more than once in the file (rows 2 and 4)."
    assert errors_of(result) == {2: {"email": [message]}, 4: {"email": [message]}}
    assert Client.objects.count() == 0


def test_one_bad_row_among_good_ones_imports_nothing(make_client):
    make_client(name="Keep", email="keep@mail.test")
    rows = "".join(f"Client {n},c{n}@mail.test\n" for n in range(2500))
    result = import_clients(
        "name,email\nChanged,keep@mail.test\n" + rows + "Bad,bad@example.com\n"
    )
    assert result.has_validation_errors()
    assert list(errors_of(result)) == [2502]
    assert list(Client.objects.values_list("name", flat=True)) == ["Keep"]


def test_refused_file_reports_a_base_error_so_callers_see_it():
    result = import_clients("name,email\nBad,bad@example.com\n")
    assert result.has_errors()
    assert "Nothing was imported" in str(result.base_errors[0].error)
    assert row_error_lines(result)[-1] == (
        "row 1: email: Email addresses at example.com are not accepted."
    )


def test_dry_run_writes_nothing_and_previews_stored_values():
    result = import_clients(
        "id,name,email,vip\n9,Boss,BOSS@company.com,\n", dry_run=True
    )
    assert Client.objects.count() == 0
    assert result.diff_headers == ["name", "email", "vip"]
    assert result.valid_rows()[0].diff == ["Boss", "boss@company.com", "1"]


def library_dataset(text):
    """Read CSV text with the library's own reader (its ``import`` command does)."""
    return CSV(encoding="utf-8-sig").create_dataset(text.encode("utf-8"))


def test_missing_email_column_is_an_error_for_any_reader():
    with pytest.raises(ImportFileError, match="no email column"):
        dataset("name,phone\nAnn,1\n")
    result = ClientResource().import_data(library_dataset("name,phone\nAnn,1\n"))
    assert result.has_errors()
    assert "no email column" in str(result.base_errors[0].error)
    assert result.totals["invalid"] == 0 and not result.rows  # no row was read
    assert Client.objects.count() == 0


def test_excel_file_with_bom_crlf_and_quoted_newlines_imports():
    raw = (
        "\ufeffName,Email,Phone\r\n"
        '"Smith, Jane",jane@mail.test,"+44 20"\r\n'
        '"Multi\r\nLine",multi@mail.test,\r\n'
        "Zoë Ünal,zoe@mail.test,\r\n"
    ).encode()
    result = ClientResource().import_data(ClientResource.read_csv(raw))
    assert not result.has_errors(), row_error_lines(result)
    assert Client.objects.get(email="jane@mail.test").name == "Smith, Jane"
    # The cell's line break is kept as the file has it: it exports back so.
    assert Client.objects.get(email="multi@mail.test").name == "Multi\r\nLine"
    assert Client.objects.get(email="zoe@mail.test").name == "Zoë Ünal"


def test_bom_left_in_header_by_a_plain_decoder_is_handled():
    data = tablib.Dataset(headers=["\ufeffname", "email"])
    data.append(["Ann", "ann@mail.test"])
    result = ClientResource().import_data(data)
    assert not result.has_errors()
    assert Client.objects.get().name == "Ann"


def test_export_has_order_count_and_two_decimal_total(make_client, make_order):
    ada = make_client(name="Ada", email="ada@mail.test")
    make_order(ada, amount="10.25")
    make_order(ada, amount="20.25", status=Order.Status.DONE)
    make_client(name="Idle", email="idle@mail.test")
    rows = {row["email"]: row for row in exported_rows(ClientResource())}
    assert list(rows["ada@mail.test"]) == [
        "id",
        "name",
        "email",
        "phone",
        "vip",
        "created_at",
        "order_count",
        "total_amount",
    ]
    assert rows["ada@mail.test"]["order_count"] == "2"
    assert rows["ada@mail.test"]["total_amount"] == "30.50"
    assert rows["idle@mail.test"]["order_count"] == "0"
    assert rows["idle@mail.test"]["total_amount"] == "0.00"


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_export_escapes_formula_cells(make_client, prefix):
    make_client(name=f"{prefix}HYPERLINK(1)", email="f@mail.test")
    row = exported_rows(ClientResource())[0]
    assert row["name"] == f"'{prefix}HYPERLINK(1)"


def test_export_escapes_international_phone(make_client):
    make_client(email="p@mail.test", phone="+33 1 23 45")
    assert exported_rows(ClientResource())[0]["phone"] == "'+3312345"


def test_exported_file_imports_back_unchanged(make_client, make_order):
    ada = make_client(name="Ada", email="ada@mail.test", phone="123")
    make_order(ada, amount="5.00")
    text = ClientResource().export().csv
    result = ClientResource().import_data(dataset(text))
    assert (result.totals["new"], result.totals["update"]) == (0, 0)
    assert result.totals["skip"] == 1  # unchanged
    assert Client.objects.get().name == "Ada"


def test_order_import_finds_client_by_email_in_any_case(make_client):
    ada = make_client(email="ada@mail.test")
    result = import_orders(
        "client,title,amount,status\n"
        "ADA@Mail.Test,Chairs,30.5,IN_PROGRESS\n"
        "ada@mail.test,Desk,12,\n"
    )
    assert not result.has_errors(), row_error_lines(result)
    chairs = Order.objects.get(title="Chairs")
    assert chairs.client == ada
    assert str(chairs.amount) == "30.50"
    assert chairs.status == Order.Status.IN_PROGRESS
    assert Order.objects.get(title="Desk").status == Order.Status.NEW


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (
            "nobody@mail.test,Desk,1,NEW",
            "client",
            "No client with email “nobody@mail.test”.",
        ),
        (
            "ada@mail.test,Desk,-1,NEW",
            "amount",
            "Ensure this value is greater than or equal to 0.",
        ),
        ("ada@mail.test,Desk,lots,NEW", "amount", "“lots” is not a number."),
        (
            "ada@mail.test,Desk,1,SHIPPED",
            "status",
            "“SHIPPED” is not a status: use NEW, IN_PROGRESS, DONE.",
        ),
    ],
)
def test_bad_order_rows_are_row_errors(make_client, row, field, message):
    make_client(email="ada@mail.test")
    result = import_orders(
        f"client,title,amount,status\nada@mail.test,Fine,1,NEW\n{row}\n"
    )
    assert errors_of(result) == {2: {field: [message]}}
    assert Order.objects.count() == 0


def test_order_file_without_client_column_is_refused():
    with pytest.raises(ImportFileError, match="no client column"):
        dataset("title,amount\nDesk,1\n", OrderResource)
    result = OrderResource().import_data(library_dataset("title,amount\nDesk,1\n"))
    assert "no client column" in str(result.base_errors[0].error)


def test_order_export_names_client_by_email(make_client, make_order):
    ada = make_client(email="ada@mail.test")
    make_order(ada, amount="7.5", title="-Discount")
    row = exported_rows(OrderResource())[0]
    assert row["client"] == "ada@mail.test"
    assert row["amount"] == "7.50"
    assert row["title"] == "'-Discount"


def test_database_constraint_failure_rolls_back_whole_file(make_client, monkeypatch):
    # Another writer inserted the email after the file was checked.
    make_client(name="Raced", email="raced@mail.test")
    monkeypatch.setattr(KeyInstanceLoader, "get_instance", lambda self, row: None)
    result = import_clients("name,email\nFresh,fresh@mail.test\nLate,RACED@mail.test\n")
    assert result.has_errors()
    [error] = result.base_errors
    assert "row 2 (raced@mail.test)" in str(error.error)
    assert "Nothing was imported" in str(error.error)
    assert list(Client.objects.values_list("name", flat=True)) == ["Raced"]


def count_queries(run):
    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries)


@pytest.mark.parametrize("kind", ["clients", "orders"])
def test_import_queries_do_not_grow_with_rows(make_client, kind):
    for n in range(60):
        make_client(name=f"Existing {n}", email=f"e{n}@mail.test")

    def client_file(n):
        existing = "".join(f"Renamed {i},E{i}@mail.test\n" for i in range(n))
        new = "".join(f"New {i},n{n}-{i}@mail.test\n" for i in range(n))
        return "name,email\n" + existing + new

    def order_file(n):
        rows = "".join(f"E{i}@mail.test,Order {i},{i}.5,DONE\n" for i in range(n))
        return "client,title,amount,status\n" + rows

    make_file, run = {
        "clients": (client_file, import_clients),
        "orders": (order_file, import_orders),
    }[kind]
    small = count_queries(lambda: run(make_file(3)))
    large = count_queries(lambda: run(make_file(60)))
    assert small == large


def test_formula_escaped_cells_import_back_unescaped(make_client):
    make_client(name="=SUM(A1)", email="formula@mail.test", phone="+1 415 555 0101")
    make_client(name="-dash", email="dash@mail.test", phone="+44 20")
    before = sorted(Client.objects.values_list("name", "email", "phone", "vip"))
    exported = ClientResource().export().csv
    assert "'=SUM(A1)" in exported and "'+14155550101" in exported
    result = import_clients(exported)
    assert not result.has_errors() and not result.has_validation_errors()
    after = sorted(Client.objects.values_list("name", "email", "phone", "vip"))
    assert after == before


@pytest.mark.parametrize("cell", ["Nu\x00l", "\x00"])
def test_nul_character_in_a_cell_is_a_row_error(cell):
    result = import_clients(f"name,email\r\n{cell},nul@mail.test\r\n")
    assert "Null characters" in " ".join(row_error_lines(result))
    assert not Client.objects.exists()


def test_nul_character_in_order_client_cell_is_a_row_error(make_client):
    make_client(email="real@mail.test")
    result = import_orders("client,title,amount\r\nreal@mail.test\x00,T,1\r\n")
    assert "Null characters" in " ".join(row_error_lines(result))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name,phone\r\nA,1\r\n", "no email column"),
        ("name,email,EMAIL\r\nA,a@mail.test,b@mail.test\r\n", "email column twice"),
    ],
)
def test_file_level_problems_are_explained(text, reason):
    with pytest.raises(ImportFileError, match=reason):
        dataset(text)
    result = ClientResource().import_data(library_dataset(text))
    assert reason in " ".join(row_error_lines(result))
    assert not Client.objects.exists()


def test_file_without_email_column_says_so_first():
    lines = row_error_lines(
        ClientResource().import_data(library_dataset("id,name\r\n1,A\r\n"))
    )
    assert "no email column" in lines[0]
    assert len(lines) == 1


def test_nul_in_email_column_is_a_row_error():
    result = import_clients("name,email\r\nA,nul\x00@mail.test\r\n")
    assert "Null characters" in " ".join(row_error_lines(result))
    assert not Client.objects.exists()


def test_empty_rows_at_the_end_of_a_file_are_ignored():
    result = import_clients("name,email,phone\r\nA,a@mail.test,\r\n,,\r\n,,\r\n")
    assert not result.has_errors() and not result.has_validation_errors()
    assert Client.objects.count() == 1


def test_a_preview_writes_nothing(make_client):
    make_client(email="old@mail.test", name="Old")
    text = "name,email\r\nNew,new@mail.test\r\nRenamed,old@mail.test\r\n"
    with CaptureQueriesContext(connection) as queries:
        result = import_clients(text, dry_run=True)
    assert (result.totals["new"], result.totals["update"]) == (1, 1)
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE")]
    assert writes == []


def test_a_confirm_that_would_do_something_else_than_its_preview_imports_nothing(
    make_client,
):
    text = "name,email\r\nMine,race@mail.test\r\nOther,other@mail.test\r\n"
    preview = import_clients(text, dry_run=True)
    # A colleague adds the client between the preview and the confirm.
    make_client(name="Colleague", email="race@mail.test", phone="999")

    result = ClientResource().import_data(dataset(text), expected_digest=preview.digest)

    assert "changed since the preview" in str(result.base_errors[0].error)
    assert Client.objects.get().name == "Colleague"


def test_an_edit_between_preview_and_confirm_stops_the_import_too(make_client):
    ann = make_client(name="Ann", email="ann@mail.test")
    text = "name,email\r\nAnn Archer,ann@mail.test\r\n"
    preview = import_clients(text, dry_run=True)
    ann.name = "Ann B."  # the colleague edits what the file would change
    ann.save()

    result = ClientResource().import_data(dataset(text), expected_digest=preview.digest)

    assert result.has_errors()
    ann.refresh_from_db()
    assert ann.name == "Ann B."


def test_a_confirm_that_matches_its_preview_imports(make_client):
    text = "name,email\r\nNew,new@mail.test\r\n"
    preview = import_clients(text, dry_run=True)
    result = ClientResource().import_data(dataset(text), expected_digest=preview.digest)
    assert not result.has_errors() and Client.objects.count() == 1


@pytest.mark.parametrize(
    "value", ["1.5", "1.0", "1e3", "-1", "99999999999999999999999"]
)
def test_order_ids_are_whole_positive_numbers(make_client, make_order, value):
    ada = make_client(email="ada@mail.test")
    make_order(ada, title="Keep")
    result = import_orders(f"id,client,title,amount\r\n{value},ada@mail.test,T,1\r\n")
    assert errors_of(result)[1]["id"][0].startswith(f"“{value}” is not an order id")
    assert list(Order.objects.values_list("title", flat=True)) == ["Keep"]


def test_the_same_order_id_twice_names_both_rows(make_client, make_order):
    ada = make_client(email="ada@mail.test")
    order = make_order(ada)
    result = import_orders(
        f"id,client,title,amount\r\n{order.pk},ada@mail.test,A,1\r\n"
        f"{order.pk},ada@mail.test,B,2\r\n"
    )
    message = f"“{order.pk}” appears more than once in the file (rows 1 and 2)."
    assert errors_of(result) == {1: {"id": [message]}, 2: {"id": [message]}}


def test_updated_rows_deep_in_a_file_are_in_the_preview(make_client):
    for n in range(300):
        make_client(name=f"P{n}", email=f"p{n}@mail.test", phone="0123")
    lines = ["name,email,phone"] + [f"P{n},p{n}@mail.test,0123" for n in range(300)]
    lines[251] = "P250,p250@mail.test,123"
    result = import_clients("\r\n".join(lines) + "\r\n", dry_run=True)
    updated = [row for row in result.rows if row.import_type == "update"]
    assert [row.diff for row in updated] == [["P250", "p250@mail.test", "0123 → 123"]]


def test_long_cells_are_cut_on_the_page_not_in_the_errors_file():
    name = "N" * 131_000
    result = import_clients(f"name,email\r\n{name},bad@example.com\r\n", dry_run=True)
    [invalid] = result.invalid_rows
    assert len(invalid.values[0]) == 201
    assert name in result.errors_csv()


def test_the_errors_file_escapes_formulae_in_its_header_too():
    result = import_clients("name,email,=cmd|' /C calc'!A0\r\nA,a@example.com,x\r\n")
    header = result.errors_csv().splitlines()[0]
    assert header.endswith(",'=cmd|' /c calc'!a0")


def test_a_bad_status_names_the_good_ones(make_client):
    make_client(email="ada@mail.test")
    result = import_orders(
        "client,title,amount,status\r\nada@mail.test,T,1,shipped\r\n"
    )
    assert errors_of(result)[1]["status"] == [
        "“shipped” is not a status: use NEW, IN_PROGRESS, DONE."
    ]


def test_an_empty_row_in_the_middle_says_so():
    result = import_clients("name,email\r\nA,a@mail.test\r\n,\r\nB,b@mail.test\r\n")
    assert row_error_lines(result) == [
        "row 2: This row is empty: delete it, or fill it in."
    ]
