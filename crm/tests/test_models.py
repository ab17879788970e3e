from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, ProtectedError
from django.utils import timezone

from crm.models import Client, Order
from crm.rules import normalize_email

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


# One spelling per email ---------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Alice@ＡＣＭＥ.io ", "alice@acme.io"),
        ("ＡＬＩＣＥ＠acme.io", "alice@acme.io"),
        ("user@xn--bcher-kva.de", "user@bücher.de"),
        ("USER@XN--BCHER-KVA.DE", "user@bücher.de"),
        ("user@BÜCHER.de", "user@bücher.de"),
        ("user@bu\u0308cher.de", "user@bücher.de"),  # decomposed ü
        ("plain@mail.test", "plain@mail.test"),
    ],
)
def test_every_spelling_of_an_address_is_stored_one_way(typed, stored):
    assert normalize_email(typed) == stored
    assert normalize_email(stored) == stored
    client = Client.objects.create(name="N", email=typed)
    client.refresh_from_db()
    assert client.email == stored
    assert Client.objects.filter(email=typed).get() == client
    assert Client.objects.by_email([typed]) == {stored: client}


def test_normalizing_twice_changes_nothing_and_validation_never_crashes():
    import random
    import string

    rng = random.Random(11)
    alphabet = (
        string.ascii_letters + string.digits + "-._@" + "üßİﬁＡ\u200b\u202e\u3000"
    )
    for _ in range(3000):
        email = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.5:
            email = "a@xn--" + email
        normalized = normalize_email(email)
        assert normalize_email(normalized) == normalized, email
        try:
            Client(name="N", email=email).full_clean()
        except ValidationError:
            pass


@pytest.mark.parametrize(
    "email", ["x@ｅｘａｍｐｌｅ.com", "x@EXAMPLE.com", "x@example.com"]
)
def test_blocked_domain_in_any_spelling_is_refused(email):
    with pytest.raises(ValidationError) as error:
        Client(name="B", email=email).full_clean()
    assert error.value.error_dict["email"][0].code == "blocked_domain"


def test_blocked_domain_setting_in_punycode_blocks_the_unicode_spelling(settings):
    settings.CRM_BLOCKED_EMAIL_DOMAINS = ["XN--BCHER-KVA.de"]
    with pytest.raises(ValidationError):
        Client(name="B", email="b@bücher.de").full_clean()


@pytest.mark.parametrize("email", ["v@ｃｏｍｐａｎｙ.com", "v@COMPANY.com"])
def test_vip_domain_in_any_spelling_is_vip(email):
    assert Client.objects.create(name="V", email=email).vip is True
    Client.objects.all().delete()
    Client.objects.bulk_create([Client(name="V", email=email)])
    # bulk paths call apply_create_rules themselves (see the import resource)


@pytest.mark.parametrize(
    ("existing", "duplicate"),
    [
        ("alice@acme.io", "alice@ａｃｍｅ.io"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "USER@BÜCHER.DE"),
    ],
)
def test_a_duplicate_in_another_spelling_is_a_field_error(existing, duplicate):
    Client.objects.create(name="A", email=existing)
    with pytest.raises(ValidationError) as error:
        Client(name="B", email=duplicate).full_clean()
    assert error.value.error_dict["email"][0].code == "email_taken"


def test_a_duplicate_in_another_spelling_cannot_be_inserted_by_any_path():
    Client.objects.create(name="A", email="alice@acme.io")
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.create(name="B", email="alice@ａｃｍｅ.io")
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.bulk_create([Client(name="B", email="ALICE@ａｃｍｅ.IO")])


def test_update_and_bulk_update_store_the_normalized_address():
    client = Client.objects.create(name="U", email="u@mail.test")
    Client.objects.filter(pk=client.pk).update(email="U@ｘｎ.test")
    client.refresh_from_db()
    assert client.email == "u@xn.test"
    client.email = "u@XN--BCHER-KVA.de"
    Client.objects.bulk_update([client], ["email"])
    client.refresh_from_db()
    assert client.email == "u@bücher.de"


@pytest.mark.parametrize("email", ["user@xn--zz.de", "user@xn--.de", "user@a.xn--a"])
def test_an_undecodable_punycode_label_is_a_field_error(email):
    with pytest.raises(ValidationError) as error:
        Client(name="I", email=email).full_clean()
    assert "invalid_idn" in [e.code for e in error.value.error_dict["email"]]


