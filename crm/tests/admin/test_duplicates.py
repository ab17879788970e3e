import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Client

pytestmark = pytest.mark.django_db

DUPLICATES = reverse("admin:crm_client_duplicates")


def test_groups_clients_by_name_phone_and_email_and_links_each_to_its_merge(
    admin_client, make_client
):
    zoe = make_client(name="Zoë Martin", phone="+44 20 7946 0958")
    zoe2 = make_client(name="  zoe   MARTIN", phone="0044 20 7946 0958")
    make_client(name="Zoe Martins")
    ann = make_client(name="Ann", email="ann@mail.test")
    ann2 = make_client(name="Annie", email="ann+shop@mail.test")

    by_name = admin_client.get(DUPLICATES, {"kind": "name_key"}).content.decode()
    by_phone = admin_client.get(DUPLICATES, {"kind": "phone_key"}).content.decode()
    by_email = admin_client.get(DUPLICATES).content.decode()

    assert "Same name (1)" in by_name and "Same phone (1)" in by_name
    assert "Same email (1)" in by_name
    assert "2 clients: “zoemartin”" in by_name and "Zoe Martins" not in by_name
    assert "2 clients: “442079460958”" in by_phone
    assert "ann@mail.test" in by_email and "ann+shop@mail.test" in by_email
    [link] = re.findall(r'href="([^"]*/merge/\?ids=[^"]*)"', by_name)
    assert link.replace("%2C", ",").endswith(f"ids={zoe.pk},{zoe2.pk}")

    page = admin_client.get(link.replace("&amp;", "&"))
    html = page.content.decode()
    assert page.status_code == 200
    assert page.templates[0].name == "admin/crm/client/merge_confirmation.html"
    assert f'action="{reverse("admin:crm_client_changelist")}"' in html
    assert f'name="{ACTION_CHECKBOX_NAME}" value="{zoe2.pk}"' in html

    admin_client.post(
        reverse("admin:crm_client_changelist"),
        {
            "action": "merge_clients",
            ACTION_CHECKBOX_NAME: [ann.pk, ann2.pk],
            "post": "yes",
            "survivor": ann.pk,
        },
    )
    assert not Client.objects.filter(pk=ann2.pk).exists()
    assert "No groups" in admin_client.get(DUPLICATES).content.decode()


def test_the_page_runs_the_same_queries_for_few_or_many_groups(admin_client):
    def page_queries():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(DUPLICATES, {"kind": "name_key"}).status_code == 200
        return len(queries)

    Client.objects.create(name="A", email="a1@mail.test")
    Client.objects.create(name="a", email="a2@mail.test")
    few = page_queries()
    for n in range(40):
        for copy in range(3):
            Client.objects.create(name=f"Person {n}", email=f"p{n}-{copy}@mail.test")
    assert page_queries() == few


def test_a_merge_link_with_bad_ids_is_refused_with_a_message(admin_client, make_client):
    make_client()
    response = admin_client.get(reverse("admin:crm_client_merge"), {"ids": "1,x"})
    assert response.status_code == 302
    response = admin_client.get(reverse("admin:crm_client_merge"), {"ids": "1"})
    assert response.status_code == 302


def test_the_merge_link_needs_the_merge_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_client"))
    client.force_login(viewer)
    assert client.get(DUPLICATES).status_code == 200
    assert (
        client.get(reverse("admin:crm_client_merge"), {"ids": "1,2"}).status_code == 403
    )
