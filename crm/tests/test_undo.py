from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Client, ImportRecord, MergeRecord, Order
from crm.services import client_merge
from crm.spreadsheets.resources import ClientResource
from crm.tests.conftest import image_upload
from crm.undo import UndoError, import_undo, merge_undo

pytestmark = pytest.mark.django_db

History = Client.history.model


def snapshot():
    return (
        list(Client.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        list(MergeRecord.objects.values("pk", "undone_at")),
        list(ImportRecord.objects.values("pk", "undone_at")),
    )


@pytest.fixture
def merged(admin_user, make_client, make_order, django_capture_on_commit_callbacks):
    """Merge two clients (one VIP with a phone and an avatar) into a bare one."""
    survivor = make_client(name="Keep", email="keep@mail.test")
    donor = make_client(
        name="Donor",
        email="donor@mail.test",
        phone="555",
        vip=True,
        avatar=image_upload(),
    )
    other = make_client(name="Other", email="other@mail.test")
    orders = {
        donor.pk: [make_order(donor).pk, make_order(donor).pk],
        other.pk: [make_order(other).pk],
        survivor.pk: [make_order(survivor).pk],
    }
    before = {
        c.pk: Client.objects.filter(pk=c.pk).values().get() for c in (donor, other)
    }
    with django_capture_on_commit_callbacks(execute=True):
        result = client_merge(survivor=survivor, others=[donor, other], user=admin_user)
    survivor.refresh_from_db()
    assert (survivor.phone, survivor.vip, survivor.avatar.name) == (
        "555",
        True,
        before[donor.pk]["avatar"],
    )
    return {
        "record": result.record,
        "survivor": survivor,
        "donor": donor,
        "other": other,
        "orders": orders,
        "before": before,
    }


def test_undoing_a_merge_brings_back_clients_orders_and_survivor_fields(
    merged, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = merge_undo(record=merged["record"], user=admin_user)

    for pk, values in merged["before"].items():
        assert Client.objects.filter(pk=pk).values().get() == values
    for pk, order_pks in merged["orders"].items():
        assert (
            sorted(Order.objects.filter(client_id=pk).values_list("pk", flat=True))
            == order_pks
        )
    survivor = Client.objects.get(pk=merged["survivor"].pk)
    assert (survivor.phone, survivor.vip, survivor.avatar.name) == ("", False, "")
    donor = Client.objects.get(pk=merged["donor"].pk)
    assert default_storage.exists(donor.avatar.name)  # kept while undoable
    assert donor.totals.order_count == 2  # the totals follow the orders back
    merged["record"].refresh_from_db()
    assert merged["record"].undone_by == admin_user
    assert "restored 2 clients" in result.message
    assert LogEntry.objects.filter(
        action_flag=ADDITION, object_id=str(donor.pk)
    ).exists()
    assert (
        History.objects.filter(id=donor.pk, history_type="+")
        .latest("history_id")
        .history_change_reason.startswith("Undo of merge")
    )


def conflict_email(merged):
    Client.objects.create(name="Newcomer", email="donor@mail.test")


def conflict_order_moved(merged):
    Order.objects.filter(pk=merged["orders"][merged["donor"].pk][0]).update(
        client=Client.objects.create(name="X", email="x@mail.test")
    )


def conflict_order_deleted(merged):
    Order.objects.filter(pk=merged["orders"][merged["other"].pk][0]).delete()


def conflict_survivor_edited(merged):
    survivor = merged["survivor"]
    survivor.phone = "999"
    survivor.save()


def conflict_survivor_merged(merged):
    user = merged["record"].user
    target = Client.objects.create(name="Target", email="target@mail.test")
    client_merge(survivor=target, others=[merged["survivor"]], user=user)


@pytest.mark.parametrize(
    ("conflict", "code", "reason"),
    [
        (conflict_email, "email_taken", "donor@mail.test is now the email"),
        (conflict_order_moved, "orders_changed", "1 of the 3 orders"),
        (
            conflict_order_deleted,
            "orders_changed",
            "moved to another client or deleted",
        ),
        (conflict_survivor_edited, "survivor_changed", "phone changed since"),
        (conflict_survivor_merged, "survivor_gone", "no longer exists"),
    ],
)
def test_a_merge_undo_after_a_conflicting_change_is_refused_and_changes_nothing(
    merged, admin_user, conflict, code, reason
):
    conflict(merged)
    before = snapshot()
    with pytest.raises(UndoError) as error:
        merge_undo(record=merged["record"], user=admin_user)
    assert error.value.code == code
    assert reason in " ".join(error.value.messages)
    assert snapshot() == before


def test_a_merge_is_undone_only_once(merged, admin_user):
    merge_undo(record=merged["record"], user=admin_user)
    before = snapshot()
    with pytest.raises(UndoError, match="undone already"):
        merge_undo(record=merged["record"], user=admin_user)
    assert snapshot() == before


def merge_with_orders(admin_user, count, n):
    survivor = Client.objects.create(name="Keep", email=f"keep{n}@mail.test")
    other = Client.objects.create(name="Gone", email=f"gone{n}@mail.test", phone="1")
    Order.objects.bulk_create(
        [Order(client=other, title="o", amount=Decimal("1.00")) for _ in range(count)],
        batch_size=1000,
    )
    return client_merge(survivor=survivor, others=[other], user=admin_user)


def test_undoing_a_merge_runs_the_same_queries_for_10_or_10k_orders(
    admin_user, django_assert_num_queries
):
    small = merge_with_orders(admin_user, 10, 1)
    big = merge_with_orders(admin_user, 10_000, 2)
    with CaptureQueriesContext(connection) as queries:
        merge_undo(record=small.record, user=admin_user)
    with django_assert_num_queries(len(queries)):
        merge_undo(record=big.record, user=admin_user)
    assert Order.objects.filter(client__email="gone2@mail.test").count() == 10_000


# Imports -----------------------------------------------------------------------


def import_clients(text, user):
    dataset = ClientResource.read_csv(text.encode())
    resource = ClientResource()
    result = resource.import_data(dataset, user=user)
    assert not result.has_errors() and not result.has_validation_errors()
    return resource.import_record


@pytest.fixture
def imported(admin_user, make_client):
    existing = make_client(name="Old Name", email="old@mail.test", phone="111")
    existing.refresh_from_db()
    record = import_clients(
        "name,email,phone,vip\r\n"
        "New One,new1@mail.test,,\r\n"
        "New Two,new2@mail.test,,\r\n"
        "New Name,old@mail.test,222,1\r\n",
        admin_user,
    )
    return record, existing


def test_undoing_an_import_deletes_what_it_created_and_restores_what_it_updated(
    imported, admin_user
):
    record, existing = imported
    result = import_undo(record=record, user=admin_user)

    assert list(Client.objects.values_list("email", flat=True)) == ["old@mail.test"]
    client = Client.objects.get()
    assert (client.name, client.phone, client.vip, client.name_key) == (
        "Old Name",
        "111",
        False,
        "oldname",
    )
    assert client.updated_at == existing.updated_at
    assert "deleted 2 clients" in result.message and "restored 1" in result.message
    assert History.objects.filter(history_type="-").count() == 2
    record.refresh_from_db()
    assert record.undone_by == admin_user


def conflict_created_has_orders(record, existing, make_order):
    make_order(Client.objects.get(email="new1@mail.test"))


def conflict_updated_edited(record, existing, make_order):
    client = Client.objects.get(pk=existing.pk)
    client.name = "Edited"
    client.save()


def conflict_created_edited(record, existing, make_order):
    client = Client.objects.get(email="new2@mail.test")
    client.phone = "777"
    client.save()


def conflict_updated_merged(record, existing, make_order):
    target = Client.objects.create(name="Target", email="target@mail.test")
    client_merge(survivor=target, others=[Client(pk=existing.pk)], user=record.user)


@pytest.mark.parametrize(
    ("conflict", "code"),
    [
        (conflict_created_has_orders, "has_orders"),
        (conflict_updated_edited, "changed_since"),
        (conflict_created_edited, "changed_since"),
        (conflict_updated_merged, "changed_since"),
    ],
)
def test_an_import_undo_is_refused_while_something_depends_on_it(
    imported, admin_user, make_order, conflict, code
):
    record, existing = imported
    conflict(record, existing, make_order)
    before = snapshot()
    with pytest.raises(UndoError) as error:
        import_undo(record=record, user=admin_user)
    assert error.value.code == code
    assert "Nothing was changed" in " ".join(error.value.messages)
    assert snapshot() == before


def test_an_import_that_changed_nothing_leaves_no_record(admin_user, make_client):
    make_client(name="Same", email="same@mail.test")
    assert import_clients("name,email\r\nSame,same@mail.test\r\n", admin_user) is None
    assert not ImportRecord.objects.exists()
