import importlib
import logging

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from crm.models import Client

pytestmark = pytest.mark.django_db

normalize_migration = importlib.import_module(
    "crm.migrations.0004_normalize_client_emails_and_phones"
)


def insert_raw(email, phone=""):
    """Insert a client as an older version stored it: nothing normalized."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_client (name, email, phone, avatar, vip, created_at,"
            " updated_at) VALUES (%s, %s, %s, '', false, %s, %s)",
            [f"Raw {email}", email, phone, now, now],
        )
    return Client.objects.get(name=f"Raw {email}").pk


class SchemaEditor:
    """What the migration's function uses of a schema editor."""

    connection = connection

    def quote_name(self, name):
        return connection.ops.quote_name(name)


def test_the_migration_normalizes_stored_emails_and_phones():
    full_width = insert_raw("bob@ｍａｉｌ.test", "+44 20 7946 095")
    punycode = insert_raw("user@xn--bcher-kva.de", "(020) 7946-0958")
    plain = insert_raw("plain@mail.test", "555")

    result = normalize_migration.normalize_clients(apps, SchemaEditor())

    stored = dict(Client.objects.values_list("pk", "email"))
    assert stored == {
        full_width: "bob@mail.test",
        punycode: "user@bücher.de",
        plain: "plain@mail.test",
    }
    phones = dict(Client.objects.values_list("pk", "phone"))
    assert phones == {
        full_width: "+44207946095",
        punycode: "02079460958",
        plain: "555",
    }
    assert result["collisions"] == []


def test_the_migration_keeps_and_reports_clients_that_would_collide(caplog):
    kept = insert_raw("alice@acme.io")
    twin = insert_raw("alice@ａｃｍｅ.io", "+1 555")
    pair = [insert_raw("x@ｂücher.de"), insert_raw("x@xn--bcher-kva.de")]

    with caplog.at_level(logging.WARNING, logger="crm.migrations"):
        result = normalize_migration.normalize_clients(apps, SchemaEditor())

    stored = dict(Client.objects.values_list("pk", "email"))
    # Nothing lost: every row is still there, the colliding ones as they were.
    assert stored[kept] == "alice@acme.io"
    assert stored[twin] == "alice@ａｃｍｅ.io"
    assert {stored[pk] for pk in pair} == {"x@ｂücher.de", "x@xn--bcher-kva.de"}
    assert Client.objects.get(pk=twin).phone == "+1555"  # phones still normalized
    assert sorted(pk for pk, _, _ in result["collisions"]) == sorted([twin, *pair])
    assert f"id {twin} 'alice@ａｃｍｅ.io' is 'alice@acme.io'" in caplog.text
    assert "Merge the clients in the admin" in caplog.text


def test_the_migration_reports_phones_that_stay_invalid(caplog):
    odd = insert_raw("odd@mail.test", "555 ext. 12")
    with caplog.at_level(logging.WARNING, logger="crm.migrations"):
        normalize_migration.normalize_clients(apps, SchemaEditor())
    assert Client.objects.get(pk=odd).phone == "555ext12"
    assert f"ids {odd}" in caplog.text


def test_a_migration_made_the_sales_team_group_with_its_permissions():
    # The test database is built by the migrations, and Django creates
    # permissions only after the last one: the migration made these itself.
    group = Group.objects.get(name="Sales team")
    permissions = {(p.content_type.model, p.codename) for p in group.permissions.all()}
    assert permissions == {
        ("client", "view_client"),
        ("client", "add_client"),
        ("client", "change_client"),
        ("client", "delete_client"),
        ("client", "export_client"),
        ("order", "view_order"),
        ("order", "add_order"),
        ("order", "change_order"),
    }
