"""Where an uploaded import waits between its preview and its confirmation."""

# The confirm step names the upload in a form field, so it is untrusted: only
# files this app wrote, in its own folder, can be confirmed. The confirm claims
# the upload atomically before reading it, so a double click (two confirms at
# once) imports the file once; the second is told so. Uploads are deleted when
# imported or refused, and after CRM_IMPORT_UPLOAD_MAX_AGE seconds in any case.
# The errors CSV of a preview waits here too, readable by its owner only.

import os
import re
import secrets
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from import_export.tmp_storages import CacheStorage, TempFolderStorage

from .files import ImportFileError

UPLOAD_NAME = re.compile(r"crm-import-[A-Za-z0-9_]+")
CACHE_NAME = re.compile(r"[0-9a-f]{32}")  # what CacheStorage names an upload
ERRORS_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
CLAIMED = ".confirmed"


class ImportFileGone(Exception):
    """The upload to confirm is gone: imported already, expired or never there."""


UPLOADS_AWAY = (
    "Imports are unavailable right now: the shared cache (Redis) that keeps an "
    "upload between its preview and its confirmation cannot be reached. Nothing "
    "was imported; try again in a minute."
)


def upload_dir():
    """Return this deployment's upload folder, created private if missing."""
    folder = Path(settings.CRM_IMPORT_UPLOAD_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def sweep(folder, max_age):
    """Delete the files in ``folder`` older than ``max_age`` seconds."""
    oldest = time.time() - max_age
    for entry in os.scandir(folder):
        with suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < oldest:
                os.remove(entry.path)


class FolderStorage(TempFolderStorage):
    """A file in the deployment's upload folder: enough for one server."""

    written_here = False

    def save(self, data):
        if isinstance(data, str):
            data = data.encode(self.encoding or "utf-8")
        folder = upload_dir()
        sweep(folder, settings.CRM_IMPORT_UPLOAD_MAX_AGE)
        with tempfile.NamedTemporaryFile(
            dir=folder, prefix="crm-import-", delete=False
        ) as file:
            file.write(data)
        self.name = os.path.basename(file.name)
        self.written_here = True  # the preview reads back what it wrote

    def get_full_path(self):
        name = os.path.basename(self.name or "")
        if not UPLOAD_NAME.fullmatch(name.removesuffix(CLAIMED)):
            raise ImportFileGone  # not a name this app gave an upload
        return str(upload_dir() / name)

    def read(self):
        if not self.written_here:
            self._claim()
        try:
            if time.time() - os.path.getmtime(self.get_full_path()) > (
                settings.CRM_IMPORT_UPLOAD_MAX_AGE
            ):
                self.remove()
                raise ImportFileGone  # expired, even if not swept yet
            return super().read()
        except FileNotFoundError:
            raise ImportFileGone from None

    def remove(self):
        with suppress(FileNotFoundError, ImportFileGone):
            super().remove()

    def _claim(self):
        if self.name.endswith(CLAIMED):
            raise ImportFileGone
        source = self.get_full_path()
        try:
            # rename() is atomic: of two confirms, exactly one gets the file.
            os.rename(source, source + CLAIMED)
        except OSError:
            raise ImportFileGone from None
        self.name += CLAIMED

    @staticmethod
    def save_errors(owner, text):
        token = secrets.token_urlsafe(24)
        folder = upload_dir()
        (folder / f"crm-errors-{owner}-{token}.csv").write_text(text, "utf-8")
        return token

    @staticmethod
    def read_errors(owner, token):
        if not ERRORS_TOKEN.fullmatch(token):
            return None
        try:
            return (upload_dir() / f"crm-errors-{owner}-{token}.csv").read_text("utf-8")
        except OSError:
            return None


class SharedCacheStorage(CacheStorage):
    """The shared cache (Redis): the confirm may land on another worker."""

    written_here = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.CACHE_LIFETIME = settings.CRM_IMPORT_UPLOAD_MAX_AGE

    def save(self, data):
        super().save(data)
        self.written_here = True
        # A write that never reached Redis is reported when the preview reads.
        self.lost = not cache.touch(self.CACHE_PREFIX + self.name, self.CACHE_LIFETIME)

    def remove(self):
        if CACHE_NAME.fullmatch(self.name or ""):
            super().remove()

    def read(self):
        if getattr(self, "lost", False):
            raise ImportFileError(UPLOADS_AWAY)
        if not CACHE_NAME.fullmatch(self.name or ""):
            raise ImportFileGone  # not a name this app gave an upload
        claim = f"{self.CACHE_PREFIX}{self.name}:confirmed"
        # cache.add() is atomic (SET NX on Redis): one confirm wins the claim.
        if not self.written_here and not cache.add(claim, True, self.CACHE_LIFETIME):
            raise ImportFileGone
        data = super().read()
        if data is None:
            raise ImportFileGone
        return data

    @staticmethod
    def save_errors(owner, text):
        token = secrets.token_urlsafe(24)
        cache.set(
            f"crm-import-errors:{owner}:{token}",
            text,
            settings.CRM_IMPORT_UPLOAD_MAX_AGE,
        )
        return token

    @staticmethod
    def read_errors(owner, token):
        if not ERRORS_TOKEN.fullmatch(token):
            return None
        return cache.get(f"crm-import-errors:{owner}:{token}")
