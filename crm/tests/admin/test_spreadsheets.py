import os

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Client, Order
from crm.tests.helpers import messages_of, set_created

pytestmark = pytest.mark.django_db


CLIENT_IMPORT = reverse("admin:crm_client_import")
CLIENT_PROCESS = reverse("admin:crm_client_process_import")
CLIENT_EXPORT = reverse("admin:crm_client_export")
ORDER_IMPORT = reverse("admin:crm_order_import")
ORDER_PROCESS = reverse("admin:crm_order_process_import")
ORDER_EXPORT = reverse("admin:crm_order_export")
CLIENT_FIELDS = (
    "id",
    "name",
    "email",
    "phone",
    "vip",
    "created_at",
    "order_count",
    "total_amount",
)


def csv_format_index(response):
    choices = dict(
        (label, value)
        for value, label in response.context["form"].fields["format"].choices
    )
    return choices["csv"]


def upload(http, url, content, name="clients.csv"):
    """Post a file to the admin's import page: the dry-run preview."""
    fmt = csv_format_index(http.get(url))
    file = SimpleUploadedFile(name, content, content_type="text/csv")
    return http.post(url, {"import_file": file, "format": fmt})


def confirm(http, url, preview):
    return http.post(url, preview.context["confirm_form"].initial)


def test_upload_preview_confirm_imports_rows(admin_client, make_client):
    make_client(name="Old", email="user@mail.com")
    content = (
        b"name,email,phone\r\nNew Name,USER@MAIL.COM,\r\nBoss,boss@company.com,1\r\n"
    )
    preview = upload(admin_client, CLIENT_IMPORT, content)
    assert preview.status_code == 200
    assert "confirm_form" in preview.context
    page = preview.content.decode()
    assert "New Name" in page and "boss@company.com" in page
    assert list(Client.objects.values_list("name", flat=True)) == ["Old"]

    response = confirm(admin_client, CLIENT_PROCESS, preview)
    assert response.status_code == 302
    assert sorted(Client.objects.values_list("name", flat=True)) == [
        "Boss",
        "New Name",
    ]
    assert Client.objects.get(email="boss@company.com").vip is True


def test_preview_lists_each_bad_row_with_number_and_reason(admin_client):
    content = (
        b"name,email\r\n"
        b"Good,good@mail.test\r\n"
        b"Blocked,bad@example.com\r\n"
        b",noname@mail.test\r\n"
        b"Twice,twice@mail.test\r\n"
        b"Again,TWICE@mail.test\r\n"
    )
    preview = upload(admin_client, CLIENT_IMPORT, content)
    assert preview.status_code == 200
    assert "confirm_form" not in preview.context
    invalid = {
        row.number: row.error_dict for row in preview.context["result"].invalid_rows
    }
    assert sorted(invalid) == [2, 3, 4, 5]
    page = preview.content.decode()
    assert "Some rows failed to validate" in page
    assert "Email addresses at example.com are not accepted." in page
    assert "This field cannot be blank." in page
    assert "appears more than once in the file (rows 4 and 5)" in page
    assert Client.objects.count() == 0


def test_excel_bom_crlf_file_imports_through_admin(admin_client):
    content = (
        "\ufeffname,email,phone\r\n"
        '"Smith, Jane",jane@mail.test,"+44 20"\r\n'
        '"Two\r\nLines",two@mail.test,\r\n'
        "Zoë,zoe@mail.test,\r\n"
    ).encode()
    preview = upload(admin_client, CLIENT_IMPORT, content)
    assert "confirm_form" in preview.context, preview.context["result"].base_errors
    confirm(admin_client, CLIENT_PROCESS, preview)
    assert Client.objects.get(email="jane@mail.test").name == "Smith, Jane"
    assert Client.objects.get(email="two@mail.test").name == "Two\r\nLines"
    assert Client.objects.get(email="zoe@mail.test").name == "Zoë"


def test_order_import_through_admin_reports_unknown_client(admin_client, make_client):
    make_client(email="ada@mail.test")
    content = (
        b"client,title,amount,status\r\n"
        b"ADA@mail.test,Desk,10,NEW\r\n"
        b"ghost@mail.test,Chair,5,NEW\r\n"
    )
    preview = upload(admin_client, ORDER_IMPORT, content, name="orders.csv")
    page = preview.content.decode()
    assert "No client with email “ghost@mail.test”." in page
    assert [row.number for row in preview.context["result"].invalid_rows] == [2]
    assert Order.objects.count() == 0


