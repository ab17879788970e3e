"""Template filters and tags for Mini CRM pages."""

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse

from crm.formatting import format_money

register = template.Library()


@register.filter
def money(value):
    return format_money(value)


@register.simple_tag
def page_url(name):
    """Return the URL of a page that takes no arguments (``{% url %}``, once).

    ``{% url %}`` reverses on every render; the header and the toolbar of
    every public page name the same few pages, which cost a seventh of the
    client list's time. The answer depends only on the URL configuration and
    the script prefix, so it is kept per process for each.
    """
    return _reversed(name, get_urlconf(), get_script_prefix())


@lru_cache(maxsize=64)
def _reversed(name, urlconf, prefix):
    return reverse(name, urlconf=urlconf)
