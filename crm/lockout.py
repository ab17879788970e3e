"""Login lockout (django-axes): where a login comes from, what a locked user sees."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.shortcuts import render
from django.utils import timezone


class LockoutBackend(AxesStandaloneBackend):
    """Refuse a locked-out login before any password is checked.

    Every login page passes the request, which the lockout needs (whose
    address). A call without one (``Client.login()`` in tests, a shell) is
    not a login page: it is let through to the next backend instead of
    failing, as django-axes' own backend would.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_ip(request):
    """Return the address a login attempt comes from.

    The REMOTE_ADDR, or behind ``CRM_LOGIN_PROXY_COUNT`` proxies the address
    the outermost of them saw (entries further left can be forged).
    """
    count = settings.CRM_LOGIN_PROXY_COUNT
    if count:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        forwarded = [address.strip() for address in forwarded if address.strip()]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "")


def locked_out(request, original_response=None, credentials=None):
    """Render the lockout page: who is locked, and when to try again."""
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = max(1, round(cooloff.total_seconds() / 60))
    context = {
        "username": (credentials or {}).get("username")
        or request.POST.get("username", ""),
        "minutes": minutes,
        "retry_at": timezone.localtime() + cooloff,
    }
    return render(
        request,
        "public/locked_out.html",
        context,
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
