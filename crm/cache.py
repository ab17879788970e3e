"""Django's Redis cache, made to degrade: Redis away costs speed, never a page.

Every cache operation that cannot reach Redis behaves like a miss (``get``
returns the default, ``add`` returns ``False``, writes are dropped), and the
outage is logged once a minute per process instead of failing the request.
When Redis answers again after an outage, ``cache_reconnected`` is sent once,
so the caches whose invalidations were dropped meanwhile can start afresh
(``crm.caching`` and ``crm.permissions`` bump their versions).
"""

import logging
import threading
import time
from uuid import uuid4

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.db import transaction
from django.dispatch import Signal
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

#: Sent (no arguments) on the first cache operation that succeeds after one failed.
cache_reconnected = Signal()

LOG_EVERY = 60  # seconds between two warnings about the same outage
RETRY_AFTER = 2  # seconds an outage is assumed to last before Redis is tried again


class _Outage:
    """Whether this process last found Redis away, shared by its threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.down = False
        self.failed_at = 0.0
        self.last_warning = 0.0
        self.watcher = None

    def watch(self, client):
        while self.down:
            time.sleep(max(RETRY_AFTER, 0.5))
            client.ping()

    def skip(self):
        """Whether to answer without trying Redis: it failed a moment ago.

        A Redis that does not answer at all would otherwise cost a connect
        timeout on every operation of every request.
        """
        return self.down and time.monotonic() - self.failed_at < RETRY_AFTER

    def failed(self, error, client):
        with self.lock:
            self.down = True
            now = self.failed_at = time.monotonic()
            if self.watcher is None or not self.watcher.is_alive():
                # Notice the return even if no request comes to this process.
                self.watcher = threading.Thread(
                    target=self.watch, args=(client,), daemon=True
                )
                self.watcher.start()
            if now - self.last_warning < LOG_EVERY:
                return
            self.last_warning = now
        logger.warning(
            "The cache (Redis) is unavailable; pages read the database: %s", error
        )

    def succeeded(self):
        if not self.down:
            return
        with self.lock:
            was_down, self.down = self.down, False
            self.last_warning = 0.0
        if was_down and not getattr(_announcing, "now", False):
            logger.warning("The cache (Redis) is back")
            _announcing.now = True  # a receiver's own cache calls must not recurse
            try:
                cache_reconnected.send(sender=ResilientRedisCache)
            finally:
                _announcing.now = False


outage = _Outage()
_announcing = threading.local()


def _degrade(fallback):
    """Wrap a client method: a Redis error returns ``fallback(*args)`` instead."""

    def decorate(method):
        def wrapper(self, *args):
            if outage.down and (outage.skip() or not self.ping()):
                return fallback(*args)
            try:
                return method(self, *args)
            except RedisError as error:
                outage.failed(error, self)
                return fallback(*args)

        wrapper.__name__ = method.__name__
        wrapper.__doc__ = method.__doc__
        return wrapper

    return decorate


def _missing_key(key, delta):
    raise ValueError(f"Key '{key}' not found (the cache is unavailable).")


class _Client(RedisCacheClient):
    add = _degrade(lambda key, value, timeout: False)(RedisCacheClient.add)
    get = _degrade(lambda key, default: default)(RedisCacheClient.get)
    set = _degrade(lambda key, value, timeout: None)(RedisCacheClient.set)
    touch = _degrade(lambda key, timeout: False)(RedisCacheClient.touch)
    delete = _degrade(lambda key: False)(RedisCacheClient.delete)
    get_many = _degrade(lambda keys: {})(RedisCacheClient.get_many)
    has_key = _degrade(lambda key: False)(RedisCacheClient.has_key)
    incr = _degrade(_missing_key)(RedisCacheClient.incr)
    set_many = _degrade(lambda data, timeout: list(data))(RedisCacheClient.set_many)
    delete_many = _degrade(lambda keys: None)(RedisCacheClient.delete_many)
    clear = _degrade(lambda: False)(RedisCacheClient.clear)

    def ping(self):
        """Return whether Redis answers; after an outage, announce its end first."""
        try:
            self.get_client(write=True).ping()
        except RedisError as error:
            outage.failed(error, self)
            return False
        outage.succeeded()
        return True


class ResilientRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` that survives Redis outages."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _Client

    def ping(self):
        return self._cache.ping()


class CacheVersion:
    """A version that cached entries are keyed by: bumping it drops them all.

    ``invalidate()`` bumps it now and again once the transaction commits (a
    request reading in between must not keep old data under the new version),
    and every version starts afresh when the cache comes back after an outage
    (the invalidations made meanwhile never reached it).
    """

    def __init__(self, key):
        self.key = key
        cache_reconnected.connect(self._start_afresh, weak=False, dispatch_uid=key)

    def current(self):
        version = cache.get(self.key)
        if version is None:
            version = uuid4().hex
            cache.add(self.key, version, None)
            version = cache.get(self.key, version)
        return version

    def bump(self):
        cache.set(self.key, uuid4().hex, None)

    def invalidate(self):
        self.bump()
        transaction.on_commit(self.bump)

    def _start_afresh(self, **kwargs):
        self.bump()
