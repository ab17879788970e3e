"""Who may do what: Django's model permissions, kept in the cache between requests."""

# Every page checks a permission (the admin's, the same on the public pages),
# and Django reads a user's permissions with two joined queries per request.
# Here they come from the cache; any change to who has which permission bumps
# a version that every cached set is keyed by.

from uuid import uuid4

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.db import transaction
from django.dispatch import receiver

from .cache import cache_reconnected

VERSION_KEY = "crm:permissions:version"
#: Seconds a cached set lives. With a shared cache (REDIS_URL) a change is seen
#: by every process at once; without one, by the process that made it at once
#: and by the others within this time.
TIMEOUT = 10


def _version():
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid4().hex, None)
        version = cache.get(VERSION_KEY)
    return version


def _new_version():
    cache.set(VERSION_KEY, uuid4().hex, None)


@receiver(cache_reconnected)
def _start_afresh(**kwargs):
    # Invalidations made while the cache was away were lost: drop everything
    # cached before the outage.
    _new_version()


def invalidate_permissions():
    """Make every process read permissions from the database again."""
    # Now and after the commit: a request reading in between must not keep
    # the old permissions under the new version.
    _new_version()
    transaction.on_commit(_new_version)


class CachedPermissionsBackend(ModelBackend):
    """Django's ModelBackend, with each user's permission set in the cache."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            key = f"crm:permissions:{_version()}:{user_obj.pk}"
            permissions = cache.get(key)
            if permissions is None:
                permissions = super().get_all_permissions(user_obj)
                cache.set(key, permissions, TIMEOUT)
            user_obj._perm_cache = permissions
        return user_obj._perm_cache
