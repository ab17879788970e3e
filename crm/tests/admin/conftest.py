"""Fixtures for the admin tests."""

import pytest


@pytest.fixture
def clients_with_orders(make_client, make_order):
    def make(n, orders_each=2):
        for i in range(n):
            client = make_client(avatar="avatars/a.png" if i % 2 else "")
            for _ in range(orders_each):
                make_order(client)

    return make
