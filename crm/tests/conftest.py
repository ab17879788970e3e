"""Shared fixtures for the Mini CRM tests."""

import io
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from crm.models import Client, Order


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _private_cache(settings):
    # In-process tests never touch a shared Redis (clear() would flush it), and
    # cached client lists must not outlive the test database they came from.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    cache.clear()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("sam", "sam@acme.io", "pw-for-tests-1")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def make_client():
    counter = iter(range(1, 10**6))

    def make(**fields):
        n = next(counter)
        fields.setdefault("name", f"Client {n}")
        fields.setdefault("email", f"client{n}@mail.test")
        return Client.objects.create(**fields)

    return make


@pytest.fixture
def make_order():
    def make(client, amount="10.00", status=Order.Status.NEW, title="Order"):
        return Order.objects.create(
            client=client, amount=Decimal(amount), status=status, title=title
        )

    return make


def image_upload(name="avatar.png", size=(10, 10), fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")
