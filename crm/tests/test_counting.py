"""List counts: exact while cheap, a labelled estimate past the limit on PostgreSQL."""

import pytest
from django.db import connection

from crm import counting
from crm.counting import EstimatedCount, count_rows
from crm.models import Client, Order
from crm.perf.generate import generate_data

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="estimated counts are PostgreSQL's (set DATABASE_URL)",
)


def analyze():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE crm_client")


def test_small_lists_are_counted_exactly():
    generate_data(30, 0, seed=1)
    count = count_rows(Client.objects.all(), exact_limit=30)
    assert count == 30
    assert not getattr(count, "estimated", False)


@on_postgresql
def test_big_lists_get_an_estimate_labelled_as_such():
    generate_data(60, 0, seed=1)
    analyze()
    count = count_rows(Client.objects.all(), exact_limit=20)
    assert isinstance(count, EstimatedCount)
    assert count >= 21  # never less than what was counted
    assert count.label == f"about {int(count):,}"


@on_postgresql
def test_a_filtered_list_past_the_limit_gets_the_planners_estimate():
    generate_data(60, 0, seed=1)
    analyze()
    count = count_rows(Client.objects.search("."), exact_limit=20)
    assert isinstance(count, EstimatedCount)
    assert 21 <= count


def test_an_order_search_under_the_limit_is_counted_exactly():
    generate_data(40, 120, seed=1)
    count = count_rows(Order.objects.search("@"), exact_limit=1000)  # every client
    assert count == Order.objects.count() == 120
    assert not getattr(count, "estimated", False)


@on_postgresql
def test_an_order_search_past_the_limit_gets_an_estimate():
    generate_data(40, 120, seed=1)
    count = count_rows(Order.objects.search("@"), exact_limit=20)
    assert isinstance(count, EstimatedCount)
    assert 21 <= count


def test_sqlite_counts_exactly_whatever_the_size():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's behaviour")
    generate_data(30, 0, seed=1)
    assert count_rows(Client.objects.all(), exact_limit=5) == 30


@on_postgresql
@pytest.mark.parametrize("url", ["/admin/crm/client/", "/admin/crm/order/"])
def test_admin_lists_say_about_when_they_estimate(admin_client, monkeypatch, url):
    monkeypatch.setattr(counting.CountingPaginator, "exact_limit", 20)
    generate_data(60, 80, seed=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_client")
        cursor.execute("ANALYZE crm_order")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert '<span class="estimated-count"' in page.content.decode()
    assert "about " in page.content.decode()
    searched = admin_client.get(url, {"q": "a"})
    assert searched.status_code == 200


@pytest.mark.parametrize("url", ["/admin/crm/client/", "/admin/crm/order/"])
def test_admin_lists_show_exact_counts_under_the_limit(admin_client, url):
    generate_data(12, 30, seed=1)
    page = admin_client.get(url).content.decode()
    expected = Client.objects.count() if "client" in url else Order.objects.count()
    assert "estimated-count" not in page
    assert f"{expected} " in page
