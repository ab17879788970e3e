import datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.db import DatabaseError, connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Client, Order
from crm.services import client_merge

from .conftest import image_upload

pytestmark = pytest.mark.django_db

CLIENTS_URL = reverse("admin:crm_client_changelist")
ORDERS_URL = reverse("admin:crm_order_changelist")


def rows(response):
    """Return the changelist's clients (or orders) in page order."""
    return list(response.context["cl"].result_list)


def messages_of(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def set_created(obj, *args):
    moment = timezone.make_aware(datetime.datetime(*args))
    type(obj).objects.filter(pk=obj.pk).update(created_at=moment)


@pytest.fixture
def clients_with_orders(make_client, make_order):
    def make(n, orders_each=2):
        for i in range(n):
            client = make_client(avatar="avatars/a.png" if i % 2 else "")
            for _ in range(orders_each):
                make_order(client)

    return make


# ClientAdmin changelist


def test_client_changelist_shows_order_count_and_total_with_two_decimals(
    admin_client, make_client, make_order
):
    ann = make_client(name="Ann", avatar="avatars/ann.png")
    make_client(name="Bob")
    make_order(ann, "10.5")
    make_order(ann, "20")

    response = admin_client.get(CLIENTS_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert '<td class="field-order_count">2</td>' in html
    assert '<td class="field-total_amount">30.50</td>' in html
    assert '<td class="field-total_amount">0.00</td>' in html
    assert 'src="/media/avatars/ann.png"' in html
    assert 'class="avatar-fallback"' in html


@pytest.mark.parametrize("column", ["order_count", "total_amount"])
def test_client_changelist_sorts_by_computed_columns(
    admin_client, make_client, make_order, column
):
    few, many, none = make_client(), make_client(), make_client()
    make_order(few, "100.00")
    for _ in range(3):
        make_order(many, "50.00")
    index = admin_client.get(CLIENTS_URL).context["cl"].list_display.index(column)

    ascending = rows(admin_client.get(CLIENTS_URL, {"o": str(index)}))
    descending = rows(admin_client.get(CLIENTS_URL, {"o": f"-{index}"}))

    assert ascending == [none, few, many]
    assert descending == [many, few, none]


def test_has_open_orders_filter(admin_client, make_client, make_order):
    open_client, done_client, idle = make_client(), make_client(), make_client()
    make_order(open_client, status=Order.Status.NEW)
    make_order(open_client, status=Order.Status.IN_PROGRESS)
    make_order(done_client, status=Order.Status.DONE)

    yes = rows(admin_client.get(CLIENTS_URL, {"has_open_orders": "yes"}))
    no = rows(admin_client.get(CLIENTS_URL, {"has_open_orders": "no"}))

    assert yes == [open_client]
    assert set(no) == {done_client, idle}


def test_created_at_date_range_filter_narrows_the_list(admin_client, make_client):
    old, inside, new = make_client(), make_client(), make_client()
    set_created(old, 2024, 1, 31, 23, 59)
    set_created(inside, 2024, 2, 10, 12)
    set_created(new, 2024, 3, 1, 0, 1)

    response = admin_client.get(
        CLIENTS_URL,
        {
            "created_at__range__gte": "2024-02-01",
            "created_at__range__lte": "2024-02-29",
        },
    )

    assert rows(response) == [inside]


def test_date_hierarchy_and_vip_filter(admin_client, make_client):
    vip = make_client(email="boss@company.com")
    plain = make_client()
    set_created(vip, 2023, 5, 1)

    assert rows(admin_client.get(CLIENTS_URL, {"vip__exact": "1"})) == [vip]
    assert rows(admin_client.get(CLIENTS_URL, {"created_at__year": "2023"})) == [vip]
    assert rows(admin_client.get(CLIENTS_URL, {"vip__exact": "0"})) == [plain]


@pytest.mark.parametrize("term", ["ann smith", "ANN@shop", "555-0101"])
def test_client_search_by_name_email_and_phone(admin_client, make_client, term):
    ann = make_client(name="Ann Smith", email="ann@shop.test", phone="555-0101")
    make_client(name="Bob", email="bob@mail.test", phone="555-0202")

    assert rows(admin_client.get(CLIENTS_URL, {"q": term})) == [ann]


def test_totals_stay_right_when_search_filters_and_dates_combine(
    admin_client, make_client, make_order
):
    ann = make_client(name="Ann", email="ann@company.com")
    make_client(name="Annie")  # matches the search, filtered out as not VIP
    make_order(ann, "10.00")
    make_order(ann, "20.00", status=Order.Status.IN_PROGRESS)
    make_order(ann, "30.50", status=Order.Status.DONE)
    set_created(ann, 2024, 6, 1)

    response = admin_client.get(
        CLIENTS_URL,
        {
            "q": "ann",
            "vip__exact": "1",
            "has_open_orders": "yes",
            "created_at__range__gte": "2024-01-01",
            "created_at__range__lte": "2024-12-31",
            "created_at__year": "2024",
        },
    )

    [row] = rows(response)
    assert (row.pk, row.order_count, row.total_amount) == (ann.pk, 3, Decimal("60.50"))
    assert '<td class="field-total_amount">60.50</td>' in response.content.decode()


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
        assert len(rows(admin_client.get(url))) == 5
    monkeypatch.setattr(model_admin, "list_per_page", 100)
    with django_assert_num_queries(len(small_page)):
        assert len(rows(admin_client.get(url))) == 100


def test_client_change_page_shows_orders_inline(admin_client, make_client, make_order):
    ann = make_client()
    make_order(ann, "12.00", title="Blue widgets")
    make_order(ann, "3.00", title="Red widgets")

    response = admin_client.get(reverse("admin:crm_client_change", args=(ann.pk,)))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="Blue widgets"' in html
    assert 'value="Red widgets"' in html
    assert 'name="orders-TOTAL_FORMS" value="2"' in html


def test_saving_the_client_page_edits_and_adds_inline_orders(
    admin_client, make_client, make_order
):
    ann = make_client(name="Ann", email="ann@mail.test")
    order = make_order(ann, "12.00", title="Blue widgets")
    data = {
        "name": "Ann",
        "email": "ann@mail.test",
        "phone": "",
        "orders-TOTAL_FORMS": "2",
        "orders-INITIAL_FORMS": "1",
        "orders-MIN_NUM_FORMS": "0",
        "orders-MAX_NUM_FORMS": "1000",
        "orders-0-id": str(order.pk),
        "orders-0-client": str(ann.pk),
        "orders-0-title": "Blue widgets",
        "orders-0-amount": "15.00",
        "orders-0-status": Order.Status.DONE,
        "orders-1-client": str(ann.pk),
        "orders-1-title": "Green widgets",
        "orders-1-amount": "7.25",
        "orders-1-status": Order.Status.NEW,
    }

    response = admin_client.post(
        reverse("admin:crm_client_change", args=(ann.pk,)), data
    )

    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.amount, order.status) == (Decimal("15.00"), Order.Status.DONE)
    assert ann.orders.get(title="Green widgets").amount == Decimal("7.25")


def test_client_page_accepts_an_avatar_upload(admin_client, make_client):
    ann = make_client(name="Ann", email="ann@mail.test")
    data = {
        "name": "Ann",
        "email": "ann@mail.test",
        "avatar": image_upload(),
        "orders-TOTAL_FORMS": "0",
        "orders-INITIAL_FORMS": "0",
    }

    response = admin_client.post(
        reverse("admin:crm_client_change", args=(ann.pk,)), data
    )

    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.avatar.name.startswith("avatars/")


# OrderAdmin


def test_order_autocomplete_finds_clients(admin_client, make_client):
    ann = make_client(name="Ann", email="ann@shop.test")
    make_client(name="Bob")

    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "crm",
            "model_name": "order",
            "field_name": "client",
            "term": "ann",
        },
    )

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(ann.pk), "text": str(ann)}]


