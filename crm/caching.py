"""The client list's data in Django's cache, dropped by any client or order change."""

import hashlib

from django.core.cache import cache
from django.core.paginator import Page, Paginator

from .cache import CacheVersion
from .counting import CountingPaginator
from .models import Client

TIMEOUT = 60
VERSION = CacheVersion("crm:client-list:version")


def client_list_version():
    """Return the version of the client data the cached pages were made from."""
    return VERSION.current()


def invalidate_client_list():
    """Make the next list request read the database (after the current commit)."""
    VERSION.invalidate()


def page_number(value):
    """Return the page a ``?page=`` value asks for: 1 for 0, negatives and junk."""
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1


def client_list_page(query, page, per_page):
    """Return the page of clients (with order totals) for a search, cached.

    ``page`` is the raw ``?page=`` value (see ``page_number``); past the end
    is the last page.
    """
    query = (query or "").strip()
    asked = page_number(page)
    digest = hashlib.sha256(f"{per_page}|{asked}|{query}".encode()).hexdigest()
    key = f"crm:client-list:{VERSION.current()}:{digest}"
    cached = cache.get(key)
    if cached is None:
        queryset = Client.objects.search(query).with_order_totals()
        # Past 1,000 matches on PostgreSQL the count is an estimate.
        found = CountingPaginator(queryset, per_page).get_page(asked)
        cached = (list(found.object_list), found.paginator.count, found.number)
        cache.set(key, cached, TIMEOUT)
    clients, count, number = cached
    # A cached page needs neither the query nor a COUNT: only the numbers.
    paginator = Paginator((), per_page)
    paginator.count = count  # a cached_property
    return Page(clients, number, paginator)
