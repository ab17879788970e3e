import pytest


@pytest.mark.parametrize("storage", ["FolderStorage", "SharedCacheStorage"])
def test_two_confirms_of_one_upload_claim_it_once(storage):
    from crm.spreadsheets import storage as tmp_storages

    cls = getattr(tmp_storages, storage)
    preview = cls(encoding="utf-8")
    preview.save(b"name,email\r\n")
    assert "name,email" in str(preview.read())  # the preview reads its own upload
    name = preview.name
    first, second = cls(name=name, encoding="utf-8"), cls(name=name, encoding="utf-8")
    assert "name,email" in str(first.read())
    with pytest.raises(tmp_storages.ImportFileGone):
        second.read()
    first.remove()
