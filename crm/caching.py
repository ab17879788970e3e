"""The client list's data in Django's cache, dropped by any client or order change."""

import hashlib
from uuid import uuid4

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import transaction

from .models import Client

VERSION_KEY = "crm:client-list:version"
TIMEOUT = 60


def _data_version():
    version = cache.get(VERSION_KEY)
    if version is None:
        version = uuid4().hex
        cache.add(VERSION_KEY, version, None)
        version = cache.get(VERSION_KEY, version)
    return version


def _new_version():
    cache.set(VERSION_KEY, uuid4().hex, None)


def invalidate_client_list():
    """Make the next list request read the database (after the current commit)."""
    # Bump now and again on commit: a request that reads between the two still
    # sees the old rows and must not keep them under the new version.
    _new_version()
    transaction.on_commit(_new_version)


def client_list_page(query, page_number, per_page):
    """Return the page of clients (with order totals) for a search, cached."""
    query = (query or "").strip()
    digest = hashlib.sha256(f"{per_page}|{page_number}|{query}".encode()).hexdigest()
    key = f"crm:client-list:{_data_version()}:{digest}"
    paginator = Paginator(Client.objects.search(query).with_order_totals(), per_page)
    cached = cache.get(key)
    if cached is None:
        page = paginator.get_page(page_number)
        cached = (list(page.object_list), paginator.count, page.number)
        cache.set(key, cached, TIMEOUT)
    clients, count, number = cached
    paginator.count = count  # a cached_property: no COUNT query for a cached page
    return Page(clients, number, paginator)
