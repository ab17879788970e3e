"""Fixtures for the API tests: API clients logged in by token."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def staff(django_user_model, sales_team):
    """Return a staff member of the Sales team (no delete_order)."""
    user = django_user_model.objects.create_user(
        "stella", "stella@acme.io", "pw-for-tests-3", is_staff=True
    )
    user.groups.add(sales_team)
    return user


def token_client(user):
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def api(user):
    """An API client with a team member's token (reads; not staff)."""
    return token_client(user)


@pytest.fixture
def staff_api(staff):
    """An API client with a staff member's token (reads and writes)."""
    return token_client(staff)
