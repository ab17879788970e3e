"""Who may do what: Django's model permissions, kept in the cache between requests."""

# Every page checks a permission (the admin's, the same on the public pages),
# and Django reads a user's permissions with two joined queries per request.
# Here they come from the cache; any change to who has which permission bumps
# a version that every cached set is keyed by.

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

from .cache import CacheVersion

#: Seconds a cached set lives. With a shared cache (REDIS_URL) a change is seen
#: by every process at once; without one, by the process that made it at once
#: and by the others within this time.
TIMEOUT = 10
VERSION = CacheVersion("crm:permissions:version")


def invalidate_permissions():
    """Make every process read permissions from the database again."""
    VERSION.invalidate()


class CachedPermissionsBackend(ModelBackend):
    """Django's ModelBackend, with each user's permission set in the cache."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            key = f"crm:permissions:{VERSION.current()}:{user_obj.pk}"
            permissions = cache.get(key)
            if permissions is None:
                permissions = super().get_all_permissions(user_obj)
                cache.set(key, permissions, TIMEOUT)
            user_obj._perm_cache = permissions
        return user_obj._perm_cache
