import os
import uuid

import pytest

pytestmark = pytest.mark.django_db


def test_anonymous_requests_over_the_rate_get_429_with_retry_after(anon, settings):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False  # anonymous reads are allowed
    settings.CRM_API_THROTTLE_ANON = "3/min"

    codes = [anon.get("/api/clients/").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    response = anon.get("/api/clients/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60


def test_each_user_has_their_own_count(api, staff_api, settings):
    settings.CRM_API_THROTTLE_USER = "2/min"

    assert [api.get("/api/orders/").status_code for _ in range(3)] == [200, 200, 429]
    assert staff_api.get("/api/orders/").status_code == 200


def test_the_docs_are_throttled_too(anon, settings):
    settings.CRM_API_THROTTLE_ANON = "1/min"

    assert anon.get("/api/schema/").status_code == 200
    assert anon.get("/api/schema/").status_code == 429


def test_the_address_comes_from_the_proxy_count(anon, settings):
    settings.CRM_PUBLIC_LOGIN_REQUIRED = False
    settings.CRM_API_THROTTLE_ANON = "1/min"
    settings.CRM_LOGIN_PROXY_COUNT = 1

    first = anon.get("/api/clients/", HTTP_X_FORWARDED_FOR="1.1.1.1")
    again = anon.get("/api/clients/", HTTP_X_FORWARDED_FOR="9.9.9.9, 1.1.1.1")
    other = anon.get("/api/clients/", HTTP_X_FORWARDED_FOR="2.2.2.2")

    assert [first.status_code, again.status_code, other.status_code] == [200, 429, 200]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_workers_count_together_in_redis(api, user, settings):
    from django.core.cache import caches

    prefix = f"crm-test-{uuid.uuid4().hex}"
    settings.CRM_API_THROTTLE_USER = "2/min"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": prefix,
        }
    }
    redis = caches["default"]._cache.get_client(write=True)
    try:
        api.get("/api/orders/")
        # Another worker: a connection of its own to the same Redis.
        other_worker = caches.create_connection("default")
        assert len(other_worker.get(f"throttle_user_{user.pk}")) == 1
        api.get("/api/orders/")
        assert api.get("/api/orders/").status_code == 429
    finally:
        for key in redis.keys(f"{prefix}:*"):
            redis.delete(key)


@pytest.mark.parametrize("rate", ["60", "60/minute-ish", "0/min", "fast"])
def test_a_malformed_rate_stops_the_site_from_starting(rate):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm_site.settings",
            "CRM_API_THROTTLE_ANON": rate,
        },
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "CRM_API_THROTTLE_ANON must look like 60/min" in result.stderr
