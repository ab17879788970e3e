import datetime

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.admin.changelist import ChangelistQuerySet
from crm.models import Client, Order
from crm.tests.helpers import changelist_rows

pytestmark = pytest.mark.django_db


CLIENTS_URL = reverse("admin:crm_client_changelist")


@pytest.mark.parametrize("column", ["order_count", "total_amount"])
def test_client_changelist_sorts_by_computed_columns(
    admin_client, make_client, make_order, column
):
    few, many, none = make_client(), make_client(), make_client()
    make_order(few, "100.00")
    for _ in range(3):
        make_order(many, "50.00")
    index = admin_client.get(CLIENTS_URL).context["cl"].list_display.index(column)

    ascending = changelist_rows(admin_client.get(CLIENTS_URL, {"o": str(index)}))
    descending = changelist_rows(admin_client.get(CLIENTS_URL, {"o": f"-{index}"}))

    assert ascending == [none, few, many]
    assert descending == [many, few, none]


@pytest.mark.parametrize("model", [Client, Order])
def test_changelist_query_count_does_not_grow_with_page_size(
    admin_client, clients_with_orders, django_assert_num_queries, monkeypatch, model
):
    model_admin = admin.site._registry[model]
    url = reverse(f"admin:crm_{model._meta.model_name}_changelist")
    clients_with_orders(100)
    admin_client.get(url)  # warm the content-type cache

    monkeypatch.setattr(model_admin, "list_per_page", 5)
    with CaptureQueriesContext(connection) as small_page:
        assert len(changelist_rows(admin_client.get(url))) == 5
    monkeypatch.setattr(model_admin, "list_per_page", 100)
    with django_assert_num_queries(len(small_page)):
        assert len(changelist_rows(admin_client.get(url))) == 100


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
    # An exact COUNT(*), or on PostgreSQL one capped by a LIMIT (crm.counting).
    counts = [sql for sql in sqls if sql.startswith("SELECT COUNT(*)")]
    assert counts
    assert not any("crm_clienttotals" in sql for sql in counts)


def test_django_asks_the_date_hierarchy_through_our_queryset(
    admin_client, make_client, monkeypatch
):
    asked = []
    for method in ("aggregate", "datetimes"):
        original = getattr(ChangelistQuerySet, method)

        def spy(self, *args, _original=original, _name=method, **kwargs):
            asked.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ChangelistQuerySet, method, spy)
    make_client()

    with CaptureQueriesContext(connection) as context:
        admin_client.get(CLIENTS_URL)

    # If Django stops calling these, the hierarchy scans the table again.
    assert {"aggregate", "datetimes"} <= set(asked)
    sqls = " ".join(query["sql"] for query in context.captured_queries)
    assert "MIN(" not in sqls and "MAX(" not in sqls


def test_the_paginator_counts_through_our_queryset_when_sorted_by_totals(
    admin_client, make_client, make_order, monkeypatch
):
    if connection.vendor == "postgresql":
        pytest.skip(
            "on PostgreSQL crm.counting counts the count_source itself "
            "(test_sorted_changelist_counts_without_the_totals_join covers it)"
        )
    counted = []
    original = ChangelistQuerySet.count

    def spy(self):
        counted.append(self.count_source is not None)
        return original(self)

    monkeypatch.setattr(ChangelistQuerySet, "count", spy)
    make_order(make_client())
    index = (
        admin_client.get(CLIENTS_URL).context["cl"].list_display.index("total_amount")
    )
    counted.clear()

    response = admin_client.get(CLIENTS_URL, {"o": f"-{index}"})

    assert response.context["cl"].result_count == 1
    # If Django stops counting through this method, the count joins the totals.
    assert counted[0] is True


def test_a_client_dated_9999_does_not_break_or_slow_the_changelist(
    admin_client, make_client, django_assert_max_num_queries
):
    for year in (2024, 2025, 9999):
        client = make_client(name=f"Born {year}")
        moment = timezone.make_aware(datetime.datetime(year, 12, 31, 12))
        Client.objects.filter(pk=client.pk).update(created_at=moment)

    with django_assert_max_num_queries(15):
        response = admin_client.get(CLIENTS_URL)

    assert response.status_code == 200
    content = response.content.decode()
    for year in (2024, 2025, 9999):
        assert f"created_at__year={year}" in content
    for params in ({"created_at__year": "9999"}, {"q": "9999"}):
        assert admin_client.get(CLIENTS_URL, params, follow=True).status_code == 200


def test_the_date_hierarchy_costs_one_query_per_year_with_clients(
    admin_client, make_client
):
    def hierarchy_queries():
        with CaptureQueriesContext(connection) as context:
            admin_client.get(CLIENTS_URL)
        return len(context)

    first = make_client()
    Client.objects.filter(pk=first.pk).update(
        created_at=timezone.make_aware(datetime.datetime(1990, 1, 1))
    )
    make_client()  # now: two years with clients, far apart
    few = hierarchy_queries()
    for year in (1995, 2000):
        client = make_client()
        Client.objects.filter(pk=client.pk).update(
            created_at=timezone.make_aware(datetime.datetime(year, 6, 1))
        )
    assert hierarchy_queries() == few + 2
