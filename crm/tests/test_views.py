import io
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.urls import reverse
from PIL import Image

from crm.models import Client, Order

from .conftest import image_upload

pytestmark = pytest.mark.django_db

LIST = reverse("clients:list")
ADD = reverse("clients:add")


def post_client(http, url=ADD, **fields):
    data = {"name": "New Client", "email": "new@mail.test", "phone": ""}
    data.update(fields)
    return http.post(url, data)


@pytest.mark.parametrize(
    "url", ["/clients/", "/clients/add/", "/clients/1/edit/", "/clients/1/delete/"]
)
def test_anonymous_users_are_redirected_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_public_pages_open_when_login_not_required(client, settings, make_client):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    make_client(name="Visible")
    response = client.get(LIST)
    assert response.status_code == 200
    assert b"Visible" in response.content


def test_login_page_logs_in_and_lands_on_the_list(client, user):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post(
        "/accounts/login/", {"username": "sam", "password": "pw-for-tests-1"}
    )
    assert response.status_code == 302
    assert response["Location"] == LIST


def test_logout_is_a_post(logged_in):
    response = logged_in.post("/accounts/logout/")
    assert response.status_code == 302
    assert logged_in.get(LIST).status_code == 302


def test_list_shows_clients_with_order_count_and_total(
    logged_in, make_client, make_order
):
    client = make_client(name="Ada Lovelace", email="ada@acme.io")
    make_order(client, "30.5")
    make_order(client, "12")
    make_client(name="No Orders")
    response = logged_in.get(LIST)
    html = response.content.decode()
    assert "Ada Lovelace" in html and "ada@acme.io" in html
    assert "42.50" in html
    assert "0.00" in html


def test_list_shows_avatar_or_initial(logged_in, make_client):
    make_client(name="zed", avatar=image_upload())
    make_client(name="Quinn")
    html = logged_in.get(LIST).content.decode()
    assert '<img class="avatar" src="/media/avatars/' in html
    assert ">Q</span>" in html


def test_empty_list_says_no_clients_found(logged_in):
    assert b"No clients found" in logged_in.get(LIST + "?q=nobody").content


def test_list_search_matches_name_or_email(logged_in, make_client):
    make_client(name="Grace Hopper", email="grace@navy.test")
    make_client(name="Alan", email="turing@bletchley.test")
    make_client(name="Other", email="other@mail.test")
    html = logged_in.get(LIST + "?q=bletchley").content.decode()
    assert "Alan" in html and "Other" not in html
    html = logged_in.get(LIST + "?q=grace").content.decode()
    assert "Grace Hopper" in html and "Alan" not in html


def test_list_search_percent_is_literal(logged_in, make_client):
    make_client(name="100% Organic")
    make_client(name="Plain Shop")
    html = logged_in.get(LIST + "?q=%25").content.decode()
    assert "100% Organic" in html and "Plain Shop" not in html


def test_list_paginates_by_ten_and_keeps_query(logged_in, make_client):
    for n in range(25):
        make_client(name=f"Match {n:02d}")
    make_client(name="Different")
    response = logged_in.get(LIST + "?q=match")
    assert len(response.context["clients"]) == 10
    assert 'href="?q=match&amp;page=2"' in response.content.decode()
    page3 = logged_in.get(LIST + "?q=match&page=3")
    assert len(page3.context["clients"]) == 5
    assert 'href="?q=match&amp;page=2"' in page3.content.decode()


@pytest.mark.parametrize("page", ["abc", "9999", "-1", "0", "1.5", ""])
def test_bad_page_numbers_do_not_fail(logged_in, make_client, page):
    for _ in range(12):
        make_client()
    response = logged_in.get(LIST, {"page": page})
    assert response.status_code in (200, 404)


