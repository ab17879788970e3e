import pytest

from crm.models import Order

pytestmark = pytest.mark.django_db


def test_an_order_reads_with_its_clients_id_and_email(api, make_client, make_order):
    client = make_client(email="buyer@mail.test")
    order = make_order(client, "30.5", title="Chairs")

    data = api.get(f"/api/orders/{order.pk}/").json()

    assert data == {
        "id": order.pk,
        "client": client.pk,
        "client_email": "buyer@mail.test",
        "title": "Chairs",
        "amount": "30.50",
        "status": "NEW",
        "created_at": data["created_at"],
    }


@pytest.mark.parametrize("rows", [1, 30])
def test_a_page_of_orders_runs_a_fixed_number_of_queries(
    api, make_client, make_order, django_assert_num_queries, rows
):
    for _ in range(rows):
        make_order(make_client())
    api.get("/api/orders/")

    with django_assert_num_queries(3):
        response = api.get("/api/orders/?status=NEW&ordering=amount")

    assert len(response.json()["results"]) == rows


def test_staff_adds_an_order_and_the_clients_totals_follow(staff_api, make_client):
    client = make_client()

    response = staff_api.post(
        "/api/orders/",
        {"client": client.pk, "title": "Desk", "amount": "12.30"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "NEW"
    assert response.json()["client_email"] == client.email
    totals = staff_api.get(f"/api/clients/{client.pk}/").json()
    assert (totals["order_count"], totals["total_amount"]) == (1, "12.30")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "-0.01"),
        ("amount", "1.001"),
        ("amount", "1e400"),
        ("amount", "NaN"),
        ("amount", 10**20),
        ("amount", "abc"),
        ("status", "LOST"),
        ("client", 999999),
        ("client", 10**30),
        ("client", "x"),
        ("title", ""),
        ("title", "x" * 201),
    ],
)
def test_a_bad_order_is_a_field_error(staff_api, make_client, field, value):
    body = {"client": make_client().pk, "title": "T", "amount": "1.00", field: value}

    response = staff_api.post("/api/orders/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Order.objects.exists()


def test_staff_moves_an_order_to_another_status(staff_api, make_client, make_order):
    order = make_order(make_client())

    response = staff_api.patch(
        f"/api/orders/{order.pk}/", {"status": "DONE"}, format="json"
    )

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == Order.Status.DONE


def test_deleting_an_order_needs_delete_order(staff_api, make_client, make_order):
    # The Sales team group has no delete_order.
    order = make_order(make_client())

    assert staff_api.delete(f"/api/orders/{order.pk}/").status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()