def test_order_import_through_admin(admin_client, make_client):
    ada = make_client(email="ada@mail.test")
    content = b"client,title,amount,status\r\nADA@mail.test,Desk,10.5,DONE\r\n"
    preview = upload(admin_client, ORDER_IMPORT, content, name="orders.csv")
    confirm(admin_client, ORDER_PROCESS, preview)
    order = Order.objects.get()
    assert (order.client, order.title, str(order.amount)) == (ada, "Desk", "10.50")


def export_clients(http):
    page = http.get(CLIENT_EXPORT)
    choices = {
        label: value for value, label in page.context["form"].fields["format"].choices
    }
    data = {"format": choices["csv"], "resource": "0"}
    data.update({f"clientresource_{name}": "on" for name in CLIENT_FIELDS})
    return http.post(CLIENT_EXPORT, data)


def test_admin_export_returns_csv_with_totals_and_escaped_cells(
    admin_client, make_client, make_order
):
    ada = make_client(name="=HYPERLINK(1)", email="ada@mail.test", phone="+33 1")
    make_order(ada, amount="10.25")
    make_order(ada, amount="20.25")
    response = export_clients(admin_client)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    content = b"".join(response.streaming_content)
    assert content.startswith("\ufeff".encode())  # Excel reads UTF-8
    text = content.decode("utf-8-sig")
    header, row = text.splitlines()[:2]
    assert header == ",".join(CLIENT_FIELDS)
    assert "'=HYPERLINK(1)" in row
    assert "'+331," in row
    assert row.endswith(",2,30.50")


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user(
        "staffer", "staffer@acme.io", "pw-for-tests-1", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_client", "add_client"])
    )
    return user


def grant(user, codename):
    user.user_permissions.add(Permission.objects.get(codename=codename))


def test_staff_without_import_permission_cannot_import(client, staff):
    client.force_login(staff)
    assert client.get(CLIENT_IMPORT).status_code == 403
    file = SimpleUploadedFile("c.csv", b"name,email\nA,a@mail.test\n")
    assert (
        client.post(CLIENT_IMPORT, {"import_file": file, "format": "0"}).status_code
        == 403
    )
    assert Client.objects.count() == 0
    grant(staff, "import_client")
    client.force_login(staff)
    assert client.get(CLIENT_IMPORT).status_code == 200


def test_staff_without_export_permission_cannot_export(client, staff):
    client.force_login(staff)
    assert client.get(CLIENT_EXPORT).status_code == 403
    assert client.post(CLIENT_EXPORT, {"format": "0"}).status_code == 403
    grant(staff, "export_client")
    client.force_login(staff)
    assert export_clients(client).status_code == 200


@pytest.mark.parametrize("storage", ["FolderStorage", "SharedCacheStorage"])
def test_confirming_an_upload_twice_imports_once_and_explains(
    admin_client, settings, storage
):
    settings.IMPORT_EXPORT_TMP_STORAGE_CLASS = f"crm.spreadsheets.storage.{storage}"
    preview = upload(
        admin_client, CLIENT_IMPORT, b"name,email\r\nOnce,once@mail.test\r\n"
    )
    assert confirm(admin_client, CLIENT_PROCESS, preview).status_code == 302
    again = confirm(admin_client, CLIENT_PROCESS, preview)
    assert again.status_code == 302 and again["Location"] == CLIENT_IMPORT
    page = admin_client.get(CLIENT_IMPORT).content.decode()
    assert "no longer available" in page
    assert Client.objects.filter(email="once@mail.test").count() == 1


def test_confirming_a_forged_upload_name_is_refused(admin_client):
    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    data = {**preview.context["confirm_form"].initial, "import_file_name": "../etc"}
    response = admin_client.post(CLIENT_PROCESS, data)
    assert response.status_code == 302
    assert not Client.objects.exists()


def test_confirm_after_the_data_changed_reports_and_imports_nothing(
    admin_client, make_client
):
    gone = make_client(email="gone@mail.test")
    stays = make_client(email="stays@mail.test")
    content = (
        b"client,title,amount\r\nstays@mail.test,Kept,1.00\r\n"
        b"gone@mail.test,Lost,2.00\r\n"
    )
    preview = upload(admin_client, ORDER_IMPORT, content)
    assert "confirm_form" in preview.context
    gone.delete()  # someone deletes the client between preview and confirm
    response = confirm(admin_client, ORDER_PROCESS, preview)
    assert response.status_code == 302 and response["Location"] == ORDER_IMPORT
    page = admin_client.get(ORDER_IMPORT).content.decode()
    assert "Nothing was imported" in page and "gone@mail.test" in page
    assert "Import finished" not in page
    assert not Order.objects.filter(client=stays).exists()