def test_order_add_page_uses_autocomplete_for_client(admin_client):
    response = admin_client.get(reverse("admin:crm_order_add"))

    assert 'class="admin-autocomplete' in response.content.decode()


def test_order_changelist_filters_and_search(admin_client, make_client, make_order):
    ann = make_client(name="Ann", email="ann@shop.test")
    bob = make_client(name="Bob", email="bob@mail.test")
    cheap = make_order(ann, "5.00", title="Stickers")
    mid = make_order(ann, "50.00", title="Mugs", status=Order.Status.DONE)
    dear = make_order(bob, "500.00", title="Laptop")
    set_created(cheap, 2024, 1, 15)

    def listed(**params):
        return set(rows(admin_client.get(ORDERS_URL, params)))

    assert listed(status__exact="DONE") == {mid}
    assert listed(**{"amount__range__gte": "10", "amount__range__lte": "100"}) == {mid}
    assert listed(**{"amount__range__gte": "50"}) == {mid, dear}
    assert listed(
        **{
            "created_at__range__gte": "2024-01-01",
            "created_at__range__lte": "2024-01-31",
        }
    ) == {cheap}
    assert listed(q="ann@shop") == {cheap, mid}
    assert listed(q="bob") == {dear}
    assert listed(q="laptop") == {dear}