def test_list_query_count_does_not_grow_with_clients(
    logged_in, make_client, make_order, django_assert_max_num_queries
):
    def fill(n):
        for _ in range(n):
            make_order(make_client())

    fill(2)
    with django_assert_max_num_queries(6) as few:
        logged_in.get(LIST)
    fill(8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = logged_in.get(LIST)
    assert len(response.context["clients"]) == 10


def test_add_client_stores_lowercased_email_and_flashes(logged_in):
    response = post_client(logged_in, email="USER@MAIL.COM")
    assert response.status_code == 302 and response["Location"] == LIST
    assert Client.objects.get().email == "user@mail.com"
    html = logged_in.get(LIST).content.decode()
    assert "was added" in html and "user@mail.com" in html


def test_case_variant_duplicate_is_a_form_error(logged_in, make_client):
    make_client(email="a@x.com")
    response = post_client(logged_in, email="A@X.com")
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["email"][0]
    assert Client.objects.count() == 1


def test_blocked_domain_is_a_form_error(logged_in):
    response = post_client(logged_in, email="someone@example.com")
    assert response.status_code == 200
    assert "not accepted" in response.context["form"].errors["email"][0]
    assert not Client.objects.exists()


def test_company_domain_becomes_vip(logged_in):
    post_client(logged_in, email="boss@company.com")
    assert Client.objects.get().vip is True


def test_required_fields_are_form_errors(logged_in):
    response = post_client(logged_in, name="", email="")
    assert set(response.context["form"].errors) == {"name", "email"}


def test_overlong_phone_is_a_form_error(logged_in):
    response = post_client(logged_in, phone="1" * 16)
    assert "phone" in response.context["form"].errors


def test_save_race_on_email_becomes_form_error(logged_in, make_client):
    make_client(email="race@mail.test")
    # Validation saw no duplicate, then another request inserted it first.
    with mock.patch.object(Client, "validate_constraints"):
        response = post_client(logged_in, email="RACE@mail.test")
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["email"][0]


def test_edit_client(logged_in, make_client):
    client = make_client(name="Old", email="old@mail.test")
    url = reverse("clients:edit", args=[client.pk])
    assert logged_in.get(url).status_code == 200
    response = post_client(logged_in, url, name="New", email="OLD@mail.test")
    assert response.status_code == 302
    client.refresh_from_db()
    assert (client.name, client.email) == ("New", "old@mail.test")
    assert "was saved" in logged_in.get(LIST).content.decode()


def test_edit_unknown_client_is_404(logged_in):
    assert logged_in.get("/clients/999/edit/").status_code == 404


def test_avatar_upload_is_stored(logged_in):
    post_client(logged_in, avatar=image_upload())
    assert Client.objects.get().avatar.name.startswith("avatars/")


def test_non_image_avatar_is_a_form_error(logged_in):
    fake = SimpleUploadedFile("evil.png", b"<?php echo 1; ?>", "image/png")
    response = post_client(logged_in, avatar=fake)
    assert "avatar" in response.context["form"].errors
    assert not Client.objects.exists()


def test_avatar_over_five_megabytes_is_a_form_error(logged_in):
    buffer = io.BytesIO()
    noisy = Image.effect_noise((1400, 1400), 100).convert("RGB")
    noisy.save(buffer, "BMP")
    assert buffer.tell() > 5 * 1024 * 1024
    big = SimpleUploadedFile("big.bmp", buffer.getvalue(), "image/bmp")
    response = post_client(logged_in, avatar=big)
    assert "larger than 5 MB" in response.context["form"].errors["avatar"][0]


def test_avatar_over_forty_megapixels_is_a_form_error(logged_in):
    buffer = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buffer, "PNG")
    assert buffer.tell() < 5 * 1024 * 1024
    huge = SimpleUploadedFile("huge.png", buffer.getvalue(), "image/png")
    response = post_client(logged_in, avatar=huge)
    assert "megapixels" in response.context["form"].errors["avatar"][0]
    assert not Client.objects.exists()