def test_confirm_cannot_import_or_delete_other_temp_files(admin_client, tmp_path):
    import tempfile

    victim = os.path.join(tempfile.gettempdir(), "crm-victim-test.csv")
    with open(victim, "w") as file:
        file.write("name,email\r\nPlanted,planted@mail.test\r\n")
    try:
        preview = upload(
            admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n"
        )
        data = {
            **preview.context["confirm_form"].initial,
            "import_file_name": "crm-victim-test.csv",
        }
        response = admin_client.post(CLIENT_PROCESS, data)
        assert response.status_code == 302
        assert os.path.exists(victim)
        assert not Client.objects.exists()
    finally:
        os.remove(victim)


@pytest.mark.parametrize(
    ("field", "value"), [("format", "9"), ("format", "abc"), ("resource", "7")]
)
def test_tampered_confirm_form_is_refused(admin_client, field, value):
    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    data = {**preview.context["confirm_form"].initial, field: value}
    response = admin_client.post(CLIENT_PROCESS, data, follow=True)
    assert response.status_code == 200
    assert "not valid" in response.content.decode()
    assert not Client.objects.exists()


def test_semicolon_file_from_european_excel_is_explained(admin_client):
    preview = upload(
        admin_client, CLIENT_IMPORT, b"name;email;phone\r\nA;a@mail.test;1\r\n"
    )
    page = preview.content.decode()
    assert "CSV UTF-8" in page and "_rows_sharing_email" not in page
    assert not Client.objects.exists()


def test_admin_export_and_public_export_write_the_same_bytes(
    admin_client, make_client, make_order
):
    ann = make_client(name='Zoë "Ann", Ünal', email="ann@company.com", phone="+1 5")
    make_order(ann, amount="10.5")
    make_order(ann, amount="0.05")
    make_client(name="=SUM(A1)", email="-dash@mail.test")
    make_client(name="Two\nlines", email="two@mail.test")
    set_created(make_client(name="Old"), 2020, 2, 29, 23, 59, 59)

    admin_file = b"".join(export_clients(admin_client).streaming_content)
    public = admin_client.get(reverse("clients:export"))
    public_file = b"".join(public.streaming_content)

    assert admin_file == public_file
    assert admin_file.startswith(b"\xef\xbb\xbfid,name,email,phone,vip,created_at,")
    assert b"'=SUM(A1)" in admin_file and b"10.55" in admin_file


def client_rows(count, bad_every=0):
    lines = ["name,email,phone"]
    for n in range(count):
        email = (
            f"person{n}@example.com"
            if bad_every and n % bad_every == 0
            else (f"person{n}@mail.test")
        )
        lines.append(f"Person {n},{email},+1 555 {n:04d}")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_a_big_preview_shows_counts_and_the_first_hundred_rows(admin_client):
    response = upload(admin_client, CLIENT_IMPORT, client_rows(250))

    result = response.context["result"]
    assert result.total_rows == 250 and result.totals["new"] == 250
    assert len(result.rows) == 100
    page = response.content.decode()
    assert page.count('<tr class="new">') == 100
    assert "The first 100 of 250 rows are shown." in page
    assert "<strong>250</strong> new" in page
    assert not Client.objects.exists()


def test_a_big_refused_preview_lists_a_hundred_errors_and_offers_them_all(
    admin_client, django_user_model, client
):
    response = upload(admin_client, CLIENT_IMPORT, client_rows(300, bad_every=2))

    result = response.context["result"]
    assert result.totals["invalid"] == 150 and len(result.invalid_rows) == 100
    page = response.content.decode()
    assert "The first 100 of 150 rows with errors are shown." in page
    errors_url = response.context["errors_url"]
    download = admin_client.get(errors_url)
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    lines = download.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "row,column,error,name,email,phone"
    assert len(lines) == 151
    assert lines[1].startswith(
        "1,email,Email addresses at example.com are not accepted"
    )
    other = django_user_model.objects.create_superuser("other", "o@mail.test", "pw")
    client.force_login(other)
    assert client.get(errors_url).status_code == 404
    assert not Client.objects.exists()


def uploads(settings):
    return sorted(os.listdir(settings.CRM_IMPORT_UPLOAD_DIR))


@pytest.fixture
def folder_storage(settings):
    settings.IMPORT_EXPORT_TMP_STORAGE_CLASS = "crm.spreadsheets.storage.FolderStorage"


def upload_name(response):
    return response.wsgi_request.FILES["import_file"].tmp_storage_name


