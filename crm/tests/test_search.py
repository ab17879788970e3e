"""One search definition, the same results on SQLite and PostgreSQL, indexed on PG."""

from decimal import Decimal

import pytest
from django.db import connection

from crm.models import Client, Order
from crm.rules import normalize_phone
from crm.trigram import TRIGRAM_INDEXES, installed_indexes

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="trigram indexes exist on PostgreSQL only (set DATABASE_URL)",
)

CLIENTS = [
    ("Zoë Martin", "zoe@mail.test", "+15550101"),
    ("ZOË ROSSI", "rossi@mail.test", ""),
    ("Zoe Plain", "plain@mail.test", "5550199"),
    ("50% Discount Ltd", "fifty@mail.test", ""),
    ("5000 Widgets", "widgets@mail.test", ""),
    ("a_b Consulting", "ab@mail.test", ""),
    ("aXb Trading", "axb@mail.test", ""),
    ("Ünal Çelik", "unal@mail.test", "+4420123"),
    ("Mixed Case", "MiXeD.Case@Mail.Test", ""),
    ("Grace Hopper", "grace@navy.test", ""),
]
TITLES = [
    "Website redesign",
    "Audit 50%",
    "Audit 5000",
    "x_y plan",
    "xzy plan",
    "ZOË kit",
]
TERMS = [
    "zoë",
    "ZOË",
    "Zoë",
    "zoe",
    "50%",
    "%",
    "_",
    "a_b",
    "x_y",
    "ünal",
    "ÜNAL",
    "mixed.case",
    "MAIL.TEST",
    "555",
    "555-01",
    "+44 20",
    "audit",
    "nobody-matches",
    "ë",
    "zz",
]


@pytest.fixture
def data():
    clients = [
        Client.objects.create(name=name, email=email, phone=phone)
        for name, email, phone in CLIENTS
    ]
    for index, title in enumerate(TITLES * 2):
        Order.objects.create(
            client=clients[index % len(clients)], title=title, amount=Decimal("1.00")
        )
    return clients


def folds_into(term, text):
    """The reference: ``term`` is a substring of ``text`` in any letter case."""
    return term.casefold() in text.casefold()


def reference_clients(term, *, phone):
    digits = normalize_phone(term)
    return {
        c.pk
        for c in Client.objects.all()
        if folds_into(term, c.name)
        or folds_into(term, c.email)
        or (phone and digits in c.phone)
    }


def reference_orders(term):
    return {
        o.pk
        for o in Order.objects.select_related("client")
        if folds_into(term, o.title)
        or folds_into(term, o.client.name)
        or folds_into(term, o.client.email)
    }


@pytest.mark.parametrize("term", TERMS)
def test_client_search_matches_a_plain_substring_reference(data, term):
    for phone in (False, True):
        found = set(
            Client.objects.search(term, phone=phone).values_list("pk", flat=True)
        )
        assert found == reference_clients(term, phone=phone), (term, phone)


@pytest.mark.parametrize("term", TERMS)
def test_order_search_matches_a_plain_substring_reference(data, term):
    found = set(Order.objects.search(term).values_list("pk", flat=True))
    assert found == reference_orders(term), term


@pytest.mark.parametrize("term", ["zoë", "mail.test", "audit", "50%"])
def test_order_search_finds_the_same_orders_with_many_matching_clients(
    data, term, monkeypatch
):
    # Past search_client_ids matching clients, orders are checked against
    # their client instead of an id list: the same orders either way.
    expected = reference_orders(term)
    monkeypatch.setattr(Order.objects.get_queryset().__class__, "search_client_ids", 1)
    found = set(Order.objects.search(term).values_list("pk", flat=True))
    assert found == expected


def test_empty_and_nul_searches_filter_nothing(data):
    assert Order.objects.search("  ").count() == Order.objects.count()
    assert Order.objects.search("\x00").count() == Order.objects.count()
    assert Client.objects.search("zo\x00ë").count() == 2  # Zoë Martin, ZOË ROSSI


def test_admin_public_and_export_searches_agree(data, admin_client, logged_in):
    term = "zoë"
    expected = reference_clients(term, phone=False)
    page = logged_in.get("/clients/", {"q": term})
    shown = {c.pk for c in page.context["clients"]}
    assert shown == expected
    export = logged_in.get("/clients/export.csv", {"q": term})
    body = b"".join(export.streaming_content).decode()
    assert all((c.email in body) == (c.pk in expected) for c in Client.objects.all())
    admin_page = admin_client.get("/admin/crm/client/", {"q": term})
    assert {c.pk for c in admin_page.context["cl"].result_list} == expected
    orders_page = admin_client.get("/admin/crm/order/", {"q": term})
    assert {o.pk for o in orders_page.context["cl"].result_list} == reference_orders(
        term
    )


@on_postgresql
def test_migration_created_the_trigram_indexes():
    assert installed_indexes(connection) == set(TRIGRAM_INDEXES)


def plan(queryset):
    with connection.cursor() as cursor:
        # A test table is tiny: make the planner show what it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    return queryset.order_by().explain()


@on_postgresql
@pytest.mark.parametrize(
    ("field", "index"),
    [
        ("name", "crm_client_name_trgm"),
        ("email", "crm_client_email_trgm"),
        ("phone", "crm_client_phone_trgm"),
    ],
)
def test_client_search_reads_the_trigram_indexes(data, field, index):
    explained = plan(Client.objects.search("zoë", phone=True))
    assert f"Bitmap Index Scan on {index}" in explained


@on_postgresql
def test_order_search_reads_indexes_not_every_order(data):
    explained = plan(Order.objects.search("zoë"))
    assert "Bitmap Index Scan on crm_order_title_trgm" in explained
    assert "Seq Scan on crm_order" not in explained
