from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, ProtectedError
from django.utils import timezone

from crm.models import Client, Order

pytestmark = pytest.mark.django_db


def test_uppercase_email_is_stored_lowercased():
    client = Client.objects.create(name="U", email="USER@MAIL.COM")
    client.refresh_from_db()
    assert client.email == "user@mail.com"


def test_bulk_create_and_update_store_lowercased_emails():
    Client.objects.bulk_create([Client(name="B", email="Bulk@Mail.COM")])
    assert Client.objects.get().email == "bulk@mail.com"
    Client.objects.update(email="UPDATED@MAIL.COM")
    assert Client.objects.get().email == "updated@mail.com"


def test_exact_lookup_ignores_case():
    Client.objects.create(name="U", email="user@mail.com")
    assert Client.objects.filter(email="USER@Mail.com").exists()


def test_database_refuses_case_variant_duplicate_email():
    Client.objects.create(name="A", email="a@x.com")
    # Raw SQL skips the field's lowercasing: the Lower("email") constraint remains.
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_client (name, email, phone, avatar, vip, created_at,"
                " updated_at) VALUES ('B', 'A@X.COM', '', '', false, %s, %s)",
                [timezone.now(), timezone.now()],
            )


def test_case_variant_duplicate_is_a_field_error_on_email():
    Client.objects.create(name="A", email="a@x.com")
    duplicate = Client(name="B", email="A@X.com")
    with pytest.raises(ValidationError) as error:
        duplicate.full_clean()
    assert "email" in error.value.message_dict
    assert "already exists" in error.value.message_dict["email"][0]


def test_editing_a_client_does_not_clash_with_its_own_email():
    client = Client.objects.create(name="A", email="a@x.com")
    client.email = "A@X.COM"
    client.full_clean()


@pytest.mark.parametrize("email", ["bad@example.com", "bad@EXAMPLE.com"])
def test_blocked_domain_is_rejected(email):
    with pytest.raises(ValidationError) as error:
        Client(name="B", email=email).full_clean()
    assert error.value.error_dict["email"][0].code == "blocked_domain"


def test_subdomain_of_blocked_domain_is_allowed():
    Client(name="S", email="s@sub.example.com").full_clean()


def test_blocked_domains_come_from_settings(settings):
    settings.CRM_BLOCKED_EMAIL_DOMAINS = ["spam.test"]
    Client(name="E", email="e@example.com").full_clean()
    with pytest.raises(ValidationError):
        Client(name="S", email="s@SPAM.test").full_clean()


@pytest.mark.parametrize(
    ("email", "vip"),
    [
        ("ceo@company.com", True),
        ("CEO@Company.COM", True),
        ("x@sub.company.com", False),
        ("x@acme.io", False),
    ],
)
def test_vip_is_set_for_vip_domains_on_create(email, vip):
    assert Client.objects.create(name="V", email=email).vip is vip


def test_vip_domains_come_from_settings(settings):
    settings.CRM_VIP_EMAIL_DOMAINS = ["gold.test"]
    assert Client.objects.create(name="G", email="g@gold.test").vip is True
    assert Client.objects.create(name="C", email="c@company.com").vip is False


def test_vip_can_be_removed_after_create():
    client = Client.objects.create(name="V", email="v@company.com")
    client.vip = False
    client.save()
    client.refresh_from_db()
    assert client.vip is False


def test_default_ordering_is_newest_first(make_client):
    first, second = make_client(), make_client()
    assert list(Client.objects.all()) == [second, first]


def test_deleting_a_client_with_orders_is_refused(make_client, make_order):
    client = make_client()
    order = make_order(client)
    with pytest.raises(ProtectedError):
        client.delete()
    assert Client.objects.filter(pk=client.pk).exists()
    assert Order.objects.filter(pk=order.pk).exists()


def test_negative_amount_is_a_validation_error(make_client):
    order = Order(client=make_client(), title="T", amount=Decimal("-1"))
    with pytest.raises(ValidationError) as error:
        order.full_clean()
    assert "amount" in error.value.message_dict


def test_database_refuses_negative_amount(make_client):
    client = make_client()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(client=client, title="T", amount=Decimal("-0.01"))


def test_order_status_defaults_to_new(make_client):
    order = Order.objects.create(client=make_client(), title="T", amount=1)
    assert order.status == Order.Status.NEW


def test_active_lists_clients_with_open_orders_once(make_client, make_order):
    busy, done, idle = make_client(), make_client(), make_client()
    make_order(busy, status=Order.Status.NEW)
    make_order(busy, status=Order.Status.IN_PROGRESS)
    make_order(done, status=Order.Status.DONE)
    assert list(Client.objects.active()) == [busy]
    assert idle not in Client.objects.active()


def test_with_order_totals_counts_and_sums(make_client, make_order):
    rich, empty = make_client(), make_client()
    make_order(rich, "30.50")
    make_order(rich, "12.25")
    totals = {c.pk: c for c in Client.objects.with_order_totals()}
    assert totals[rich.pk].order_count == 2
    assert totals[rich.pk].total_amount == Decimal("42.75")
    assert totals[empty.pk].order_count == 0
    assert totals[empty.pk].total_amount == Decimal("0")


def test_with_order_totals_does_not_multiply_with_other_joins(make_client, make_order):
    client = make_client()
    for amount in ("10.00", "20.00", "30.00"):
        make_order(client, amount)
    annotated = (
        Client.objects.with_order_totals()
        .annotate(joined=Count("orders"))
        .filter(orders__amount__gte=0)
        .distinct()
        .get()
    )
    assert annotated.order_count == 3
    assert annotated.total_amount == Decimal("60.00")


def test_with_order_totals_combines_with_active(make_client, make_order):
    client = make_client()
    make_order(client, "5.00", Order.Status.NEW)
    make_order(client, "7.00", Order.Status.DONE)
    result = Client.objects.active().with_order_totals().get()
    assert (result.order_count, result.total_amount) == (2, Decimal("12.00"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("100%", ["100% Fresh"]),
        ("a_b", ["a_b studio"]),
        ("FRESH", ["100 Fresh", "100% Fresh"]),
    ],
)
def test_search_treats_percent_and_underscore_literally(make_client, query, expected):
    make_client(name="100% Fresh")
    make_client(name="100 Fresh")
    make_client(name="a_b studio")
    make_client(name="axb studio")
    assert [c.name for c in Client.objects.search(query)] == expected


def test_search_matches_email(make_client):
    target = make_client(email="findme@acme.io")
    make_client()
    assert list(Client.objects.search("FINDME")) == [target]
