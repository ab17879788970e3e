import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Client, ClientTotals, Order
from crm.services import client_merge

pytestmark = pytest.mark.django_db

CLIENTS_URL = reverse("admin:crm_client_changelist")
TRIGGERS = {
    "crm_totals_client_insert",
    "crm_totals_client_delete",
    "crm_totals_order_insert",
    "crm_totals_order_delete",
    "crm_totals_order_update",
}


def assert_totals_exact():
    """Every client's totals row equals what with_order_totals() computes."""
    expected = {
        c.pk: (c.order_count, Decimal(c.total_amount).quantize(Decimal("0.01")))
        for c in Client.objects.with_order_totals()
    }
    stored = {
        t.client_id: (t.order_count, t.total_amount) for t in ClientTotals.objects.all()
    }
    assert stored == expected


def totals_of(client):
    row = ClientTotals.objects.get(client=client)
    return row.order_count, row.total_amount


def test_triggers_are_installed():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        names = {name for (name,) in cursor.fetchall()}
    assert TRIGGERS <= names


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
    from crm.generate import generate_data

    generate_data(20, 300, seed=3)
    generate_data(5, 50, seed=4)
    assert_totals_exact()
    assert ClientTotals.objects.count() == 25


@pytest.mark.parametrize(
    ("column", "key"),
    [
        ("order_count", lambda c: c.order_count),
        ("total_amount", lambda c: c.total_amount),
    ],
)
def test_admin_sorts_by_totals_in_both_directions(
    admin_client, make_client, make_order, column, key
):
    amounts = [[], ["5.00"], ["1.00", "1.00"], ["30.00"], ["5.00"], ["0.50"] * 3]
    for client_amounts in amounts:
        client = make_client()
        for amount in client_amounts:
            make_order(client, amount=amount)
    index = admin_client.get(CLIENTS_URL).context["cl"].list_display.index(column)
    for sign, descending in (("", False), ("-", True)):
        response = admin_client.get(CLIENTS_URL, {"o": f"{sign}{index}"})
        shown = list(response.context["cl"].result_list)
        assert len(shown) == len(amounts)
        expected = sorted(
            Client.objects.with_order_totals(),
            key=lambda c: (key(c), c.pk),
            reverse=descending,
        )
        assert [(key(c), c.pk) for c in shown] == [(key(c), c.pk) for c in expected]


def test_sorted_changelist_query_count_does_not_grow(
    admin_client, make_client, make_order
):
    def queries(o):
        with CaptureQueriesContext(connection) as context:
            assert admin_client.get(CLIENTS_URL, {"o": o}).status_code == 200
        return len(context)

    make_order(make_client())
    index = (
        admin_client.get(CLIENTS_URL).context["cl"].list_display.index("total_amount")
    )
    few = queries(f"-{index}")
    for _ in range(30):
        client = make_client()
        make_order(client)
        make_order(client)
    assert queries(f"-{index}") == few


def test_date_hierarchy_lists_only_years_with_matching_clients(
    admin_client, make_client
):
    for year, name in ((2021, "Old"), (2023, "Mid"), (2023, "Other"), (2025, "New")):
        client = make_client(name=name)
        moment = timezone.make_aware(datetime.datetime(year, 6, 1))
        Client.objects.filter(pk=client.pk).update(created_at=moment)

    def years(**params):
        content = admin_client.get(CLIENTS_URL, params).content.decode()
        return {y for y in range(2019, 2028) if f"created_at__year={y}" in content}

    assert years() == {2021, 2023, 2025}
    assert years(q="Mid") == {2023}  # one year: the tag drills down to months
    assert years(q="New") == {2025}
    assert years(q="o") == {2021, 2023}  # Old, Other


def test_sorted_changelist_counts_without_the_totals_join(
    admin_client, make_client, make_order
):
    for name in ("Ann", "Anna", "Bob"):
        make_order(make_client(name=name))
    index = (
        admin_client.get(CLIENTS_URL).context["cl"].list_display.index("total_amount")
    )
    with CaptureQueriesContext(connection) as context:
        response = admin_client.get(CLIENTS_URL, {"o": f"-{index}", "q": "ann"})
    assert response.context["cl"].result_count == 2
    sqls = [query["sql"] for query in context.captured_queries]
    counts = [sql for sql in sqls if sql.startswith('SELECT COUNT(*) AS "__count"')]
    assert counts
    assert not any("crm_clienttotals" in sql for sql in counts)
