from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from crm.models import Client, ClientTotals, Order
from crm.services import client_merge
from crm.totals import (
    check_triggers,
    drifted_clients,
    missing_triggers,
    recount_totals,
)

pytestmark = pytest.mark.django_db


def orders_by_client():
    """Each client's (order count, total), added up in Python from its orders."""
    totals = {
        pk: (0, Decimal("0.00")) for pk in Client.objects.values_list("pk", flat=True)
    }
    for client_id, amount in Order.objects.values_list("client_id", "amount"):
        count, total = totals[client_id]
        totals[client_id] = (count + 1, total + amount)
    return totals


def assert_totals_exact():
    """Every client's totals, as pages show them, equal what its orders add up to."""
    shown = {
        c.pk: (c.order_count, c.total_amount)
        for c in Client.objects.with_order_totals()
    }
    assert shown == orders_by_client()
    assert drifted_clients(connection) == []


def totals_of(client):
    client = Client.objects.with_order_totals().get(pk=client.pk)
    return client.order_count, client.total_amount


def test_triggers_are_installed():
    assert missing_triggers(connection) == []


def test_new_client_gets_a_zero_totals_row(make_client):
    client = make_client()
    assert totals_of(client) == (0, Decimal("0.00"))


def test_totals_follow_save_and_delete_of_orders(make_client, make_order):
    client = make_client()
    first = make_order(client, amount="10.10")
    make_order(client, amount="0.20")
    assert totals_of(client) == (2, Decimal("10.30"))
    first.amount = Decimal("5.05")
    first.save()
    assert totals_of(client) == (2, Decimal("5.25"))
    first.title = "renamed"
    first.save()
    assert totals_of(client) == (2, Decimal("5.25"))
    first.delete()
    assert totals_of(client) == (1, Decimal("0.20"))
    assert_totals_exact()


def test_totals_follow_bulk_create_and_queryset_update_and_delete(make_client):
    ann, bob = make_client(), make_client()
    Order.objects.bulk_create(
        Order(client=client, title="o", amount=Decimal(amount))
        for client, amount in [(ann, "0.10"), (ann, "0.20"), (bob, "99.99")] * 50
    )
    assert totals_of(ann) == (100, Decimal("15.00"))
    assert totals_of(bob) == (50, Decimal("4999.50"))
    Order.objects.filter(client=ann, amount=Decimal("0.10")).update(
        amount=Decimal("1.00")
    )
    assert totals_of(ann) == (100, Decimal("60.00"))
    Order.objects.filter(client=bob).update(status=Order.Status.DONE)
    assert totals_of(bob) == (50, Decimal("4999.50"))
    moved = Order.objects.filter(client=bob, amount=Decimal("99.99")).update(client=ann)
    assert moved == 50
    assert totals_of(bob) == (0, Decimal("0.00"))
    assert totals_of(ann) == (150, Decimal("5059.50"))
    Order.objects.filter(amount=Decimal("1.00")).delete()
    assert totals_of(ann) == (100, Decimal("5009.50"))
    assert_totals_exact()


def test_totals_follow_a_merge(make_client, make_order, admin_user):
    survivor, other, third = make_client(), make_client(), make_client()
    make_order(survivor, amount="1.00")
    for _ in range(3):
        make_order(other, amount="2.50")
    make_order(third, amount="0.01")
    client_merge(survivor=survivor, others=[other, third], user=admin_user)
    assert totals_of(survivor) == (5, Decimal("8.51"))
    assert not ClientTotals.objects.filter(client_id__in=[other.pk, third.pk]).exists()
    assert_totals_exact()


def test_deleting_a_client_removes_its_totals_row(make_client):
    client = make_client()
    pk = client.pk
    client.delete()
    assert not ClientTotals.objects.filter(client_id=pk).exists()


def test_totals_follow_generated_data():
    from crm.perf.generate import generate_data

    generate_data(20, 300, seed=3)
    generate_data(5, 50, seed=4)
    assert_totals_exact()
    assert ClientTotals.objects.count() == 25


def test_shown_amounts_have_two_exact_decimals(make_client, make_order):
    client = make_client()
    for amount in ("0.10", "0.20", "1234567.89"):
        make_order(client, amount=amount)
    assert totals_of(client) == (3, Decimal("1234568.19"))
    assert str(totals_of(client)[1]) == "1234568.19"


def break_totals(client):
    """Make a client's totals row disagree with its orders, as a lost trigger would."""
    ClientTotals.objects.filter(client=client).update(order_count=99, total_cents=1)


def test_drift_is_found_and_recounted(make_client, make_order):
    ok, broken = make_client(), make_client()
    make_order(ok, amount="2.00")
    make_order(broken, amount="3.50")
    break_totals(broken)
    assert drifted_clients(connection) == [broken.pk]

    recount_totals(connection)

    assert totals_of(broken) == (1, Decimal("3.50"))
    assert_totals_exact()


def test_recount_totals_command_checks_then_repairs(make_client, make_order):
    client = make_client()
    make_order(client, amount="3.50")
    out = StringIO()
    call_command("recount_totals", "--check", stdout=out)
    assert "match" in out.getvalue()
    break_totals(client)

    with pytest.raises(
        CommandError, match=f"1 clients have wrong totals: ids {client.pk}"
    ):
        call_command("recount_totals", "--check", stdout=out)
    call_command("recount_totals", stdout=out)

    assert "1 clients had drifted" in out.getvalue()
    assert_totals_exact()


def drop_order_insert_trigger():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER crm_totals_order_insert")
        else:
            cursor.execute("DROP TRIGGER crm_totals_order_insert ON crm_order")


def test_system_check_warns_when_a_trigger_is_missing():
    assert check_triggers(databases=["default"]) == []
    drop_order_insert_trigger()  # rolled back with the test's transaction

    [warning] = check_triggers(databases=["default"])

    assert warning.id == "crm.W001"
    assert "crm_totals_order_insert" in warning.msg
    assert "recount_totals" in warning.hint


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the bulk load (COPY, indexes rebuilt) is PostgreSQL's (set DATABASE_URL)",
)
def test_bulk_generated_data_keeps_totals_indexes_and_foreign_keys(monkeypatch):
    from crm.perf import generate
    from crm.trigram import TRIGRAM_INDEXES, installed_indexes

    def definitions():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename IN "
                "('crm_client', 'crm_order') ORDER BY indexdef"
            )
            indexes = cursor.fetchall()
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid IN ('crm_client'::regclass, 'crm_order'::regclass) "
                "ORDER BY conname"
            )
            return indexes, cursor.fetchall()

    before = definitions()
    generate.generate_data(10, 40, seed=3)  # below the threshold: row by row
    monkeypatch.setattr(generate, "BULK_LOAD_ROWS", 1)
    generate.generate_data(20, 300, seed=4)
    generate.generate_data(0, 100, seed=5)
    assert_totals_exact()
    assert definitions() == before
    assert installed_indexes(connection) == set(TRIGRAM_INDEXES)
    assert not missing_triggers(connection)
    # The foreign key is back and checked: an order of no client is refused.
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_order (client_id, title, amount, status, created_at) "
                "VALUES (%s, 'x', 1, 'NEW', now())",
                [10**9],
            )
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
