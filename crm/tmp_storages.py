"""Where an uploaded import waits between its preview and its confirmation."""

from import_export.tmp_storages import CacheStorage, TempFolderStorage


class ImportFileGone(Exception):
    """The upload to confirm is gone: imported already, expired or never there."""


class FolderStorage(TempFolderStorage):
    """A file in the temp folder: enough for one server."""

    def read(self):
        try:
            return super().read()
        except FileNotFoundError:
            raise ImportFileGone from None


class SharedCacheStorage(CacheStorage):
    """The shared cache (Redis): the confirm may land on another worker."""

    def read(self):
        data = super().read()
        if data is None:
            raise ImportFileGone
        return data