def test_delete_confirmation_names_the_client(logged_in, make_client):
    client = make_client(name="Doomed")
    response = logged_in.get(reverse("clients:delete", args=[client.pk]))
    html = response.content.decode()
    assert "Doomed" in html and "Confirm Delete" in html and "Cancel" in html


def test_delete_client_without_orders(logged_in, make_client):
    client = make_client(name="Doomed")
    response = logged_in.post(reverse("clients:delete", args=[client.pk]))
    assert response.status_code == 302 and response["Location"] == LIST
    assert not Client.objects.exists()
    assert "was deleted" in logged_in.get(LIST).content.decode()


def test_old_delete_url_still_deletes(logged_in, make_client):
    client = make_client()
    response = logged_in.post(f"/clients/{client.pk}/edit/delete/")
    assert response.status_code == 302
    assert not Client.objects.exists()


def test_deleting_client_with_orders_is_refused_and_keeps_both(
    logged_in, make_client, make_order
):
    client = make_client(name="Busy")
    make_order(client)
    url = reverse("clients:delete", args=[client.pk])
    page = logged_in.get(url).content.decode()
    assert "cannot be deleted" in page and "Confirm Delete" not in page
    response = logged_in.post(url, follow=True)
    assert "Merge the client" in response.content.decode()
    assert Client.objects.count() == 1 and Order.objects.count() == 1


def test_csrf_is_enforced_on_post(user, make_client):
    from django.test import Client as HttpClient

    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(user)
    assert post_client(http).status_code == 403
    target = make_client()
    delete = http.post(reverse("clients:delete", args=[target.pk]))
    assert delete.status_code == 403
    assert Client.objects.filter(pk=target.pk).exists()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/", "/clients/"),
        ("/create/", "/clients/add/"),
        ("/update/7/", "/clients/7/edit/"),
        ("/delete/7/", "/clients/7/delete/"),
    ],
)
def test_old_urls_redirect(client, old, new):
    response = client.get(old)
    assert response.status_code in (301, 302)
    assert response["Location"] == new


def test_health_says_ok(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.content.splitlines()[0] == b"ok"
    assert response["Content-Type"].startswith("text/plain")


def test_health_is_503_when_database_is_down(client):
    with mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.cursor",
        side_effect=OperationalError("down"),
    ):
        response = client.get("/health/")
    assert response.status_code == 503
    assert b"database" in response.content


@pytest.mark.parametrize("query", ["\x00", "a\x00b", "%00", "'; DROP TABLE", "é" * 500])
def test_hostile_search_terms_do_not_fail(logged_in, make_client, query):
    make_client(name="Someone")
    assert logged_in.get(LIST, {"q": query}).status_code == 200
    assert logged_in.get(reverse("clients:export"), {"q": query}).status_code == 200


# Permissions: the admin's model permissions, on every public page -----------

PAGES = [
    ("get", "/clients/", "view_client"),
    ("get", "/clients/add/", "add_client"),
    ("post", "/clients/add/", "add_client"),
    ("get", "/clients/{pk}/edit/", "change_client"),
    ("post", "/clients/{pk}/edit/", "change_client"),
    ("get", "/clients/{pk}/delete/", "delete_client"),
    ("post", "/clients/{pk}/delete/", "delete_client"),
    ("post", "/clients/{pk}/edit/delete/", "delete_client"),
    ("get", "/clients/export.csv", "export_client"),
]


def grant(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="crm", codename__in=codenames
        )
    )


@pytest.mark.parametrize(("method", "url", "codename"), PAGES)
def test_a_user_without_the_permission_gets_403_and_changes_nothing(
    client, nobody, make_client, method, url, codename
):
    target = make_client(name="Bob Chen", email="bob.chen@mail.test", phone="555")
    others = [
        c
        for c in (
            "view_client",
            "add_client",
            "change_client",
            "delete_client",
            "export_client",
        )
        if c != codename
    ]
    grant(nobody, *others)  # every client permission but the page's own
    client.force_login(nobody)
    data = {"name": "Changed", "email": "changed@mail.test", "phone": ""}
    response = getattr(client, method)(url.format(pk=target.pk), data)
    assert response.status_code == 403
    assert b"bob.chen" not in response.content
    target.refresh_from_db()
    assert (target.name, target.email) == ("Bob Chen", "bob.chen@mail.test")
    assert Client.objects.count() == 1