def test_exact_email_lookups_use_an_index():
    Client.objects.bulk_create(
        Client(name=f"C{n}", email=f"c{n}@mail.test") for n in range(50)
    )
    queries = [
        Client.objects.filter(email="C7@mail.test"),
        Client.objects.filter(email__in=["c1@mail.test", "c2@mail.test"]),
    ]
    for queryset in queries:
        if connection.vendor == "postgresql":
            # With 50 rows a scan is cheapest; ask whether the index can be used.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
                plan = queryset.explain()
        else:
            plan = queryset.explain()
        assert "crm_client_email_idx" in plan, plan
        assert "SCAN crm_client" not in plan and "Seq Scan" not in plan


def test_the_import_path_finds_a_client_in_any_spelling():
    import tablib

    from crm.spreadsheets.resources import ClientResource

    existing = Client.objects.create(name="Alice", email="alice@acme.io")
    dataset = tablib.Dataset(headers=["name", "email", "phone"])
    dataset.append(["Alice Renamed", "ALICE@ａｃｍｅ.io", "+44 20 7946 0958"])
    dataset.append(["Bücher", "user@xn--bcher-kva.de", ""])
    result = ClientResource().import_data(dataset, dry_run=False)
    assert not result.has_errors() and not result.has_validation_errors()
    existing.refresh_from_db()
    assert (existing.name, existing.phone) == ("Alice Renamed", "+442079460958")
    assert Client.objects.get(name="Bücher").email == "user@bücher.de"
    assert Client.objects.count() == 2


# Names and emails: nothing invisible, nothing reversed --------------------------


@pytest.mark.parametrize(
    "name",
    [
        "\u200b\u200b",
        "\u2060",
        "\ufeff",
        "A\u202eB",
        "A\u202aB",
        "Ann\u2066x\u2069",
        "\u3164",
        " \u200b ",
    ],
)
def test_invisible_or_bidi_names_are_field_errors(name):
    with pytest.raises(ValidationError) as error:
        Client(name=name, email="n@mail.test").full_clean()
    assert "name" in error.value.error_dict


@pytest.mark.parametrize("name", ["Zoë", "👩\u200d💻 Ada", "می\u200cخواهم", "李雷"])
def test_names_with_joiners_and_any_script_are_accepted(name):
    Client(name=name, email="n@mail.test").full_clean()


@pytest.mark.parametrize(
    "email", ["a\u200b@mail.test", "a@mail\u202e.test", "\ufeffa@mail.test"]
)
def test_invisible_or_bidi_emails_are_field_errors(email):
    with pytest.raises(ValidationError) as error:
        Client(name="E", email=email).full_clean()
    codes = [e.code for e in error.value.error_dict["email"]]
    assert "hidden_characters" in codes


# Phones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("(020) 7946-0958", "02079460958"),
        ("020.7946.0958", "02079460958"),
        ("+1 415/555-0101", "+14155550101"),
        ("+49\u00a030\u2009123", "+4930123"),  # no-break and thin spaces
        ("", ""),
    ],
)
def test_phone_separators_are_removed_on_every_write_path(typed, stored):
    client = Client(name="P", email="p@mail.test", phone=typed)
    client.full_clean()
    assert client.phone == stored
    client.phone = typed
    client.save()
    client.refresh_from_db()
    assert client.phone == stored
    Client.objects.filter(pk=client.pk).update(phone=typed)
    client.refresh_from_db()
    assert client.phone == stored
    Client.objects.bulk_create([Client(name="Q", email="q@mail.test", phone=typed)])
    assert Client.objects.get(name="Q").phone == stored


@pytest.mark.parametrize(
    "phone", ["12ab", "+1+2", "1+2", "++1", "#123", "1234567890123456", "١٢٣", "+"]
)
def test_a_phone_that_is_not_a_plus_and_digits_is_a_field_error(phone):
    with pytest.raises(ValidationError) as error:
        Client(name="P", email="p@mail.test", phone=phone).full_clean()
    assert "phone" in error.value.error_dict


def test_a_long_phone_with_separators_fits():
    client = Client(name="P", email="p@mail.test", phone="+44 (0) 20 7946 0958")
    client.full_clean()
    assert client.phone == "+4402079460958"


def test_the_email_check_accepts_and_refuses_what_djangos_does():
    import random
    import string

    from django.core.validators import validate_email as djangos

    from crm.rules import validate_email

    def verdict(check, value):
        try:
            check(value)
        except ValidationError as error:
            return error.code
        return "ok"

    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + "-._@[]:+\"' ü"
    emails = ["a@b.co", "a@[127.0.0.1]", "a@[IPv6:::1]", "a@localhost", "a@-b.co"]
    emails += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        for _ in range(3000)
    ]
    emails += [f"{e}@{e}.{e[:3]}" for e in emails[5:300]]
    assert {e: verdict(validate_email, e) for e in emails} == {
        e: verdict(djangos, e) for e in emails
    }
    assert "ok" in {verdict(validate_email, e) for e in emails}
