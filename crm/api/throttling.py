"""How often the API may be called: per anonymous address and per user."""

# Counted in Django's cache, which is Redis when REDIS_URL is set: every worker
# counts together. The rates are read from settings on each request (DRF reads
# them once, at import), so a test or a deploy can change them.

from django.conf import settings
from rest_framework import throttling

from ..lockout import client_ip


class AnonThrottle(throttling.AnonRateThrottle):
    """``CRM_API_THROTTLE_ANON`` requests per anonymous client address."""

    def get_rate(self):
        return settings.CRM_API_THROTTLE_ANON

    def get_ident(self, request):
        # The same address the login lockout uses (CRM_LOGIN_PROXY_COUNT).
        return client_ip(request)


class UserThrottle(throttling.UserRateThrottle):
    """``CRM_API_THROTTLE_USER`` requests per user (per address when anonymous)."""

    def get_rate(self):
        return settings.CRM_API_THROTTLE_USER

    def get_ident(self, request):
        return client_ip(request)
