from decimal import Decimal

import pytest
from django.urls import reverse

from crm.models import Client, Order
from crm.tests.helpers import changelist_rows, set_created

from ..conftest import image_upload

pytestmark = pytest.mark.django_db


CLIENTS_URL = reverse("admin:crm_client_changelist")


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


def test_has_open_orders_filter(admin_client, make_client, make_order):
    open_client, done_client, idle = make_client(), make_client(), make_client()
    make_order(open_client, status=Order.Status.NEW)
    make_order(open_client, status=Order.Status.IN_PROGRESS)
    make_order(done_client, status=Order.Status.DONE)

    yes = changelist_rows(admin_client.get(CLIENTS_URL, {"has_open_orders": "yes"}))
    no = changelist_rows(admin_client.get(CLIENTS_URL, {"has_open_orders": "no"}))

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

    assert changelist_rows(response) == [inside]


def test_date_hierarchy_and_vip_filter(admin_client, make_client):
    vip = make_client(email="boss@company.com")
    plain = make_client()
    set_created(vip, 2023, 5, 1)

    assert changelist_rows(admin_client.get(CLIENTS_URL, {"vip__exact": "1"})) == [vip]
    assert changelist_rows(
        admin_client.get(CLIENTS_URL, {"created_at__year": "2023"})
    ) == [vip]
    assert changelist_rows(admin_client.get(CLIENTS_URL, {"vip__exact": "0"})) == [
        plain
    ]


@pytest.mark.parametrize("term", ["ann smith", "ANN@shop", "555-0101"])
def test_client_search_by_name_email_and_phone(admin_client, make_client, term):
    ann = make_client(name="Ann Smith", email="ann@shop.test", phone="555-0101")
    make_client(name="Bob", email="bob@mail.test", phone="555-0202")

    assert changelist_rows(admin_client.get(CLIENTS_URL, {"q": term})) == [ann]


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

    [row] = changelist_rows(response)
    assert (row.pk, row.order_count, row.total_amount) == (ann.pk, 3, Decimal("60.50"))
    assert '<td class="field-total_amount">60.50</td>' in response.content.decode()


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


def staff_with(django_user_model, *codenames):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("staffer", "s@acme.io", "pw-x-123")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label="crm", codename__in=codenames)
    )
    return staff


@pytest.mark.parametrize(
    "codenames", [(), ("view_client",), ("view_client", "change_client")]
)
@pytest.mark.parametrize("has_orders", [True, False])
def test_admin_delete_page_without_delete_permission_is_403_and_reveals_nothing(
    client, django_user_model, make_client, make_order, codenames, has_orders
):
    bob = make_client(name="Bob Chen", email="bob.chen@company.com")
    if has_orders:
        make_order(bob)
    client.force_login(staff_with(django_user_model, *codenames))
    for method in ("get", "post"):
        response = getattr(client, method)(
            f"/admin/crm/client/{bob.pk}/delete/", {"post": "yes"}, follow=True
        )
        assert response.status_code == 403
        assert b"Bob Chen" not in response.content
        assert b"has orders" not in response.content
    assert Client.objects.filter(pk=bob.pk).exists()


def test_admin_delete_page_with_delete_permission_points_at_merge(
    client, django_user_model, make_client, make_order
):
    bob = make_client(name="Bob Chen")
    make_order(bob)
    client.force_login(staff_with(django_user_model, "view_client", "delete_client"))
    response = client.get(f"/admin/crm/client/{bob.pk}/delete/", follow=True)
    assert "Merge the client" in response.content.decode()


@pytest.mark.parametrize("term", ["ZOË", "zoë", "ünal", "ÜNAL", "+44 20", "(20) 7946"])
def test_admin_search_finds_any_letter_case_and_phones_typed_with_separators(
    admin_client, make_client, term
):
    zoe = make_client(name="Zoë Ünal", email="zoe@mail.test", phone="+44 20 7946")
    make_client(name="Zoe Other", email="other@mail.test", phone="555")
    assert changelist_rows(admin_client.get(CLIENTS_URL, {"q": term})) == [zoe]


def test_admin_search_keeps_percent_and_underscore_literal(admin_client, make_client):
    target = make_client(name="Ü_b")
    make_client(name="Üab")
    assert changelist_rows(admin_client.get(CLIENTS_URL, {"q": "ü_"})) == [target]


def test_admin_is_titled_mini_crm(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "<title>Mini CRM | Mini CRM</title>" in html
    assert '<a href="/admin/">Mini CRM</a>' in html
    assert "Django administration" not in html
    changelist = admin_client.get(CLIENTS_URL).content.decode()
    assert "| Mini CRM</title>" in changelist


def test_admin_forms_store_normalized_email_and_phone(admin_client, make_client):
    make_client(name="Alice", email="alice@acme.io")
    data = {
        "name": "Twin",
        "email": "ALICE@ａｃｍｅ.io",
        "phone": "+44 20 7946 0958",
        "orders-TOTAL_FORMS": "0",
        "orders-INITIAL_FORMS": "0",
    }
    response = admin_client.post(reverse("admin:crm_client_add"), data)
    assert "already exists" in str(response.context["adminform"].form.errors["email"])
    data["email"] = "bob@xn--bcher-kva.de"
    response = admin_client.post(reverse("admin:crm_client_add"), data)
    assert response.status_code == 302
    twin = Client.objects.get(name="Twin")
    assert (twin.email, twin.phone) == ("bob@bücher.de", "+442079460958")
