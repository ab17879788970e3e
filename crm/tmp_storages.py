"""Where an uploaded import waits between its preview and its confirmation.

The confirm step claims the upload atomically before reading it, so a double
click (two confirms at once) imports the file once; the second is told so.
"""

import os
import tempfile
from contextlib import suppress

from django.core.cache import cache
from import_export.tmp_storages import CacheStorage, TempFolderStorage


class ImportFileGone(Exception):
    """The upload to confirm is gone: imported already, expired or never there."""


class FolderStorage(TempFolderStorage):
    """A file in the temp folder: enough for one server."""

    written_here = False

    def save(self, data):
        super().save(data)
        self.written_here = True  # the preview reads back what it wrote

    def read(self):
        if not self.written_here:
            self._claim()
        try:
            return super().read()
        except FileNotFoundError:
            raise ImportFileGone from None

    def remove(self):
        with suppress(FileNotFoundError):
            super().remove()

    def _claim(self):
        claimed = f"{os.path.basename(self.name or '')}.confirmed"
        try:
            # rename() is atomic: of two confirms, exactly one gets the file.
            os.rename(
                self.get_full_path(), os.path.join(tempfile.gettempdir(), claimed)
            )
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ImportFileGone from None
        self.name = claimed


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
