import pytest
from rest_framework.authtoken.models import Token

from crm.models import Client

pytestmark = pytest.mark.django_db

NEW_CLIENT = {"name": "New", "email": "new@mail.test"}


def test_reading_needs_a_login(anon, make_client):
    make_client()

    response = anon.get("/api/clients/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert anon.get("/api/clients/").status_code == 401


def test_a_user_without_view_permission_gets_403(nobody, make_client):
    from .conftest import token_client

    assert token_client(nobody).get("/api/clients/").status_code == 403
    assert token_client(nobody).get("/api/orders/").status_code == 403


def test_a_session_login_reads_too(client, user, make_client):
    make_client()
    client.force_login(user)

    assert client.get("/api/clients/").status_code == 200


def test_an_inactive_users_token_stops_working(api, user):
    user.is_active = False
    user.save()

    assert api.get("/api/clients/").status_code == 401


def test_demo_mode_opens_reads_to_anyone_but_not_writes(anon, settings, make_client):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    make_client()

    assert anon.get("/api/clients/").status_code == 200
    assert anon.get("/api/orders/").status_code == 200
    assert anon.post("/api/clients/", NEW_CLIENT, format="json").status_code == 401
    assert not Client.objects.filter(email="new@mail.test").exists()


def test_a_team_member_who_is_not_staff_cannot_write(api, make_client):
    client = make_client()

    responses = [
        api.post("/api/clients/", NEW_CLIENT, format="json"),
        api.patch(f"/api/clients/{client.pk}/", {"name": "X"}, format="json"),
        api.delete(f"/api/clients/{client.pk}/"),
        api.post(
            "/api/clients/merge/",
            {"survivor": client.pk, "others": [client.pk + 1]},
            format="json",
        ),
    ]

    assert [r.status_code for r in responses] == [403] * 4
    assert "staff" in responses[0].json()["detail"]
    client.refresh_from_db()
    assert client.name != "X"


def test_anonymous_writes_are_401(anon, make_client):
    client = make_client()

    assert anon.post("/api/clients/", NEW_CLIENT, format="json").status_code == 401
    assert anon.delete(f"/api/clients/{client.pk}/").status_code == 401


def test_staff_needs_the_model_permission_too(django_user_model, make_client):
    from .conftest import token_client

    bare_staff = django_user_model.objects.create_user("bare", is_staff=True)
    api = token_client(bare_staff)

    assert api.get("/api/clients/").status_code == 403
    assert api.post("/api/clients/", NEW_CLIENT, format="json").status_code == 403


def test_a_superuser_may_do_everything(django_user_model, make_client, make_order):
    from .conftest import token_client

    root = django_user_model.objects.create_superuser("root", "root@acme.io", "pw")
    order = make_order(make_client())

    assert token_client(root).delete(f"/api/orders/{order.pk}/").status_code == 204


def test_session_writes_need_the_csrf_token(staff, make_client):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(staff)

    response = browser.post("/api/clients/", NEW_CLIENT, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_tokens_are_made_in_the_admin(admin_client, user):
    response = admin_client.post(
        "/admin/authtoken/tokenproxy/add/", {"user": user.pk}, follow=True
    )

    assert response.status_code == 200
    assert Token.objects.filter(user=user).exists()