@pytest.mark.parametrize(("method", "url", "codename"), PAGES)
def test_the_page_permission_is_enough(
    client, nobody, make_client, method, url, codename
):
    target = make_client(email="kept@mail.test")
    grant(nobody, codename)
    client.force_login(nobody)
    data = {"name": "Changed", "email": "changed@mail.test", "phone": ""}
    response = getattr(client, method)(url.format(pk=target.pk), data)
    assert response.status_code in (200, 302)


@pytest.mark.parametrize("url", ["/clients/export.csv", "/clients/1/edit/delete/"])
def test_anonymous_users_are_sent_to_login_everywhere(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("who", ["anonymous", "nobody"])
@pytest.mark.parametrize(("method", "url", "codename"), PAGES)
def test_demo_mode_opens_every_page_to_anyone(
    client, settings, nobody, make_client, who, method, url, codename
):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    target = make_client()
    if who == "nobody":
        client.force_login(nobody)
    data = {"name": "Demo", "email": "demo@mail.test", "phone": ""}
    response = getattr(client, method)(url.format(pk=target.pk), data)
    assert response.status_code in (200, 302)
    assert not response.get("Location", "").startswith("/accounts/login/")


LINKS = {
    "add_client": 'href="/clients/add/"',
    "export_client": 'href="/clients/export.csv"',
    "change_client": 'href="/clients/{pk}/edit/"',
    "delete_client": 'href="/clients/{pk}/delete/"',
}


@pytest.mark.parametrize("codename", list(LINKS))
def test_the_list_shows_only_the_links_the_user_may_use(
    client, nobody, make_client, codename
):
    target = make_client()
    grant(nobody, "view_client", codename)
    client.force_login(nobody)
    html = client.get(LIST).content.decode()
    shown = {name for name, link in LINKS.items() if link.format(pk=target.pk) in html}
    assert shown == {codename}


def test_the_sales_team_sees_every_link(logged_in, make_client):
    target = make_client()
    html = logged_in.get(LIST).content.decode()
    for link in LINKS.values():
        assert link.format(pk=target.pk) in html


def test_demo_mode_shows_every_link_to_anonymous_visitors(
    client, settings, make_client
):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    target = make_client()
    html = client.get(LIST).content.decode()
    for link in LINKS.values():
        assert link.format(pk=target.pk) in html


def test_demo_mode_shows_initials_not_avatars_to_anonymous_visitors(
    client, settings, make_client
):
    # Avatars are served to logged-in users only.
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    make_client(name="Zed", avatar=image_upload())
    html = client.get(LIST).content.decode()
    assert "/media/" not in html and ">Z</span>" in html


# Pages, search ------------------------------------------------------------------


@pytest.mark.parametrize("page", ["0", "-1", "-99", "abc", "", "١"])
def test_zero_negative_or_junk_page_shows_the_first_page(logged_in, make_client, page):
    for n in range(25):
        make_client(name=f"Person {n:02d}")
    response = logged_in.get(LIST, {"page": page})
    assert response.status_code == 200
    assert response.context["page_obj"].number == 1
    assert response.context["clients"][0].name == "Person 24"


def test_page_past_the_end_shows_the_last_page(logged_in, make_client):
    for n in range(25):
        make_client(name=f"Person {n:02d}")
    response = logged_in.get(LIST, {"page": "99"})
    assert response.context["page_obj"].number == 3


@pytest.mark.parametrize("query", ["ZOË", "zoë", "ZOë", "ÜNAL", "ünal", "Zoë Ü"])
def test_search_finds_any_letter_case_in_the_list_and_the_export(
    logged_in, make_client, query
):
    make_client(name="Zoë Ünal", email="zoe@mail.test")
    make_client(name="Zoe Other", email="other@mail.test")
    html = logged_in.get(LIST, {"q": query}).content.decode()
    assert "Zoë Ünal" in html and "Zoe Other" not in html
    export = logged_in.get(reverse("clients:export"), {"q": query})
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    assert "Zoë Ünal" in text and "Zoe Other" not in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [("É%", ["É% off"]), ("é_", ["É_b"]), ("ÉX", ["éx", "Éxx off"]), ("ß", ["Straße"])],
)
def test_non_ascii_search_keeps_percent_and_underscore_literal(
    logged_in, make_client, query, expected
):
    for name in ("É% off", "Éxx off", "É_b", "Éab", "éx", "Straße"):
        make_client(name=name)
    found = [c.name for c in logged_in.get(LIST, {"q": query}).context["clients"]]
    assert found == expected


