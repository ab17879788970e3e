import io
import re
import struct
import zlib

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from PIL import Image

from crm.models import Client
from crm.services import client_merge

from .conftest import image_upload

pytestmark = pytest.mark.django_db

ADD = reverse("clients:add")
STORED_NAME = re.compile(r"avatars/[0-9a-f]{32}\.(png|jpg|gif|webp)")


def upload(name, data, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type)


def image_bytes(fmt, size=(12, 8), **save_options):
    buffer = io.BytesIO()
    mode = "P" if fmt == "GIF" else "RGB"
    Image.new(mode, size, 3 if mode == "P" else "teal").save(
        buffer, fmt, **save_options
    )
    return buffer.getvalue()


def jpeg_with_gps_and_comment():
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0112] = 6  # Orientation: rotated, which the stored pixels apply
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    return image_bytes("JPEG", exif=exif.tobytes(), comment=b"secret comment")


def png_bomb(width=100_000, height=100_000):
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    b"newpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"
)
POLYGLOT = image_bytes("GIF") + (
    b"\n%PDF-1.4\n1 0 obj << /Type /Catalog /OpenAction 2 0 R >> endobj\n"
    b"2 0 obj << /S /JavaScript /JS (app.alert('pwned')) >> endobj\n%%EOF\n"
)


def post(http, avatar, **fields):
    data = {"name": "Ann", "email": "ann@mail.test", "phone": "", "avatar": avatar}
    data.update(fields)
    return http.post(ADD, data)


def stored_bytes(client):
    with default_storage.open(client.avatar.name) as file:
        return file.read()