def test_order_changelist_shows_client_and_amount(
    admin_client, make_client, make_order
):
    ann = make_client(name="Ann")
    make_order(ann, "30.50", title="Mugs")

    html = admin_client.get(ORDERS_URL).content.decode()

    assert "Mugs" in html
    assert str(ann).replace("<", "&lt;").replace(">", "&gt;") in html
    assert "30.50" in html


# Merge clients


def post_merge(http_client, clients, **extra):
    data = {
        "action": "merge_clients",
        ACTION_CHECKBOX_NAME: [str(c.pk) for c in clients],
        **extra,
    }
    # Following the redirect shows (and so consumes) this request's messages.
    return http_client.post(CLIENTS_URL, data, follow=True)


def confirm_merge(http_client, clients, survivor):
    return post_merge(http_client, clients, post="yes", survivor=str(survivor.pk))


def redirected(response):
    """Return whether the POST redirected back to the changelist (no error page)."""
    return response.redirect_chain == [(CLIENTS_URL, 302)]


def snapshot():
    return (
        list(Client.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        LogEntry.objects.count(),
    )


def test_merge_confirmation_page_lists_clients_and_defaults_to_the_oldest(
    admin_client, make_client, make_order
):
    newer = make_client(name="Newer", email="newer@mail.test")
    oldest = make_client(name="Oldest", email="oldest@mail.test")
    set_created(oldest, 2020, 1, 1)
    for _ in range(3):
        make_order(newer)

    response = post_merge(admin_client, [newer, oldest])

    html = response.content.decode()
    assert response.status_code == 200
    assert response.templates[0].name == "admin/crm/client/merge_confirmation.html"
    assert "newer@mail.test" in html and "oldest@mail.test" in html
    assert '<td class="order-count">3</td>' in html
    assert (
        f'name="survivor" id="survivor-{oldest.pk}" value="{oldest.pk}" checked' in html
    )
    assert f'name="survivor" id="survivor-{newer.pk}" value="{newer.pk}">' in html
    assert f'name="{ACTION_CHECKBOX_NAME}" value="{newer.pk}"' in html
    assert 'name="post" value="yes"' in html
    assert "No, take me back" in html
    assert Client.objects.count() == 2


def test_merge_flow_moves_orders_deletes_others_and_logs(
    admin_client, make_client, make_order, admin_user
):
    ann = make_client(name="Ann", email="ann@mail.test")
    bob = make_client(name="Bob", email="bob@mail.test", phone="555-1", vip=True)
    cat = make_client(name="Cat", email="cat@mail.test")
    make_order(ann, "1.00")
    make_order(bob, "2.00")
    make_order(cat, "3.50")
    make_order(cat, "4.00")
    post_merge(admin_client, [ann, bob, cat])

    response = confirm_merge(admin_client, [ann, bob, cat], survivor=ann)

    assert redirected(response)
    assert list(Client.objects.all()) == [ann]
    ann.refresh_from_db()
    assert (ann.phone, ann.vip) == ("555-1", True)
    assert ann.orders.count() == 4
    assert ann.orders.aggregate(s=Sum("amount"))["s"] == Decimal("10.50")
    [(level, text)] = messages_of(response)
    assert level == "success"
    assert (
        "Merged 2 clients into" in text and "Ann" in text and "moved 3 orders" in text
    )
    entries = LogEntry.objects.filter(user=admin_user)
    change = entries.get(action_flag=CHANGE)
    assert change.object_id == str(ann.pk)
    for part in ("Bob", "bob@mail.test", "Cat", "cat@mail.test", "moved 3 orders"):
        assert part in change.change_message
    assert set(
        entries.filter(action_flag=DELETION).values_list("object_id", flat=True)
    ) == {str(bob.pk), str(cat.pk)}


def test_merge_with_one_client_selected_warns_and_changes_nothing(
    admin_client, make_client
):
    ann = make_client()
    before = snapshot()

    first = post_merge(admin_client, [ann])
    second = confirm_merge(admin_client, [ann], survivor=ann)

    assert redirected(first) and redirected(second)
    assert messages_of(first)[0][0] == "warning"
    assert "at least two" in messages_of(second)[0][1]
    assert snapshot() == before


def test_merge_with_survivor_not_among_selected_is_refused(
    admin_client, make_client, make_order
):
    ann, bob, outsider = make_client(), make_client(), make_client()
    make_order(bob)
    before = snapshot()

    response = confirm_merge(admin_client, [ann, bob], survivor=outsider)

    assert redirected(response)
    [(level, text)] = messages_of(response)
    assert level == "error" and "Nothing was merged" in text
    assert snapshot() == before


def test_merge_of_stale_clients_reports_already_merged(admin_client, make_client):
    ann, bob, cat = make_client(), make_client(), make_client()
    confirm_merge(admin_client, [ann, bob], survivor=ann)
    before = snapshot()

    response = confirm_merge(admin_client, [ann, bob, cat], survivor=cat)
    all_stale = confirm_merge(admin_client, [bob, bob], survivor=bob)

    assert redirected(response) and redirected(all_stale)
    [(level, text)] = messages_of(response)
    assert level == "error" and "merged or deleted already" in text
    assert messages_of(all_stale)[0][0] in {"error", "warning"}
    assert snapshot() == before


def test_merge_that_loses_a_race_to_another_merge_is_refused(
    admin_client, make_client, admin_user
):
    ann, bob, cat = make_client(), make_client(), make_client()

    def other_merge_wins_first(**kwargs):
        client_merge(survivor=cat, others=[bob], user=admin_user)
        return client_merge(**kwargs)

    with mock.patch("crm.admin.client_merge", side_effect=other_merge_wins_first):
        response = confirm_merge(admin_client, [ann, bob], survivor=ann)

    assert redirected(response)
    [(level, text)] = messages_of(response)
    assert level == "error" and "merged or deleted already" in text
    assert set(Client.objects.all()) == {ann, cat}


def test_failure_mid_merge_rolls_back_and_shows_an_error(
    admin_client, make_client, make_order
):
    ann = make_client()
    bob = make_client(phone="555", vip=True)
    make_order(bob)
    before = snapshot()

    with mock.patch.object(
        LogEntry.objects, "log_actions", side_effect=DatabaseError("disk full")
    ):
        response = confirm_merge(admin_client, [ann, bob], survivor=ann)

    assert redirected(response)
    [(level, text)] = messages_of(response)
    assert level == "error" and "rolled back" in text
    assert snapshot() == before


def test_merge_query_count_does_not_grow_with_orders(
    admin_client, make_client, django_assert_num_queries
):
    def clients_with(n_orders):
        survivor, other = make_client(), make_client()
        Order.objects.bulk_create(
            Order(client=other, title="x", amount=Decimal("1.00"))
            for _ in range(n_orders)
        )
        return survivor, other

    survivor, other = clients_with(10)
    admin_client.get(CLIENTS_URL)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few_orders:
        confirm_merge(admin_client, [survivor, other], survivor=survivor)
    survivor, other = clients_with(200)

    with django_assert_num_queries(len(few_orders)):
        response = confirm_merge(admin_client, [survivor, other], survivor=survivor)

    assert "moved 200 orders" in messages_of(response)[0][1]


@pytest.fixture
def staff_client(client, django_user_model):
    def login(*codenames):
        user = django_user_model.objects.create_user("pat", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(
                content_type=ContentType.objects.get_for_model(Client),
                codename__in=codenames,
            )
        )
        client.force_login(user)
        return client

    return login


@pytest.mark.parametrize(
    "codenames",
    [("view_client", "change_client"), ("view_client", "delete_client")],
)
def test_merge_needs_both_change_and_delete_permission(
    staff_client, make_client, codenames
):
    http = staff_client(*codenames)
    ann, bob = make_client(), make_client()
    before = snapshot()

    page = http.get(CLIENTS_URL)
    response = confirm_merge(http, [ann, bob], survivor=ann)

    assert page.status_code == 200
    assert 'value="merge_clients"' not in page.content.decode()
    assert response.status_code == 200
    assert "success" not in dict(messages_of(response))
    assert snapshot() == before


def test_merge_is_offered_with_change_and_delete_permission(staff_client):
    http = staff_client("view_client", "change_client", "delete_client")

    page = http.get(CLIENTS_URL)

    assert 'value="merge_clients"' in page.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"q": "\x00"},
        {"q": "a\x00b"},
        {"created_at__range__gte": "not-a-date"},
        {"created_at__range__gte": "\x00"},
        {"has_open_orders": "maybe"},
        {"vip__exact": "x"},
        {"o": "99"},
        {"o": "x.y"},
        {"p": "-3"},
        {"created_at__year": "abc"},
    ],
)
def test_hostile_changelist_parameters_do_not_fail(admin_client, params):
    for url in ("/admin/crm/client/", "/admin/crm/order/"):
        assert admin_client.get(url, params).status_code in (200, 302, 400)


