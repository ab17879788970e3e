import json

import pytest

from crm.models import Client, Order

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body",
    [
        {"name": ["a"], "email": "a@mail.test"},
        {"name": {"x": 1}, "email": "a@mail.test"},
        {"name": "A", "email": 12},
        {"name": "A", "email": None},
        {"name": "A", "email": "a@mail.test", "vip": "maybe"},
        {"name": "A", "email": "a@mail.test", "vip": 2},
        {"name": "A\x00B", "email": "a@mail.test"},
        {"name": "A", "email": "a\x00@mail.test"},
        {"name": "A", "email": "a@mail.test", "phone": "+1\x00"},
        {"name": "A" * 101, "email": "a@mail.test"},
        {"name": "A", "email": "a" * 250 + "@mail.test"},
        {"name": "A", "email": "a@mail.test", "phone": 10**40},
        {"name": "A", "email": "a@mail.test", "is_staff": True},
        {},
    ],
)
def test_hostile_client_bodies_are_400(staff_api, body):
    response = staff_api.post("/api/clients/", body, format="json")

    assert response.status_code == 400
    assert not Client.objects.exists()


def test_an_avatar_url_cannot_be_set_through_the_api(staff_api):
    body = {"name": "A", "email": "a@mail.test", "avatar": "http://evil.test/x.png"}

    response = staff_api.post("/api/clients/", body, format="json")

    assert response.status_code == 201
    assert response.json()["avatar"] is None
    assert not Client.objects.get().avatar


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b'"just a string"',
        b"null",
        b"{not json",
        b'{"name": "A", "email": "a@mail.test", "amount": NaN}',
        b'{"amount": Infinity}',
        b"\xff\xfe",
        b'{"name": "' + b"9" * 5000 + b'"}',
        b'{"survivor": ' + b"9" * 5000 + b"}",
    ],
)
@pytest.mark.parametrize(
    "url", ["/api/clients/", "/api/orders/", "/api/clients/merge/"]
)
def test_bodies_that_are_not_an_object_are_400(staff_api, url, raw):
    response = staff_api.generic("POST", url, raw, content_type="application/json")

    assert response.status_code == 400


def test_json_nested_past_the_recursion_limit_is_400(staff_api):
    raw = "[" * 100_000 + "]" * 100_000

    response = staff_api.generic(
        "POST", "/api/clients/", raw, content_type="application/json"
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_json_in_an_unknown_charset_is_400(staff_api):
    response = staff_api.generic(
        "POST", "/api/clients/", b"{}", content_type="application/json; charset=nope"
    )

    assert response.status_code == 400


def test_a_body_that_is_not_json_is_415(staff_api):
    response = staff_api.generic(
        "POST",
        "/api/clients/",
        "name=A&email=a@mail.test",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415


@pytest.mark.parametrize(
    "amount", [1e308, -1e308, float("1e-300"), "1" * 30, 12345678901.0, True, [1]]
)
def test_hostile_amounts_are_400(staff_api, make_client, amount):
    body = {"client": make_client().pk, "title": "T", "amount": amount}

    response = staff_api.generic(
        "POST", "/api/orders/", json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 400
    assert not Order.objects.exists()


def test_an_order_for_a_huge_client_id_is_400(staff_api):
    body = {"client": 2**63, "title": "T", "amount": "1"}

    assert staff_api.post("/api/orders/", body, format="json").status_code == 400


@pytest.mark.parametrize(
    "path", ["/api/clients/0/", "/api/clients/-1/", "/api/clients/x/"]
)
def test_odd_ids_in_the_url_are_404(api, path):
    assert api.get(path).status_code == 404


def test_an_unsupported_method_is_405(staff_api):
    assert staff_api.put("/api/clients/", {}, format="json").status_code == 405
    assert staff_api.get("/api/clients/merge/").status_code == 405


def test_a_body_over_the_upload_limit_is_a_json_413(staff_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    body = json.dumps({"name": "x" * (2 * 1024 * 1024), "email": "big@mail.test"})

    response = staff_api.post("/api/clients/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large: at most 1 MB."}
    assert not Client.objects.exists()


def test_the_api_root_lists_the_endpoints(api):
    response = api.get("/api/")

    assert response.status_code == 200
    assert set(response.json()) >= {"clients", "orders"}
