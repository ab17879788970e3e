import pytest
from django.urls import reverse

from crm.models import Order
from crm.tests.helpers import changelist_rows, set_created

pytestmark = pytest.mark.django_db


ORDERS_URL = reverse("admin:crm_order_changelist")


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
        return set(changelist_rows(admin_client.get(ORDERS_URL, params)))

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


@pytest.mark.parametrize("term", ["ZOË", "zoë", "ÉTAGÈRE", "étagère"])
def test_order_search_finds_titles_and_clients_in_any_letter_case(
    admin_client, make_client, make_order, term
):
    zoe = make_client(name="Zoë", email="zoe@mail.test")
    other = make_client(name="Other", email="other@mail.test")
    shelf = make_order(other, title="Étagère")
    mine = make_order(zoe, title="Desk")
    make_order(other, title="Lamp")
    expected = {shelf} if "tag" in term.lower() else {mine}
    assert set(changelist_rows(admin_client.get(ORDERS_URL, {"q": term}))) == expected


@pytest.mark.parametrize("term", ["%00", "%00%00", "An%00n", "%00An"])
def test_order_autocomplete_ignores_nul(admin_client, make_client, term):
    ann = make_client(name="Ann")
    make_client(name="Bob")
    url = reverse("admin:autocomplete")
    query = "app_label=crm&model_name=order&field_name=client&term=" + term
    response = admin_client.get(f"{url}?{query}")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert str(ann.pk) in ids


def test_autocomplete_finds_any_letter_case(admin_client, make_client):
    zoe = make_client(name="Zoë Ünal")
    make_client(name="Other")
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "crm",
            "model_name": "order",
            "field_name": "client",
            "term": "ZOË",
        },
    )
    assert [row["id"] for row in response.json()["results"]] == [str(zoe.pk)]
