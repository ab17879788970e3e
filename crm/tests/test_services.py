from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from crm.models import Client, Order
from crm.services import MergeError, client_merge

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("lee", is_staff=True)


def test_merge_moves_orders_fills_blanks_keeps_vip_and_deletes_others(
    make_client, make_order, staff
):
    survivor = make_client(name="Ann", email="ann@mail.test")
    bob = make_client(name="Bob", email="bob@mail.test", phone="555-1", vip=True)
    cat = make_client(name="Cat", email="cat@mail.test", avatar="avatars/cat.png")
    make_order(survivor, "1.00")
    make_order(bob, "2.00")
    make_order(bob, "3.00")
    make_order(cat, "4.50")

    result = client_merge(survivor=survivor, others=[bob, cat], user=staff)

    assert result.orders_moved == 3
    assert [c.email for c in result.merged] == ["bob@mail.test", "cat@mail.test"]
    assert list(Client.objects.values_list("email", flat=True)) == ["ann@mail.test"]
    survivor.refresh_from_db()
    assert survivor.name == "Ann"
    assert survivor.email == "ann@mail.test"
    assert survivor.phone == "5551"
    assert survivor.avatar.name == "avatars/cat.png"
    assert survivor.vip is True
    assert survivor.orders.count() == 4
    assert survivor.orders.aggregate(s=Sum("amount"))["s"] == Decimal("10.50")


def test_merge_keeps_survivor_values_that_are_not_blank(make_client, staff):
    survivor = make_client(name="Ann", phone="111")
    other = make_client(name="Bob", phone="222")

    client_merge(survivor=survivor, others=[other], user=staff)

    survivor.refresh_from_db()
    assert (survivor.name, survivor.phone, survivor.vip) == ("Ann", "111", False)


def test_merge_writes_change_and_deletion_log_entries(make_client, make_order, staff):
    survivor = make_client(name="Ann", email="ann@mail.test")
    bob = make_client(name="Bob", email="bob@mail.test")
    cat = make_client(name="Cat", email="cat@mail.test")
    for _ in range(3):
        make_order(bob)

    client_merge(survivor=survivor, others=[cat, bob], user=staff)

    client_type = ContentType.objects.get_for_model(Client)
    entries = LogEntry.objects.filter(content_type=client_type, user=staff)
    change = entries.get(action_flag=CHANGE)
    assert change.object_id == str(survivor.pk)
    message = change.get_change_message()
    for text in ("Bob", "bob@mail.test", "Cat", "cat@mail.test", "moved 3 orders"):
        assert text in message
    deletions = entries.filter(action_flag=DELETION).order_by("object_id")
    assert [e.object_id for e in deletions] == [str(bob.pk), str(cat.pk)]
    assert [e.object_repr for e in deletions] == [str(bob), str(cat)]


def test_merge_rejects_no_others_and_survivor_among_others(make_client, staff):
    survivor = make_client()

    with pytest.raises(MergeError) as nothing:
        client_merge(survivor=survivor, others=[], user=staff)
    with pytest.raises(MergeError) as itself:
        client_merge(survivor=survivor, others=[survivor], user=staff)

    assert nothing.value.code == "nothing_to_merge"
    assert itself.value.code == "survivor_merged"


def test_merge_of_an_already_merged_client_is_refused_without_changes(
    make_client, make_order, staff
):
    survivor, bob, cat = make_client(), make_client(), make_client()
    make_order(cat)
    client_merge(survivor=bob, others=[cat], user=staff)
    entries_before = LogEntry.objects.count()

    with pytest.raises(MergeError) as error:
        client_merge(survivor=survivor, others=[bob, cat], user=staff)

    assert error.value.code == "already_merged"
    assert "already" in error.value.messages[0]
    assert set(Client.objects.values_list("pk", flat=True)) == {survivor.pk, bob.pk}
    assert bob.orders.count() == 1
    assert LogEntry.objects.count() == entries_before


def test_failure_mid_merge_rolls_everything_back(make_client, make_order, staff):
    survivor = make_client(name="Ann")
    bob = make_client(name="Bob", phone="555", vip=True)
    make_order(bob)

    with (
        mock.patch.object(
            LogEntry.objects, "log_actions", side_effect=DatabaseError("disk full")
        ),
        pytest.raises(DatabaseError),
    ):
        client_merge(survivor=survivor, others=[bob], user=staff)

    survivor.refresh_from_db()
    assert (survivor.phone, survivor.vip) == ("", False)
    assert Client.objects.filter(pk=bob.pk).exists()
    assert Order.objects.get().client_id == bob.pk
    assert not LogEntry.objects.exists()


def test_merge_query_count_does_not_grow_with_orders_moved(
    make_client, make_order, staff
):
    ContentType.objects.get_for_model(Client)  # warm the content-type cache

    def merge_with_orders(n):
        survivor, a, b = make_client(), make_client(), make_client()
        Order.objects.bulk_create(
            Order(client=owner, title="x", amount=Decimal("1.00"))
            for owner in [a, b] * (n // 2)
        )
        with CaptureQueriesContext(connection) as queries:
            result = client_merge(survivor=survivor, others=[a, b], user=staff)
        assert result.orders_moved == n
        return len(queries)

    assert merge_with_orders(10) == merge_with_orders(200)
