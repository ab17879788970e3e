"""One search definition, the same results on SQLite and PostgreSQL, indexed on PG."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from crm.admin.orders import OrderAdmin
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


#: The orders the admin can sort by (it adds "-pk" to make the order total).
ORDERINGS = [
    None,  # the model's: newest first
    ("title", "-pk"),
    ("client", "-pk"),
    ("-amount", "-pk"),
    ("status", "-pk"),
    ("created_at", "-pk"),
    ("-client__name", "-pk"),
]
SLICES = [(0, 5), (3, 9), (8, 40), (0, 1)]


@pytest.fixture
def many_orders(data):
    """Pages of orders: five per client, at dates (some equal) and amounts apart."""
    start = timezone.make_aware(datetime.datetime(2026, 1, 1))
    statuses = list(Order.Status)
    for index in range(50):
        order = Order.objects.create(
            client=data[index * 3 % len(data)],
            title=TITLES[index % len(TITLES)],
            amount=Decimal(index % 7),
            status=statuses[index % len(statuses)],
        )
        created = start + datetime.timedelta(hours=index * 17 % 40)
        Order.objects.filter(pk=order.pk).update(created_at=created)
    return data


def reference_page(term, ordering, **filters):
    orders = Order.objects.filter(pk__in=reference_orders(term), **filters)
    if ordering:
        orders = orders.order_by(*ordering)
    return list(orders.values_list("pk", flat=True))


@pytest.mark.parametrize("ordering", ORDERINGS)
@pytest.mark.parametrize("term", ["zoë", "mail.test", "kit", "a_b", "nobody"])
def test_order_search_pages_are_the_references_in_every_order(
    many_orders, term, ordering
):
    searched = Order.objects.select_related("client").search(term)
    if ordering:
        searched = searched.order_by(*ordering)
    expected = reference_page(term, ordering)
    for start, stop in SLICES:
        page = [order.pk for order in searched[start:stop]]
        assert page == expected[start:stop], (start, stop)
    if len(expected) > 4:
        assert searched[4].pk == expected[4]


def test_a_filter_after_the_order_search_keeps_its_pages_right(many_orders):
    searched = Order.objects.search("zoë").filter(status=Order.Status.DONE)
    expected = reference_page("zoë", None, status=Order.Status.DONE)
    # Newer orders of other statuses come first in each branch.
    assert Order.objects.search("zoë")[0].status != Order.Status.DONE
    assert [order.pk for order in searched[:3]] == expected[:3]


def test_order_search_counts_its_first_rows(many_orders):
    expected = len(reference_orders("mail.test"))
    counted = Order.objects.search("mail.test").order_by().values("pk")[:7].count()
    assert counted == 7 < expected
    assert Order.objects.search("mail.test").count() == expected


@pytest.mark.parametrize("params", [{}, {"o": "1"}, {"o": "-3"}, {"p": "2"}])
def test_order_changelist_pages_a_search_like_the_reference(
    many_orders, admin_client, monkeypatch, params
):
    monkeypatch.setattr(OrderAdmin, "list_per_page", 4)
    page = admin_client.get("/admin/crm/order/", {"q": "zoë", **params})
    changelist = page.context["cl"]
    expected = reference_page("zoë", changelist.queryset.query.order_by)
    first = (int(params.get("p", 1)) - 1) * 4
    shown = [order.pk for order in changelist.result_list]
    assert shown == expected[first : first + 4]


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


@on_postgresql
def test_migration_created_the_order_client_index():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            ["crm_order_client_created"],
        )
        (definition,) = cursor.fetchone()
    assert "(client_id, created_at DESC, id DESC)" in definition


@on_postgresql
def test_a_page_of_the_order_search_looks_its_clients_orders_up_by_index(
    many_orders,
):
    page = Order.objects.search("zoë").order_by("-created_at", "-pk")[:10]
    with connection.cursor() as cursor:
        # A test table is tiny: leave the planner only its index scans.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    explained = page.explain()
    assert "crm_order_client_created" in explained
    # Never orders read in the list's order, each checked against the ids.
    assert "Filter: (client_id = ANY" not in explained


@on_postgresql
def test_the_order_search_keeps_its_branches_through_later_calls(data):
    # _clone is Django's hook: without it order_by() or values() would drop
    # the branches, and every page would read the orders newest first.
    searched = Order.objects.search("zoë").order_by("title", "-pk").values("pk")
    assert "UNION ALL" in str(searched[:5].query)
    assert "UNION ALL" not in str(Order.objects.search("kit")[:5].query)
