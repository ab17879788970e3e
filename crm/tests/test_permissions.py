import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db

LIST = reverse("clients:list")


def permission_queries(http, url=LIST):
    with CaptureQueriesContext(connection) as context:
        response = http.get(url)
    return response, [q for q in context if "auth_permission" in q["sql"]]


def test_permissions_are_read_once_then_come_from_the_cache(logged_in):
    first, queries = permission_queries(logged_in)
    assert first.status_code == 200 and queries
    second, queries = permission_queries(logged_in)
    assert second.status_code == 200 and not queries


def test_joining_and_leaving_a_group_applies_at_once(client, nobody, sales_team):
    client.force_login(nobody)
    assert client.get(LIST).status_code == 403
    nobody.groups.add(sales_team)
    assert client.get(LIST).status_code == 200
    nobody.groups.remove(sales_team)
    assert client.get(LIST).status_code == 403


def test_a_permission_taken_from_the_group_applies_at_once(logged_in, sales_team):
    assert logged_in.get(LIST).status_code == 200
    sales_team.permissions.remove(Permission.objects.get(codename="view_client"))
    assert logged_in.get(LIST).status_code == 403


def test_a_permission_given_to_a_user_applies_at_once(client, nobody):
    client.force_login(nobody)
    assert client.get(LIST).status_code == 403
    nobody.user_permissions.add(Permission.objects.get(codename="view_client"))
    assert client.get(LIST).status_code == 200
    nobody.user_permissions.clear()
    assert client.get(LIST).status_code == 403


def test_deleting_the_group_applies_at_once(logged_in, sales_team):
    assert logged_in.get(LIST).status_code == 200
    Group.objects.filter(pk=sales_team.pk).delete()
    assert logged_in.get(LIST).status_code == 403


def test_a_deactivated_user_loses_access_at_once(logged_in, user):
    assert logged_in.get(LIST).status_code == 200
    user.is_active = False
    user.save()
    assert logged_in.get(LIST).status_code == 302  # logged out: to the login page


def test_one_users_cached_page_never_shows_another_users_links(
    client, logged_in, nobody, make_client
):
    target = make_client()
    assert f"/clients/{target.pk}/edit/" in logged_in.get(LIST).content.decode()
    nobody.user_permissions.add(Permission.objects.get(codename="view_client"))
    client.force_login(nobody)
    html = client.get(LIST).content.decode()
    assert target.name in html
    assert f"/clients/{target.pk}/edit/" not in html