# The form obeys the model's rules, in any spelling --------------------------------


def test_form_stores_a_phone_typed_with_separators(logged_in):
    response = post_client(logged_in, phone="+44 20 7946 0958")  # 16 characters
    assert response.status_code == 302
    assert Client.objects.get().phone == "+442079460958"


@pytest.mark.parametrize("phone", ["+44 20 7946 0958 ext 1", "12ab", "+1+2"])
def test_form_refuses_a_phone_with_more_than_digits(logged_in, phone):
    response = post_client(logged_in, phone=phone)
    assert "digits" in response.context["form"].errors["phone"][0]
    assert not Client.objects.exists()


@pytest.mark.parametrize("email", ["alice@ａｃｍｅ.io", "ALICE@acme.IO"])
def test_form_refuses_a_duplicate_in_another_spelling(logged_in, make_client, email):
    make_client(email="alice@acme.io")
    response = post_client(logged_in, email=email)
    assert "already exists" in response.context["form"].errors["email"][0]
    assert Client.objects.count() == 1


def test_form_refuses_a_blocked_domain_in_full_width_letters(logged_in):
    response = post_client(logged_in, email="x@ｅｘａｍｐｌｅ.com")
    assert "not accepted" in response.context["form"].errors["email"][0]
    assert not Client.objects.exists()


def test_form_stores_a_punycode_domain_in_unicode(logged_in):
    post_client(logged_in, email="user@xn--bcher-kva.de")
    assert Client.objects.get().email == "user@bücher.de"


@pytest.mark.parametrize("name", ["\u200b\u200b\u200b", "A\u202eB"])
def test_form_refuses_invisible_or_reversed_names(logged_in, name):
    response = post_client(logged_in, name=name)
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert not Client.objects.exists()


def test_form_names_the_hidden_character_in_an_email(logged_in):
    response = post_client(logged_in, email="a\u200b@mail.test")
    assert any("U+200B" in e for e in response.context["form"].errors["email"])


def test_403_says_what_to_do(client, nobody):
    client.force_login(nobody)
    response = client.get(LIST)
    assert response.status_code == 403
    assert "Sales team" in response.content.decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "a@xn--ls8h.la"),
        ("email", "a@" + "\ufdfa" * 20 + ".com"),  # expands under NFKC
        ("email", "a@xn--" + "a" * 70 + ".com"),
        ("email", "\u3000a@b.test\u3000"),
        ("email", "a@b.test\x00"),
        ("phone", "٠١٢"),
        ("phone", "１２３"),
        ("phone", "+" * 20),
        ("phone", "1" * 100),
        ("phone", "\x00"),
        ("phone", "((((("),
        ("name", "\u2800"),
        ("name", "x" * 101),
    ],
)
def test_hostile_form_values_get_a_message_not_a_500(logged_in, field, value):
    response = post_client(logged_in, **{"email": "ok@b.test", field: value})
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert response.context["form"].errors