@pytest.mark.parametrize(
    "params", [{"amount__range__gte": "abc"}, {"amount__range__lte": "\x00"}]
)
def test_hostile_order_amount_range_does_not_fail(admin_client, params):
    assert admin_client.get("/admin/crm/order/", params).status_code in (200, 302)


@pytest.mark.parametrize(
    "params",
    [
        {"created_at__year": "9999"},
        {"created_at__year": "9999", "created_at__month": "12"},
        {
            "created_at__year": "9999",
            "created_at__month": "12",
            "created_at__day": "31",
        },
        {"created_at__year": "0"},
        {"email": "\x00"},
        {"name__startswith": "a\x00"},
        {"phone__icontains": "\x00"},
    ],
)
def test_out_of_range_dates_and_nul_lookups_do_not_fail(admin_client, params):
    assert admin_client.get("/admin/crm/client/", params).status_code in (200, 302)


@pytest.mark.parametrize("params", [{"status__exact": "\x00"}, {"title": "\x00"}])
def test_nul_in_order_lookups_does_not_fail(admin_client, params):
    assert admin_client.get("/admin/crm/order/", params).status_code in (200, 302)


@pytest.mark.parametrize("pk", ["abc", "\x00", "99999999999999999999999", "-1"])
def test_garbage_action_selection_is_refused(admin_client, make_client, pk):
    make_client()
    for extra in ({}, {"post": "yes"}):
        response = admin_client.post(
            "/admin/crm/client/",
            {"action": "merge_clients", "_selected_action": [pk], "index": 0, **extra},
            follow=True,
        )
        assert response.status_code == 200
    assert Client.objects.count() == 1


@pytest.mark.parametrize("value", ["abc", "99999999999999999999999"])
def test_order_form_with_garbage_client_shows_an_error(admin_client, value):
    response = admin_client.post(
        "/admin/crm/order/add/",
        {"client": value, "title": "T", "amount": "1", "status": "NEW"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["client"]


def test_admin_delete_of_a_client_with_orders_points_at_merge(
    admin_client, make_client, make_order
):
    client = make_client(name="Busy")
    make_order(client)
    url = f"/admin/crm/client/{client.pk}/delete/"
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert "Merge the client" in response.content.decode()
    assert Client.objects.filter(pk=client.pk).exists()
    assert admin_client.get(url).status_code == 302


def test_admin_delete_of_a_client_without_orders_still_works(admin_client, make_client):
    client = make_client()
    admin_client.post(f"/admin/crm/client/{client.pk}/delete/", {"post": "yes"})
    assert not Client.objects.exists()
