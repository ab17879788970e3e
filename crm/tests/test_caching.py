import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Client

pytestmark = pytest.mark.django_db

LIST = reverse("clients:list")


def list_queries(http, url=LIST):
    with CaptureQueriesContext(connection) as queries:
        response = http.get(url)
    client_queries = [q for q in queries if "crm_client" in q["sql"]]
    return response, client_queries


def test_list_data_comes_from_the_cache_the_second_time(logged_in, make_client):
    make_client(name="Cached")
    first, first_queries = list_queries(logged_in)
    second, second_queries = list_queries(logged_in)
    assert first_queries and not second_queries
    assert b"Cached" in second.content


def test_each_search_and_page_is_cached_apart(logged_in, make_client):
    for n in range(12):
        make_client(name=f"Person {n}")
    make_client(name="Unique Name")
    logged_in.get(LIST)
    assert b"Unique Name" in logged_in.get(LIST + "?q=unique").content
    page2 = logged_in.get(LIST + "?page=2")
    assert [c.name for c in page2.context["clients"]] == [
        f"Person {n}" for n in (2, 1, 0)
    ]


def test_a_saved_client_shows_at_once(logged_in, make_client):
    client = make_client(name="Old Name")
    logged_in.get(LIST)
    logged_in.post(
        reverse("clients:edit", args=[client.pk]),
        {"name": "New Name", "email": client.email, "phone": ""},
    )
    html = logged_in.get(LIST).content.decode()
    assert "New Name" in html and "Old Name" not in html


def test_a_new_order_shows_in_the_totals_at_once(logged_in, make_client, make_order):
    client = make_client()
    logged_in.get(LIST)
    make_order(client, "99.99")
    assert b"99.99" in logged_in.get(LIST).content


def test_a_deleted_client_disappears_at_once(logged_in, make_client):
    client = make_client(name="Going Away")
    logged_in.get(LIST)
    logged_in.post(reverse("clients:delete", args=[client.pk]))
    assert list(logged_in.get(LIST).context["clients"]) == []


def test_bulk_writes_that_skip_signals_invalidate_explicitly(logged_in):
    from crm.caching import invalidate_client_list

    logged_in.get(LIST)
    Client.objects.bulk_create([Client(name="Bulk Made", email="bulk@mail.test")])
    invalidate_client_list()
    assert b"Bulk Made" in logged_in.get(LIST).content


def test_an_import_shows_at_once(logged_in):
    import tablib

    from crm.spreadsheets.resources import ClientResource

    logged_in.get(LIST)
    dataset = tablib.Dataset(headers=["name", "email"])
    dataset.append(["Imported Person", "imported@mail.test"])
    result = ClientResource().import_data(dataset, dry_run=False)
    assert not result.has_errors() and not result.has_validation_errors()
    assert b"Imported Person" in logged_in.get(LIST).content


def test_a_merge_shows_at_once(logged_in, make_client, make_order, admin_user):
    from crm.services import client_merge

    keep, merged = make_client(name="Keeper"), make_client(name="Merged Away")
    make_order(merged, "7.00")
    logged_in.get(LIST)
    client_merge(survivor=keep, others=[merged], user=admin_user)
    clients = logged_in.get(LIST).context["clients"]
    assert [(c.name, c.order_count) for c in clients] == [("Keeper", 1)]
