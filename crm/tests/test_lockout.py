import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Dozens of logins per test; PBKDF2 is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


ADMIN_LOGIN = "/admin/login/"


def attempt(http, password, url=LOGIN, username="sam", address="10.0.0.1"):
    return http.post(
        url, {"username": username, "password": password}, REMOTE_ADDR=address
    )


def fail(http, times, **kwargs):
    return [attempt(http, "wrong", **kwargs).status_code for _ in range(times)]


def test_ten_failures_lock_the_username_from_that_address(client, user):
    assert fail(client, 9) == [200] * 9  # the form says the password is wrong
    locked = attempt(client, "wrong")
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins" in html
    assert "Try again in 15 minutes" in html
    # Even the right password is refused while locked; nobody is logged in.
    right = attempt(client, "pw-for-tests-1")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_is_for_one_username_from_one_address(client, user, django_user_model):
    django_user_model.objects.create_user("kim", "kim@acme.io", "pw-for-kim-1")
    fail(client, 10)
    assert attempt(client, "pw-for-tests-1", address="10.0.0.2").status_code == 302
    client.logout()
    other_user = attempt(client, "pw-for-kim-1", username="kim")
    assert other_user.status_code == 302


def test_the_admin_login_is_locked_too(client, admin_user):
    fail(client, 10, url=ADMIN_LOGIN, username="admin")
    response = attempt(client, "password", url=ADMIN_LOGIN, username="admin")
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still not logged in


def test_failures_on_either_page_count_together(client, user):
    fail(client, 5)
    fail(client, 5, url=ADMIN_LOGIN)
    assert attempt(client, "pw-for-tests-1").status_code == 429


def test_a_successful_login_starts_the_count_again(client, user):
    fail(client, 9)
    assert attempt(client, "pw-for-tests-1").status_code == 302
    client.logout()
    assert fail(client, 9) == [200] * 9


def test_the_limit_and_the_wait_come_from_settings(client, user, settings):
    from datetime import timedelta

    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=2)
    assert fail(client, 3) == [200, 200, 429]
    assert "Try again in 2 minutes" in attempt(client, "x").content.decode()


def test_staff_unlock_a_user_with_the_reset_command(client, user):
    fail(client, 10)
    call_command("axes_reset_username", "sam", verbosity=0)
    assert attempt(client, "pw-for-tests-1").status_code == 302


def test_staff_unlock_a_user_in_the_admin(client, user, admin_client):
    from axes.models import AccessAttempt

    fail(client, 10)
    attempt_row = AccessAttempt.objects.get(username="sam")
    changelist = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert "sam" in changelist.content.decode()
    admin_client.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt_row.pk]),
        {"post": "yes"},
    )
    assert attempt(client, "pw-for-tests-1").status_code == 302


def test_behind_a_proxy_the_forwarded_address_counts(client, user, settings):
    settings.CRM_LOGIN_PROXY_COUNT = 1
    for n in range(10):
        client.post(
            LOGIN,
            {"username": "sam", "password": "wrong"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 10.9.9.9",  # forged left, real right
        )
    locked = client.post(
        LOGIN,
        {"username": "sam", "password": "pw-for-tests-1"},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="10.9.9.9",
    )
    assert locked.status_code == 429
    other = client.post(
        LOGIN,
        {"username": "sam", "password": "pw-for-tests-1"},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="10.1.1.1",
    )
    assert other.status_code == 302


def test_client_login_in_tests_still_works(client, user):
    assert client.login(username="sam", password="pw-for-tests-1")
    assert not client.login(username="sam", password="wrong")
