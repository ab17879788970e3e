import re
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Client, Order
from crm.services import client_merge
from crm.tests.helpers import messages_of, set_created

pytestmark = pytest.mark.django_db


CLIENTS_URL = reverse("admin:crm_client_changelist")


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
    radios = re.findall(
        r'<input type="radio" name="survivor" value="(\d+)"[^>]*?( checked)?>', html
    )
    assert sorted(radios) == sorted([(str(oldest.pk), " checked"), (str(newer.pk), "")])
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
    assert (ann.phone, ann.vip) == ("5551", True)
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

    with mock.patch("crm.admin.merge.client_merge", side_effect=other_merge_wins_first):
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


def test_an_id_in_other_digits_is_refused_and_nothing_merges(admin_client, make_client):
    shown, hidden = make_client(name="Shown"), make_client(name="Hidden")
    # int() reads Arabic-Indic digits: "١" is 1.
    arabic = str(hidden.pk).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert int(arabic) == hidden.pk
    before = snapshot()
    for extra in ({}, {"post": "yes", "survivor": str(shown.pk)}):
        data = {
            "action": "merge_clients",
            ACTION_CHECKBOX_NAME: [str(shown.pk), arabic],
            **extra,
        }
        response = admin_client.post(CLIENTS_URL, data, follow=True)
        assert response.status_code == 200
        templates = [t.name for t in response.templates]
        assert "admin/crm/client/merge_confirmation.html" not in templates
        assert ("error", "The selection is not valid; nothing was done.") in (
            messages_of(response)
        )
    assert snapshot() == before


def test_merging_too_many_clients_at_once_says_so_instead_of_a_bare_400(
    admin_client, make_client
):
    from crm.admin.merge import MAX_CLIENTS

    Client.objects.bulk_create(
        Client(name=f"C{n}", email=f"c{n}@mail.test") for n in range(MAX_CLIENTS + 1)
    )
    before = snapshot()
    # "Select all" sends only the page's ids and select_across.
    response = admin_client.post(
        CLIENTS_URL,
        {
            "action": "merge_clients",
            ACTION_CHECKBOX_NAME: [str(c.pk) for c in Client.objects.all()[:100]],
            "select_across": "1",
            "index": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    [(level, text)] = messages_of(response)
    assert level == "warning"
    assert f"at most {MAX_CLIENTS} clients" in text and "501 were selected" in text
    assert snapshot() == before


def test_the_confirmation_page_stays_under_the_post_field_limit(
    admin_client, make_client, settings
):
    from crm.admin.merge import MAX_CLIENTS

    Client.objects.bulk_create(
        Client(name=f"C{n}", email=f"c{n}@mail.test") for n in range(MAX_CLIENTS)
    )
    clients = list(Client.objects.all())
    page = post_merge(admin_client, clients)
    # What the confirm sends: the hidden fields and the chosen survivor.
    hidden = re.findall(r'<input type="hidden" name=', page.content.decode())
    assert len(hidden) + 1 < settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    response = confirm_merge(admin_client, clients, survivor=clients[-1])
    assert redirected(response)
    assert Client.objects.count() == 1
