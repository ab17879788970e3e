"""Where an uploaded import waits between its preview and its confirmation.

The confirm step names the upload in a form field, so it is untrusted: only
files this app wrote, in its own folder, can be confirmed. The confirm claims
the upload atomically before reading it, so a double click (two confirms at
once) imports the file once; the second is told so.
"""

import os
import re
import tempfile
from contextlib import suppress
from pathlib import Path

from django.core.cache import cache
from import_export.tmp_storages import CacheStorage, TempFolderStorage

UPLOAD_DIR = Path(tempfile.gettempdir()) / "crm-imports"
UPLOAD_NAME = re.compile(r"crm-import-[A-Za-z0-9_]+")
CLAIMED = ".confirmed"


class ImportFileGone(Exception):
    """The upload to confirm is gone: imported already, expired or never there."""


class FolderStorage(TempFolderStorage):
    """A file in the app's temp folder: enough for one server."""

    written_here = False

    def save(self, data):
        if isinstance(data, str):
            data = data.encode(self.encoding or "utf-8")
        UPLOAD_DIR.mkdir(mode=0o700, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=UPLOAD_DIR, prefix="crm-import-", delete=False
        ) as file:
            file.write(data)
        self.name = os.path.basename(file.name)
        self.written_here = True  # the preview reads back what it wrote

    def get_full_path(self):
        name = os.path.basename(self.name or "")
        if not UPLOAD_NAME.fullmatch(name.removesuffix(CLAIMED)):
            raise ImportFileGone  # not a name this app gave an upload
        return str(UPLOAD_DIR / name)

    def read(self):
        if not self.written_here:
            self._claim()
        try:
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


class SharedCacheStorage(CacheStorage):
    """The shared cache (Redis): the confirm may land on another worker."""

    written_here = False

    def save(self, data):
        super().save(data)
        self.written_here = True

    def read(self):
        claim = f"{self.CACHE_PREFIX}{self.name}:confirmed"
        # cache.add() is atomic (SET NX on Redis): one confirm wins the claim.
        if not self.written_here and not cache.add(claim, True, self.CACHE_LIFETIME):
            raise ImportFileGone
        data = super().read()
        if data is None:
            raise ImportFileGone
        return data
