import os

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Client, Order

pytestmark = pytest.mark.django_db

CLIENT_IMPORT = reverse("admin:crm_client_import")
CLIENT_PROCESS = reverse("admin:crm_client_process_import")
CLIENT_EXPORT = reverse("admin:crm_client_export")
ORDER_IMPORT = reverse("admin:crm_order_import")
ORDER_PROCESS = reverse("admin:crm_order_process_import")
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
    assert Client.objects.get(email="two@mail.test").name == "Two\nLines"
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
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())  # Excel reads UTF-8
    text = response.content.decode("utf-8-sig")
    header, row = text.splitlines()[:2]
    assert header == ",".join(CLIENT_FIELDS)
    assert "'=HYPERLINK(1)" in row
    assert "'+33 1" in row
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
    settings.IMPORT_EXPORT_TMP_STORAGE_CLASS = f"crm.tmp_storages.{storage}"
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


@pytest.mark.parametrize("storage", ["FolderStorage", "SharedCacheStorage"])
def test_two_confirms_of_one_upload_claim_it_once(storage):
    from crm import tmp_storages

    cls = getattr(tmp_storages, storage)
    preview = cls(encoding="utf-8")
    preview.save(b"name,email\r\n")
    assert "name,email" in str(preview.read())  # the preview reads its own upload
    name = preview.name
    first, second = cls(name=name, encoding="utf-8"), cls(name=name, encoding="utf-8")
    assert "name,email" in str(first.read())
    with pytest.raises(tmp_storages.ImportFileGone):
        second.read()
    first.remove()


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
