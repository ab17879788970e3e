from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry

from crm.models import Client, Order

from ..conftest import image_upload

pytestmark = pytest.mark.django_db


def test_a_client_reads_with_its_totals_as_the_admin_counts_them(
    api, make_client, make_order
):
    client = make_client(name="Ada", email="ada@mail.test", phone="+4420")
    make_order(client, "10.25")
    make_order(client, "20.25", status=Order.Status.DONE)

    data = api.get(f"/api/clients/{client.pk}/").json()

    assert data == {
        "id": client.pk,
        "name": "Ada",
        "email": "ada@mail.test",
        "phone": "+4420",
        "vip": False,
        "avatar": None,
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "order_count": 2,
        "total_amount": "30.50",
    }
    assert data["created_at"].startswith(str(client.created_at.date()))
    assert "T" in data["created_at"]


def test_a_client_without_orders_totals_zero(api, make_client):
    make_client()

    row = api.get("/api/clients/").json()["results"][0]

    assert (row["order_count"], row["total_amount"]) == (0, "0.00")


def test_the_avatar_is_an_absolute_url(api, make_client):
    client = make_client(avatar=image_upload())

    data = api.get(f"/api/clients/{client.pk}/").json()

    assert data["avatar"].startswith("http://testserver/media/avatars/")


def test_the_list_comes_in_pages_of_fifty_newest_first(api, make_client):
    for _ in range(51):
        make_client()

    first = api.get("/api/clients/").json()
    second = api.get(first["next"]).json()

    assert first["count"] == 51
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert len(second["results"]) == 1
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)


def test_page_size_goes_up_to_200(api, make_client):
    for _ in range(3):
        make_client()

    assert len(api.get("/api/clients/?page_size=2").json()["results"]) == 2
    assert api.get("/api/clients/?page_size=200").status_code == 200


@pytest.mark.parametrize("value", ["0", "201", "-1", "abc", "1.5", "9" * 40, "٣"])
def test_a_bad_page_size_is_refused_by_name(api, value):
    response = api.get(f"/api/clients/?page_size={value}")

    assert response.status_code == 400
    assert list(response.json()) == ["page_size"]


@pytest.mark.parametrize("value", ["0", "abc", "-2", "last", "9" * 40])
def test_a_bad_page_number_is_refused_by_name(api, value):
    response = api.get(f"/api/clients/?page={value}")

    assert response.status_code == 400
    assert list(response.json()) == ["page"]


def test_a_page_past_the_end_is_not_found(api, make_client):
    make_client()

    assert api.get("/api/clients/?page=2").status_code == 404


@pytest.mark.parametrize("rows", [1, 30])
def test_a_page_of_clients_runs_a_fixed_number_of_queries(
    api, make_client, make_order, django_assert_num_queries, rows
):
    for _ in range(rows):
        make_order(make_client(avatar=image_upload()))
    api.get("/api/clients/")  # the permissions cache fills

    # The token (with its user), the count, the page.
    with django_assert_num_queries(3):
        response = api.get("/api/clients/?ordering=-total_amount&vip=false")

    assert len(response.json()["results"]) == rows


def test_a_repeated_page_comes_from_the_cache_until_something_changes(
    api, staff_api, make_client, make_order, django_assert_num_queries
):
    client = make_client()
    api.get("/api/clients/?search=client%201")

    with django_assert_num_queries(1):  # the token
        again = api.get("/api/clients/?search=client%201")
    make_order(client, "2.50")
    after_order = api.get("/api/clients/?search=client%201").json()
    staff_api.patch(f"/api/clients/{client.pk}/", {"name": "Renamed"}, format="json")
    after_edit = api.get("/api/clients/?search=client%201").json()

    assert again.json()["results"][0]["total_amount"] == "0.00"
    assert after_order["results"][0]["total_amount"] == "2.50"
    assert after_edit["results"] == []  # no longer matches


