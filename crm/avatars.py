"""Avatar images: what is accepted, how it is stored, when its file goes."""

# An upload is trusted for nothing: its name, its extension and its bytes past
# the image are all dropped. Only PNG, JPEG, GIF and WebP are decoded (no other
# Pillow plugin is tried, so EPS never reaches Ghostscript), and what is stored
# is a fresh encoding of the pixels under a random name: EXIF (GPS included),
# comments and polyglot payloads do not survive.

import io
import warnings
from functools import partial
from uuid import uuid4

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

#: Pillow format -> file extension of what we store.
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}
#: The content types the media view serves inline.
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

NOT_AN_IMAGE = "Upload a PNG, JPEG, GIF or WebP image."


def _too_large():
    return ValidationError(
        "The image is larger than %(limit)d MB.",
        code="avatar_too_large",
        params={"limit": settings.CRM_AVATAR_MAX_BYTES // (1024 * 1024)},
    )


def _too_many_pixels():
    return ValidationError(
        "The image has more than %(limit)d megapixels.",
        code="avatar_too_many_pixels",
        params={"limit": settings.CRM_AVATAR_MAX_PIXELS // 1_000_000},
    )


def _open(data):
    """Return the decoded first frame of ``data``; raise ValidationError if not ours."""
    with warnings.catch_warnings():
        # Pillow warns between its own limit and twice that; ours is lower.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
        except Image.DecompressionBombError:
            raise _too_many_pixels() from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise ValidationError(NOT_AN_IMAGE, code="invalid_image") from None
        width, height = image.size
        if width * height > settings.CRM_AVATAR_MAX_PIXELS:
            raise _too_many_pixels()
        try:
            image.seek(0)
            image.load()  # a truncated or corrupt file fails here
        except Exception:  # Pillow raises many kinds for bad data
            raise ValidationError(NOT_AN_IMAGE, code="invalid_image") from None
    return image


def _read(file):
    if file.size is not None and file.size > settings.CRM_AVATAR_MAX_BYTES:
        raise _too_large()
    file.seek(0)
    data = file.read(settings.CRM_AVATAR_MAX_BYTES + 1)
    file.seek(0)
    if len(data) > settings.CRM_AVATAR_MAX_BYTES:
        raise _too_large()
    return data


def check_avatar(file):
    """Return the upload's Pillow format; raise ValidationError when it is refused."""
    checked = getattr(file, "_crm_avatar_format", None)
    if checked is None:
        checked = _open(_read(file)).format
        file._crm_avatar_format = checked  # the form and the model both ask
    return checked


def reencode_avatar(file):
    """Return ``(content, extension)``: the upload's pixels, freshly encoded."""
    image = _open(_read(file))
    fmt = image.format
    if fmt == "JPEG":
        image = ImageOps.exif_transpose(image)  # keep it upright without EXIF
    options = {}
    if icc := image.info.get("icc_profile"):
        options["icc_profile"] = icc  # colours, not metadata
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        options["quality"] = 90
    elif fmt == "WEBP":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        options["quality"] = 90
    elif fmt == "GIF" and image.mode not in ("P", "L"):
        image = image.convert("P")
    # Encoders copy some metadata (JPEG and GIF comments) from here: keep only
    # what the pixels need.
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    output = io.BytesIO()
    image.save(output, fmt, **options)
    return ContentFile(output.getvalue()), FORMATS[fmt]


def random_name(extension):
    return f"{uuid4().hex}{extension}"


def delete_when_unused(name, *, model, field="avatar", storage=None):
    """Delete the stored file ``name`` after the commit, unless a row still uses it."""
    if not name:
        return
    transaction.on_commit(
        partial(_delete_if_unused, name, model, field, storage or default_storage)
    )


def _delete_if_unused(name, model, field, storage):
    from .models import MergeRecord

    # A merge hands a merged client's avatar to the survivor: keep it then;
    # and keep a merged client's own while the merge can be undone.
    if model._default_manager.filter(**{field: name}).exists():
        return
    if MergeRecord.objects.filter(undone_at=None, files__contains=name).exists():
        return
    storage.delete(name)