@pytest.mark.parametrize("storage", ["FolderStorage", "SharedCacheStorage"])
def test_a_refused_upload_is_deleted_and_an_accepted_one_waits(
    admin_client, settings, storage
):
    settings.IMPORT_EXPORT_TMP_STORAGE_CLASS = f"crm.spreadsheets.storage.{storage}"
    from crm.spreadsheets import storage as storages

    stored = getattr(storages, storage)
    bad_row = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@example.com\r\n")
    bad_header = upload(admin_client, CLIENT_IMPORT, b"foo,bar\r\n1,2\r\n")
    for refused in (bad_row, bad_header):
        with pytest.raises(storages.ImportFileGone):
            stored(name=upload_name(refused)).read()

    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    confirm(admin_client, CLIENT_PROCESS, preview)
    assert Client.objects.filter(email="a@mail.test").exists()
    with pytest.raises(storages.ImportFileGone):
        stored(name=upload_name(preview)).read()


def test_uploads_older_than_a_day_are_swept(admin_client, settings, folder_storage):
    upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    [old] = uploads(settings)
    path = os.path.join(settings.CRM_IMPORT_UPLOAD_DIR, old)
    a_day_ago = os.path.getmtime(path) - settings.CRM_IMPORT_UPLOAD_MAX_AGE - 1
    os.utime(path, (a_day_ago, a_day_ago))

    upload(admin_client, CLIENT_IMPORT, b"name,email\r\nB,b@mail.test\r\n")

    assert old not in uploads(settings) and len(uploads(settings)) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"\nname,email\nA,a@mail.test\n",
        b"\r\nname,email\r\nA,a@mail.test\r\n",
    ],
)
def test_a_file_starting_with_a_blank_line_imports(admin_client, data):
    preview = upload(admin_client, CLIENT_IMPORT, data)
    confirm(admin_client, CLIENT_PROCESS, preview)
    assert Client.objects.get().email == "a@mail.test"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"foo,bar\r\n1,2\r\n", "no email column"),
        (b'name,email\r\nA,"a@mail.test\r\nB,b@mail.test\r\n', "is not closed"),
        (b"name\temail\r\nA\ta@mail.test\r\n", "tabs"),
        ("name,email\r\nA,a@mail.test\r\n".encode("utf-16-le"), "UTF-16"),
        (b"name,,email\r\nA,,a@mail.test\r\n", "has no name"),
    ],
)
def test_files_refused_as_a_whole_are_explained_on_the_page(admin_client, data, reason):
    response = upload(admin_client, CLIENT_IMPORT, data)
    assert response.status_code == 200
    assert reason in " ".join(response.context["form"].errors["import_file"])
    assert "confirm_form" not in response.context
    assert not Client.objects.exists()


def test_ragged_rows_are_row_errors_on_the_page(admin_client):
    response = upload(
        admin_client, CLIENT_IMPORT, b"name,email,phone\r\nA,a@mail.test\r\n"
    )
    [row] = response.context["result"].invalid_rows
    assert "has 2 cells but the header has 3 columns" in str(row.error)


def test_a_ragged_row_counts_every_column_of_the_header(admin_client):
    # id and created_at are exported for reference and never imported.
    response = upload(
        admin_client, CLIENT_IMPORT, b"id,name,email,created_at\r\n5,A,a@mail.test\r\n"
    )
    [row] = response.context["result"].invalid_rows
    assert "has 3 cells but the header has 4 columns" in str(row.error)
    assert not Client.objects.exists()


def test_a_concurrent_write_during_the_confirm_names_the_row(admin_client, monkeypatch):
    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    Client.objects.create(name="Fast", email="a@mail.test")
    # The other writer commits just after the confirm looked the file's emails up.
    from crm.spreadsheets.resources import KeyInstanceLoader

    monkeypatch.setattr(KeyInstanceLoader, "get_instance", lambda self, row: None)
    response = admin_client.post(
        CLIENT_PROCESS, preview.context["confirm_form"].initial, follow=True
    )

    [message] = [str(m) for m in response.context["messages"]]
    assert "Nothing was imported" in message and "row 1 (a@mail.test)" in message
    assert Client.objects.get().name == "Fast"


def export(http, url, query=""):
    """Post the export form for every column, as the Export button's page does."""
    page = http.get(url + query)
    if page.status_code != 200:
        return page
    form = page.context["form"]
    skip = ("format", "resource", "export_items")
    data = {name: "on" for name in form.fields if name not in skip}
    formats = form.fields["format"].choices
    data.update(format=next(v for v, label in formats if label == "csv"), resource=0)
    return http.post(url + query, data)