def test_a_merge_shows_on_the_cached_list_at_once(staff_api, make_client, make_order):
    survivor, other = make_client(), make_client()
    make_order(other, "4.00")
    assert staff_api.get("/api/clients/").json()["count"] == 2

    staff_api.post(
        "/api/clients/merge/",
        {"survivor": survivor.pk, "others": [other.pk]},
        format="json",
    )
    page = staff_api.get("/api/clients/").json()

    assert page["count"] == 1
    assert page["results"][0]["total_amount"] == "4.00"


def test_a_missing_client_is_not_found(api):
    assert api.get("/api/clients/999999/").status_code == 404
    assert api.get(f"/api/clients/{10**30}/").status_code == 404


def test_staff_adds_a_client_with_the_models_rules(staff_api):
    response = staff_api.post(
        "/api/clients/",
        {"name": "Boss", "email": "  Boss@Company.COM ", "phone": "+44 20 7946 0958"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["email"] == "boss@company.com"
    assert data["phone"] == "+442079460958"
    assert data["vip"] is True  # a VIP domain
    assert (data["order_count"], data["total_amount"]) == (0, "0.00")
    assert Client.objects.get(pk=data["id"]).email == "boss@company.com"


def test_full_width_email_is_stored_normalized(staff_api):
    response = staff_api.post(
        "/api/clients/",
        {"name": "Wide", "email": "ｗｉｄｅ@ｍａｉｌ.test"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["email"] == "wide@mail.test"


def test_a_duplicate_email_in_any_case_is_a_field_error(staff_api, make_client):
    make_client(email="taken@mail.test")

    response = staff_api.post(
        "/api/clients/", {"name": "Again", "email": "TAKEN@Mail.Test"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"email": ["A client with this email already exists."]}
    assert Client.objects.count() == 1


def test_a_blocked_domain_is_refused(staff_api):
    response = staff_api.post(
        "/api/clients/", {"name": "Spam", "email": "x@EXAMPLE.com"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "email": ["Email addresses at example.com are not accepted."]
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "\u202eevil"),
        ("name", "\u200b"),
        ("phone", "call me"),
        ("phone", "1" * 16),
        ("email", "not-an-email"),
        ("email", "a@xn--zz.test"),
    ],
)
def test_the_models_field_rules_apply(staff_api, field, value):
    body = {"name": "Fine", "email": "fine@mail.test", field: value}

    response = staff_api.post("/api/clients/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Client.objects.exists()


def test_staff_changes_a_client_and_the_totals_come_back(
    staff_api, make_client, make_order
):
    client = make_client()
    make_order(client, "5.00")

    response = staff_api.patch(
        f"/api/clients/{client.pk}/", {"email": "NEW@mail.test"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["email"] == "new@mail.test"
    assert response.json()["total_amount"] == "5.00"


def test_a_client_may_keep_its_own_email(staff_api, make_client):
    client = make_client(email="same@mail.test")

    response = staff_api.put(
        f"/api/clients/{client.pk}/",
        {"name": "Renamed", "email": "SAME@mail.test"},
        format="json",
    )

    assert response.status_code == 200
    client.refresh_from_db()
    assert client.name == "Renamed"


def test_an_update_to_anothers_email_is_refused(staff_api, make_client):
    make_client(email="one@mail.test")
    two = make_client(email="two@mail.test")

    response = staff_api.patch(
        f"/api/clients/{two.pk}/", {"email": "One@mail.test"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    two.refresh_from_db()
    assert two.email == "two@mail.test"


def test_read_only_fields_sent_back_are_ignored(staff_api, make_client):
    client = make_client()
    data = staff_api.get(f"/api/clients/{client.pk}/").json()
    data.update(name="Edited", order_count=99, total_amount="1.00", id=12345)

    response = staff_api.put(f"/api/clients/{client.pk}/", data, format="json")

    assert response.status_code == 200
    assert response.json()["id"] == client.pk
    assert response.json()["order_count"] == 0


def test_an_unknown_field_is_refused_not_dropped(staff_api, make_client):
    client = make_client()

    response = staff_api.patch(
        f"/api/clients/{client.pk}/", {"emial": "x@mail.test"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"emial": ["Unknown field."]}


def test_deleting_a_client_with_orders_is_a_conflict_pointing_at_merge(
    staff_api, make_client, make_order
):
    client = make_client()
    make_order(client)

    response = staff_api.delete(f"/api/clients/{client.pk}/")

    assert response.status_code == 409
    assert "Merge" in response.json()["detail"]
    assert Client.objects.filter(pk=client.pk).exists()


def test_staff_deletes_a_client_without_orders(staff_api, make_client):
    client = make_client()

    assert staff_api.delete(f"/api/clients/{client.pk}/").status_code == 204
    assert not Client.objects.exists()


def test_merge_runs_the_admins_merge(staff_api, staff, make_client, make_order):
    survivor = make_client(phone="")
    other = make_client(phone="+111", vip=True)
    make_order(other, "7.50")

    response = staff_api.post(
        "/api/clients/merge/",
        {"survivor": survivor.pk, "others": [other.pk]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["merged"] == [other.pk]
    assert data["orders_moved"] == 1
    assert data["detail"].startswith("Merged 1 client into")
    assert data["survivor"]["phone"] == "+111"
    assert data["survivor"]["vip"] is True
    assert data["survivor"]["total_amount"] == "7.50"
    assert not Client.objects.filter(pk=other.pk).exists()
    assert LogEntry.objects.filter(user=staff).count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"survivor": 1, "others": []},
        {"survivor": "x", "others": [2]},
        {"survivor": 1, "others": "2"},
        {"survivor": 1, "others": [10**30]},
        {"survivor": 1},
        {"survivor": 1, "others": [2], "extra": True},
    ],
)
def test_a_malformed_merge_is_refused(staff_api, body):
    assert staff_api.post("/api/clients/merge/", body, format="json").status_code == 400


def test_a_merge_of_missing_or_same_clients_changes_nothing(
    staff_api, make_client, make_order
):
    survivor = make_client()
    other = make_client()
    make_order(other)

    missing = staff_api.post(
        "/api/clients/merge/",
        {"survivor": survivor.pk, "others": [other.pk, 999999]},
        format="json",
    )
    itself = staff_api.post(
        "/api/clients/merge/",
        {"survivor": survivor.pk, "others": [survivor.pk]},
        format="json",
    )

    assert missing.status_code == 400
    assert "Nothing was merged" in missing.json()["non_field_errors"][0]
    assert itself.status_code == 400
    assert Client.objects.count() == 2
    assert other.orders.count() == 1


def test_merge_needs_change_and_delete(staff_api, staff, sales_team, make_client):
    from django.contrib.auth.models import Permission

    sales_team.permissions.remove(Permission.objects.get(codename="delete_client"))
    a, b = make_client(), make_client()

    response = staff_api.post(
        "/api/clients/merge/", {"survivor": a.pk, "others": [b.pk]}, format="json"
    )

    assert response.status_code == 403
    assert Client.objects.count() == 2


def test_money_keeps_two_decimals(api, make_client, make_order):
    client = make_client()
    make_order(client, "0.10")
    make_order(client, "0.20")

    row = api.get("/api/clients/").json()["results"][0]

    assert row["total_amount"] == "0.30"
    assert Decimal(row["total_amount"]) == Decimal("0.30")


def test_a_duplicate_saved_meanwhile_is_still_a_field_error(
    staff_api, make_client, monkeypatch
):
    # Another request saves the same email between this one's check and save:
    # the database's unique index answers, as the email field's error.
    make_client(email="race@mail.test")
    monkeypatch.setattr(Client, "validate_constraints", lambda self, exclude=None: None)

    response = staff_api.post(
        "/api/clients/", {"name": "Racer", "email": "RACE@mail.test"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"email": ["A client with this email already exists."]}
    assert Client.objects.count() == 1