@pytest.mark.parametrize(
    ("fmt", "extension"),
    [("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("WEBP", "webp")],
)
def test_the_four_formats_are_stored_reencoded_under_a_random_name(
    logged_in, fmt, extension
):
    response = post(logged_in, upload(f"my photo.{extension}", image_bytes(fmt)))
    assert response.status_code == 302
    client = Client.objects.get()
    assert STORED_NAME.fullmatch(client.avatar.name)
    assert client.avatar.name.endswith(f".{extension}")
    assert "photo" not in client.avatar.name
    with Image.open(io.BytesIO(stored_bytes(client))) as image:
        assert (image.format, image.size) == (fmt, (12, 8))


def test_exif_gps_and_comments_are_dropped_and_the_photo_stays_upright(logged_in):
    data = jpeg_with_gps_and_comment()
    with Image.open(io.BytesIO(data)) as original:
        assert original.getexif().get_ifd(0x8825)  # the upload has GPS
    post(logged_in, upload("gps.jpg", data))
    stored = stored_bytes(Client.objects.get())
    with Image.open(io.BytesIO(stored)) as image:
        assert not image.getexif()
        assert "comment" not in image.info
        assert image.size == (8, 12)  # the orientation was applied
    assert b"SpyCam" not in stored and b"secret comment" not in stored


def test_png_text_chunks_are_dropped(logged_in):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    post(logged_in, upload("t.png", image_bytes("PNG", pnginfo=info)))
    assert b"<script>" not in stored_bytes(Client.objects.get())


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("drawing.eps", EPS),
        ("drawing.png", EPS),
        ("doc.pdf", b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"),
        ("page.html", b"<html><script>alert(1)</script></html>"),
        (
            "icon.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>',
        ),
        ("old.bmp", image_bytes("BMP")),
        ("cut.png", image_bytes("PNG", size=(300, 300))[:120]),
        ("empty.png", b""),
    ],
)
def test_anything_but_png_jpeg_gif_webp_is_a_field_error(logged_in, name, data):
    response = post(logged_in, upload(name, data))
    assert response.status_code == 200
    errors = response.context["form"].errors["avatar"]
    assert errors and ("PNG, JPEG, GIF or WebP" in errors[0] or "empty" in errors[0])
    assert not Client.objects.exists()


@pytest.mark.parametrize("name", ["renamed.pdf", "renamed.txt", "no-extension"])
def test_a_gif_under_another_name_is_stored_as_a_gif(logged_in, name):
    post(logged_in, upload(name, image_bytes("GIF")))
    assert Client.objects.get().avatar.name.endswith(".gif")


def test_a_gif_pdf_polyglot_keeps_only_the_picture(logged_in):
    post(logged_in, upload("poly.gif", POLYGLOT))
    stored = stored_bytes(Client.objects.get())
    assert b"%PDF" not in stored and b"JavaScript" not in stored


@pytest.mark.parametrize("size", [(100_000, 100_000), (20_000, 10_000), (9_000, 5_000)])
def test_a_decompression_bomb_gets_the_megapixel_message(logged_in, size):
    response = post(logged_in, upload("bomb.png", png_bomb(*size)))
    assert response.status_code == 200
    [error] = response.context["form"].errors["avatar"]
    assert "more than 40 megapixels" in error
    assert not Client.objects.exists()


def test_the_model_refuses_what_the_form_refuses():
    from django.core.exceptions import ValidationError

    client = Client(
        name="M", email="m@mail.test", avatar=upload("bomb.png", png_bomb())
    )
    with pytest.raises(ValidationError) as error:
        client.full_clean()
    assert "megapixels" in error.value.message_dict["avatar"][0]


# Files go when their client or avatar goes ----------------------------------------


def test_deleting_a_client_deletes_its_file_after_the_commit(
    make_client, django_capture_on_commit_callbacks
):
    client = make_client(avatar=image_upload())
    name = client.avatar.name
    with django_capture_on_commit_callbacks(execute=False) as pending:
        client.delete()
    assert default_storage.exists(name)  # not before the commit
    for callback in pending:
        callback()
    assert not default_storage.exists(name)


def test_a_rolled_back_delete_keeps_the_file(make_client):
    client = make_client(avatar=image_upload())
    name = client.avatar.name
    with pytest.raises(RuntimeError), transaction.atomic():
        Client.objects.filter(pk=client.pk).delete()
        raise RuntimeError
    assert default_storage.exists(name)


@pytest.mark.parametrize("new_avatar", ["replace", "clear"])
def test_replacing_or_clearing_an_avatar_deletes_the_old_file(
    logged_in, make_client, django_capture_on_commit_callbacks, new_avatar
):
    client = make_client(name="Ann", email="ann@mail.test", avatar=image_upload())
    old = client.avatar.name
    data = {"name": "Ann", "email": "ann@mail.test", "phone": ""}
    if new_avatar == "replace":
        data["avatar"] = image_upload("new.png")
    else:
        data["avatar-clear"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in.post(reverse("clients:edit", args=[client.pk]), data)
    assert response.status_code == 302
    client.refresh_from_db()
    assert not default_storage.exists(old)
    if new_avatar == "replace":
        assert client.avatar.name != old and default_storage.exists(client.avatar.name)
    else:
        assert not client.avatar


def test_saving_without_touching_the_avatar_keeps_the_file(
    make_client, django_capture_on_commit_callbacks
):
    client = make_client(avatar=image_upload())
    client = Client.objects.get(pk=client.pk)
    with django_capture_on_commit_callbacks(execute=True):
        client.name = "Renamed"
        client.save()
        Client.objects.get(pk=client.pk).save(update_fields=["name"])
    assert default_storage.exists(client.avatar.name)


def test_a_merge_keeps_the_file_the_survivor_inherits(
    make_client, admin_user, django_capture_on_commit_callbacks
):
    survivor = make_client(name="Keep")
    donor = make_client(name="Gone", avatar=image_upload())
    name = donor.avatar.name
    with django_capture_on_commit_callbacks(execute=True):
        client_merge(survivor=survivor, others=[donor], user=admin_user)
    survivor.refresh_from_db()
    assert survivor.avatar.name == name
    assert default_storage.exists(name)


# Served to logged-in users only ----------------------------------------------------


def test_avatars_are_served_to_logged_in_users_with_safe_headers(
    logged_in, make_client
):
    client = make_client(avatar=image_upload())
    response = logged_in.get(client.avatar.url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


@pytest.mark.parametrize("debug", [True, False])
def test_avatars_are_not_served_to_anonymous_visitors(
    client, make_client, settings, debug
):
    settings.DEBUG = debug
    avatar = make_client(avatar=image_upload()).avatar
    response = client.get(avatar.url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_file_stored_before_reencoding_is_only_ever_a_download(logged_in):
    default_storage.save("avatars/old.pdf", io.BytesIO(b"%PDF-1.4 /JavaScript"))
    response = logged_in.get("/media/avatars/old.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize(
    "path",
    [
        "/media/avatars/missing.png",
        "/media/../crm_site/settings.py",
        "/media/avatars/../../crm_site/settings.py",
        "/media/%2e%2e/crm_site/settings.py",
        "/media/avatars/",
        "/media/avatars/a%00.png",
        "/media/" + "a/" * 3000 + "a.png",
        "/media/" + "a" * 5000 + ".png",
        "/media//etc/passwd",
    ],
)
def test_media_outside_or_missing_is_not_found(logged_in, path):
    assert logged_in.get(path).status_code in (400, 404)
