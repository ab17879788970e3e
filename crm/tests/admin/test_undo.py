import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from crm.models import Client, ImportRecord, MergeRecord, Order
from crm.services import client_merge
from crm.spreadsheets.resources import ClientResource
from crm.tests.helpers import messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(admin_user, make_client, make_order):
    survivor = make_client(name="Keep", email="keep@mail.test")
    other = make_client(name="Gone", email="gone@mail.test")
    make_order(other)
    return client_merge(survivor=survivor, others=[other], user=admin_user).record


def undo_url(record):
    return reverse(f"admin:crm_{record._meta.model_name}_undo", args=(record.pk,))


def test_a_merge_is_undone_from_its_page_after_a_confirmation(admin_client, record):
    page = admin_client.get(reverse("admin:crm_mergerecord_change", args=(record.pk,)))
    assert undo_url(record) in page.content.decode()
    confirm = admin_client.get(undo_url(record))
    assert confirm.status_code == 200
    assert "Gone &lt;gone@mail.test&gt;" in confirm.content.decode()
    assert Client.objects.count() == 1  # nothing yet

    response = admin_client.post(undo_url(record), follow=True)

    assert ("success", "Undid merge") == (
        messages_of(response)[0][0],
        messages_of(response)[0][1][:11],
    )
    gone = Client.objects.get(email="gone@mail.test")
    assert Order.objects.get().client == gone


def test_a_refused_undo_says_why_and_changes_nothing(admin_client, record):
    Client.objects.create(name="Newcomer", email="gone@mail.test")
    response = admin_client.post(undo_url(record), follow=True)
    [(level, text)] = messages_of(response)
    assert level == "error" and "gone@mail.test is now the email" in text
    assert MergeRecord.objects.get().undone_at is None
    assert Order.objects.get().client.email == "keep@mail.test"


def test_undoing_a_merge_needs_the_merge_permission(client, django_user_model, record):
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="change_client"))
    client.force_login(clerk)
    assert client.post(undo_url(record)).status_code == 403
    assert client.get(reverse("admin:crm_mergerecord_changelist")).status_code == 403
    assert MergeRecord.objects.get().undone_at is None
    clerk.user_permissions.add(Permission.objects.get(codename="delete_client"))
    clerk = django_user_model.objects.get(pk=clerk.pk)  # permissions re-read
    client.force_login(clerk)
    assert client.post(undo_url(record)).status_code == 302
    assert MergeRecord.objects.get().undone_at is not None


def test_an_import_is_undone_from_the_imports_page(admin_client, admin_user):
    dataset = ClientResource.read_csv(b"name,email\r\nA,a@mail.test\r\n")
    ClientResource().import_data(dataset, user=admin_user, file_name="a.csv")
    record = ImportRecord.objects.get()
    listing = admin_client.get(reverse("admin:crm_importrecord_changelist"))
    assert "a.csv" in listing.content.decode()

    response = admin_client.post(undo_url(record), follow=True)

    assert messages_of(response)[0][0] == "success"
    assert not Client.objects.exists()


def test_the_history_page_of_a_merged_client_survives_its_deletion(
    admin_client, record
):
    gone_id = MergeRecord.objects.get().merged[0]["id"]
    page = admin_client.get(reverse("admin:crm_client_history", args=(gone_id,)))
    assert page.status_code == 200
    assert "Deleted" in page.content.decode()