def test_the_admin_export_streams_the_filtered_and_searched_clients(
    admin_client, make_client
):
    make_client(name="Ann VIP", email="ann@company.com")
    make_client(name="Bob", email="bob@mail.test")
    make_client(name="Ann Plain", email="ann@mail.test")

    response = export(admin_client, CLIENT_EXPORT, "?vip__exact=0&q=ann")

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and "ann@mail.test" in lines[1]


def test_the_admin_order_export_streams_the_filtered_orders(
    admin_client, make_client, make_order
):
    ann = make_client(email="-ann@mail.test")
    make_order(ann, title="Open", status=Order.Status.NEW)
    make_order(ann, title="Done", status=Order.Status.DONE)

    response = export(admin_client, ORDER_EXPORT, "?status__exact=DONE")

    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, row = text.splitlines()
    assert header == "id,client,title,amount,status,created_at"
    assert ",'-ann@mail.test,Done,10.00,DONE," in row


@pytest.mark.parametrize(
    "query",
    [
        "?vip__exact=2",
        "?created_at__year=0",
        "?created_at__year=99999",
        "?name__regex=(",
        "?_selected_action=abc",
        "?o=abc",
        "?q=%00",
        "?password=1",
    ],
)
def test_hand_made_export_addresses_answer_like_the_changelist(admin_client, query):
    response = export(admin_client, CLIENT_EXPORT, query)
    assert response.status_code in (200, 302, 400)
    if response.streaming:
        b"".join(response.streaming_content)


def test_another_user_cannot_confirm_someone_elses_upload(
    admin_client, client, django_user_model
):
    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    other = django_user_model.objects.create_superuser("imp2", "i@mail.test", "pw")
    client.force_login(other)

    response = client.post(
        CLIENT_PROCESS, preview.context["confirm_form"].initial, follow=True
    )

    assert "no longer available" in messages_of(response)[-1][1]
    assert not Client.objects.exists()
    confirm(admin_client, CLIENT_PROCESS, preview)  # the owner still can
    assert Client.objects.count() == 1


def test_a_client_added_between_preview_and_confirm_stops_the_confirm(
    admin_client, make_client
):
    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nMine,c@mail.test\r\n")
    make_client(name="Colleague", email="c@mail.test")

    response = admin_client.post(
        CLIENT_PROCESS, preview.context["confirm_form"].initial, follow=True
    )

    assert "changed since the preview" in messages_of(response)[-1][1]
    assert Client.objects.get().name == "Colleague"


def test_an_expired_upload_cannot_be_confirmed(admin_client, settings, folder_storage):
    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    [name] = uploads(settings)
    path = os.path.join(settings.CRM_IMPORT_UPLOAD_DIR, name)
    old = os.path.getmtime(path) - settings.CRM_IMPORT_UPLOAD_MAX_AGE - 1
    os.utime(path, (old, old))

    response = admin_client.post(
        CLIENT_PROCESS, preview.context["confirm_form"].initial, follow=True
    )

    assert "no longer available" in messages_of(response)[-1][1]
    assert not Client.objects.exists()


def test_a_tampered_cache_upload_name_is_refused(admin_client, settings):
    settings.IMPORT_EXPORT_TMP_STORAGE_CLASS = (
        "crm.spreadsheets.storage.SharedCacheStorage"
    )
    preview = upload(admin_client, CLIENT_IMPORT, b"name,email\r\nA,a@mail.test\r\n")
    data = dict(preview.context["confirm_form"].initial)
    name = data["import_file_name"]
    confirm(admin_client, CLIENT_PROCESS, preview)
    session = admin_client.session
    session["crm_import_previews"] = {f"{name}:confirmed": "x"}
    session.save()

    response = admin_client.post(
        CLIENT_PROCESS, {**data, "import_file_name": f"{name}:confirmed"}
    )

    assert response.status_code == 302
    assert Client.objects.count() == 1


def test_an_upload_over_the_size_limit_is_refused_unread(admin_client, settings):
    settings.CRM_IMPORT_MAX_BYTES = 100
    response = upload(
        admin_client, CLIENT_IMPORT, b"name,email\r\n" + b"A,a@x.io\r\n" * 20
    )
    assert response.status_code == 302
    assert "larger than" in messages_of(admin_client.get(response["Location"]))[-1][1]


def test_a_bad_year_in_an_order_export_address_is_a_message(admin_client):
    response = export(admin_client, ORDER_EXPORT, "?created_at__year=0")
    assert response.status_code in (302, 400)
