import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm import jobs
from crm.models import Client, ImportRecord, Job, Order
from crm.services import client_merge
from crm.spreadsheets.resources import ClientResource, OrderResource

pytestmark = pytest.mark.django_db

History = Client.history.model
OrderHistory = Order.history.model


def import_clients(text, **kwargs):
    dataset = ClientResource.read_csv(text.encode())
    result = ClientResource().import_data(dataset, **kwargs)
    assert not result.has_errors() and not result.has_validation_errors()
    return result


def test_an_admin_edit_is_in_the_history_page_with_who_and_what(
    admin_client, admin_user, make_client
):
    client = make_client(name="Old Name", email="old@mail.test")
    url = reverse("admin:crm_client_change", args=(client.pk,))
    response = admin_client.post(
        url, {"name": "New Name", "email": "old@mail.test", "phone": "", **INLINE}
    )
    assert response.status_code == 302

    change = History.objects.filter(id=client.pk).latest("history_id")
    assert (change.history_type, change.history_user, change.name) == (
        "~",
        admin_user,
        "New Name",
    )
    page = admin_client.get(reverse("admin:crm_client_history", args=(client.pk,)))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Old Name" in html and "New Name" in html and admin_user.username in html


INLINE = {
    "orders-TOTAL_FORMS": "0",
    "orders-INITIAL_FORMS": "0",
    "orders-MIN_NUM_FORMS": "0",
    "orders-MAX_NUM_FORMS": "1000",
}


def test_a_public_page_edit_is_recorded_with_its_user(logged_in, user, make_client):
    client = make_client(name="Before", email="pub@mail.test")
    response = logged_in.post(
        reverse("clients:edit", args=(client.pk,)),
        {"name": "After", "email": "pub@mail.test", "phone": ""},
    )
    assert response.status_code == 302
    change = History.objects.filter(id=client.pk).latest("history_id")
    assert (change.history_user, change.name) == (user, "After")


def test_an_import_writes_its_history_in_bulk_with_the_old_values(
    admin_user, make_client
):
    make_client(name="Kept", email="kept@mail.test", phone="111")
    rows = "".join(f"New {n},new{n}@mail.test,\r\n" for n in range(300))
    text = f"name,email,phone\r\n{rows}Renamed,kept@mail.test,222\r\n"

    with CaptureQueriesContext(connection) as queries:
        import_clients(text, user=admin_user, file_name="people.csv")

    record = ImportRecord.objects.get()
    assert (record.user, record.file_name, record.created, record.updated) == (
        admin_user,
        "people.csv",
        300,
        1,
    )
    rows = History.objects.filter(history_import=record)
    assert rows.filter(history_type="+").count() == 300
    update = rows.get(history_type="~")
    assert (update.name, update.phone, update.history_user) == (
        "Renamed",
        "222",
        admin_user,
    )
    assert update.history_before["name"] == "Kept"
    assert update.history_before["phone"] == "111"
    # One statement per batch (executemany), not one per row.
    inserts = [
        q for q in queries if "INSERT INTO" in q["sql"] and "historical" in q["sql"]
    ]
    assert len(inserts) <= 3


def test_a_dry_run_writes_no_history_and_no_record(admin_user):
    import_clients("name,email\r\nA,a@mail.test\r\n", dry_run=True, user=admin_user)
    assert not History.objects.exists() and not ImportRecord.objects.exists()


def test_an_order_import_writes_order_history(admin_user, make_client):
    make_client(email="buyer@mail.test")
    text = "client,title,amount\r\nbuyer@mail.test,Audit,10.00\r\n"
    dataset = OrderResource.read_csv(text.encode())
    result = OrderResource().import_data(dataset, user=admin_user)
    assert not result.has_errors()
    row = OrderHistory.objects.get()
    assert (row.title, row.history_type, row.history_user) == ("Audit", "+", admin_user)


def test_a_merge_records_the_moved_orders_and_the_deleted_clients(
    admin_user, make_client, make_order
):
    survivor = make_client(name="Keep")
    other = make_client(name="Gone")
    orders = [make_order(other) for _ in range(3)]

    client_merge(survivor=survivor, others=[other], user=admin_user)

    moved = OrderHistory.objects.filter(history_type="~")
    assert sorted(moved.values_list("id", flat=True)) == [o.pk for o in orders]
    assert set(moved.values_list("client_id", "history_user")) == {
        (survivor.pk, admin_user.pk)
    }
    assert "Merged into" in moved.first().history_change_reason
    deleted = History.objects.get(id=other.pk, history_type="-")
    assert deleted.history_user == admin_user


def test_a_background_import_is_tied_to_its_job_and_user(
    admin_client, admin_user, settings, django_capture_on_commit_callbacks
):
    settings.CRM_IMPORT_JOB_ROWS = 2
    data = b"name,email\r\nA,a@mail.test\r\nB,b@mail.test\r\nC,c@mail.test\r\n"
    upload = SimpleUploadedFile("big.csv", data, content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:crm_client_import"), {"import_file": upload, "format": 0}
        )
    job = Job.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        jobs.confirm_import(job)

    record = ImportRecord.objects.get()
    assert (record.job, record.user, record.created) == (job, admin_user, 3)
    assert (
        History.objects.filter(history_import=record, history_user=admin_user).count()
        == 3
    )


def test_duplicate_keys_are_kept_on_save_import_and_generate(admin_user, make_client):
    from crm.perf.generate import generate_data

    client = make_client(
        name="  Zoë   Martin ", email="Ann+CRM@Mail.test", phone="0044 20 1"
    )
    assert (client.name_key, client.email_key, client.phone_key) == (
        "zoemartin",
        "ann@mail.test",
        "44201",
    )
    client.name = "Other"
    client.save(update_fields=["name"])
    client.refresh_from_db()
    assert client.name_key == "other"

    import_clients("name,email,phone\r\nÉLODIE Roux,ann+crm@mail.test,+44 20 1\r\n")
    client.refresh_from_db()
    assert (client.name_key, client.phone_key) == ("elodieroux", "44201")
    import_clients("name,email\r\nNew  One,new@mail.test\r\n")
    assert Client.objects.get(email="new@mail.test").name_key == "newone"

    generate_data(5, 0, seed=1)
    assert not Client.objects.filter(name_key="").exists()


def test_the_migration_fills_the_keys_of_existing_clients(make_client):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("crm.migrations.0008_history_undo_duplicates")
    client = make_client(name="Anne Marie", phone="+33 1")
    Client.objects.filter(pk=client.pk).update(name_key="", phone_key="")

    class SchemaEditor:
        pass

    editor = SchemaEditor()
    editor.connection = connection
    migration.fill_duplicate_keys(apps, editor)

    client.refresh_from_db()
    assert (client.name_key, client.phone_key) == ("annemarie", "331")


def test_fixture_clients_get_their_duplicate_keys():
    from django.core.management import call_command

    call_command("loaddata", "demo", verbosity=0)
    assert Client.objects.exists()
    assert not Client.objects.filter(name_key="").exists()
