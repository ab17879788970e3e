"""The rules a client's values obey, once: text, email, phone, avatar, duplicate keys.

Model fields, forms, the CSV import and the API all call these.
"""

import re
import unicodedata
from functools import lru_cache

from django.conf import settings
from django.core import validators
from django.core.exceptions import ValidationError

from . import avatars

# Text ------------------------------------------------------------------------

#: Bidi controls (U+202A-U+202E, U+2066-U+2069) reverse or hide text, and
#: zero-width spaces make two names look alike; ZWJ/ZWNJ stay (names, emoji).
HIDDEN_CHARACTERS = frozenset(
    [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
    + ["\u200b", "\u2060", "\ufeff"]
)
# Marks, separators and format/control characters draw nothing on their own;
# these letters and symbols are blank too (Hangul fillers, Braille blank).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def validate_no_hidden_characters(value):
    """Refuse bidi controls and zero-width spaces."""
    if HIDDEN_CHARACTERS.isdisjoint(value):
        return
    found = sorted({char for char in value if char in HIDDEN_CHARACTERS})
    if found:
        raise ValidationError(
            "Remove the invisible or text-direction characters (%(characters)s).",
            code="hidden_characters",
            params={"characters": ", ".join(f"U+{ord(c):04X}" for c in found)},
        )


def _is_visible(char):
    category = unicodedata.category(char)
    return not (
        category in _INVISIBLE_CATEGORIES
        or category in ("Mn", "Me")
        or char in _BLANK_GLYPHS
    )


def validate_visible(value):
    """Refuse text that shows as nothing."""
    if value and not any(_is_visible(char) for char in value):
        raise ValidationError("Enter at least one visible character.", code="invisible")


# Email -------------------------------------------------------------------------


def normalize_domain(domain):
    """Return a domain the way it is stored and compared.

    NFKC (full-width letters become ASCII), lowercase, and each punycode
    (``xn--``) label in its Unicode form, decoded with Python's ``idna`` codec.
    A label that does not decode is kept as it is (``validate_domain_decodes``
    reports it).
    """
    labels = unicodedata.normalize("NFKC", domain).strip().lower().split(".")
    for index, label in enumerate(labels):
        if label.startswith("xn--"):
            try:
                decoded = label.encode("ascii").decode("idna")
            except UnicodeError:
                continue
            labels[index] = unicodedata.normalize("NFKC", decoded).lower()
    return ".".join(labels)


def normalize_email(value):
    """Return an email address the way it is stored and compared ('' for none).

    Trimmed, NFKC of the whole address, lowercase, the domain in its Unicode
    form (``normalize_domain``). Every rule and every lookup uses this.
    """
    if not isinstance(value, str):
        return ""
    return _normalize_email(value)


@lru_cache(maxsize=4096)
def _normalize_email(value):
    # Every write path normalizes an address several times (the form or CSV
    # cell, full_clean, the key, the save, the lookup): the first time is enough.
    value = unicodedata.normalize("NFKC", value).strip().lower()
    local, at, domain = value.rpartition("@")
    return f"{local}@{normalize_domain(domain)}" if at else value


class EmailValidator(validators.EmailValidator):
    """Django's email check with its patterns compiled once (three times faster)."""


for _name in ("user_regex", "domain_regex", "literal_regex"):
    _lazy = getattr(validators.EmailValidator, _name)
    setattr(EmailValidator, _name, re.compile(_lazy.pattern, _lazy.flags))

validate_email = EmailValidator()


def email_domain(email):
    """Return the normalized domain of an email address ('' if it has none)."""
    email = normalize_email(email)
    return email.rpartition("@")[2] if "@" in email else ""


def _domains(names):
    return _normalized_domains(tuple(names))


@lru_cache(maxsize=64)
def _normalized_domains(names):
    # Asked for on every row of an import; the settings hold a handful.
    return frozenset(normalize_domain(name) for name in names)


def is_blocked_email(email):
    return email_domain(email) in _domains(settings.CRM_BLOCKED_EMAIL_DOMAINS)


def is_vip_email(email):
    return email_domain(email) in _domains(settings.CRM_VIP_EMAIL_DOMAINS)


def validate_email_domain_allowed(value):
    if is_blocked_email(value):
        raise ValidationError(
            "Email addresses at %(domain)s are not accepted.",
            code="blocked_domain",
            params={"domain": email_domain(value)},
        )


def validate_domain_decodes(value):
    """Refuse a punycode (``xn--``) label that is not valid punycode."""
    for label in email_domain(value).split("."):
        if label.startswith("xn--"):
            raise ValidationError(
                "“%(label)s” is not a valid internationalized domain name.",
                code="invalid_idn",
                params={"label": label},
            )


# Phone -------------------------------------------------------------------------

#: What people type between digits: spaces (any kind), dots, dashes, brackets
#: and slashes.
PHONE_SEPARATORS = re.compile(r"[\s.\-()/]+")


class RegexValidator(validators.RegexValidator):
    """Django's RegexValidator with its pattern compiled now, not on first use.

    Reading a lazily compiled pattern costs more than matching it, on every
    row of an import.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.regex = re.compile(self.regex.pattern, self.regex.flags)


validate_phone = RegexValidator(
    r"\A(\+?[0-9]+)?\Z",
    "Enter a phone number: digits, optionally after a leading +.",
    code="invalid_phone",
)


def normalize_phone(value):
    """Return a phone number without visual separators (``+44 20`` -> ``+4420``)."""
    return PHONE_SEPARATORS.sub("", value) if isinstance(value, str) else value


# Avatar ------------------------------------------------------------------------


def validate_avatar(value):
    """Accept only PNG, JPEG, GIF and WebP within the size and pixel limits."""
    if getattr(value, "_committed", True):
        return  # already stored: it was checked when it was uploaded
    avatars.check_avatar(value)


# Duplicate keys ----------------------------------------------------------------


def name_key(name):
    """Return a name as duplicates compare it: no case, accents or spacing."""
    if not isinstance(name, str):
        return ""
    if name.isascii():
        return "".join(name.lower().split())[:255]  # no accents to take off
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(letters.casefold().split())[:255]


_NOT_DIGITS = re.compile(r"[^0-9]+")


def phone_key(phone):
    """Return a phone number as duplicates compare it: its digits, ``00`` = ``+``."""
    text = normalize_phone(phone or "")
    if text.isascii():
        digits = _NOT_DIGITS.sub("", text)
    else:
        digits = "".join(c for c in text if c.isdigit())
    if (phone or "").strip().startswith("00") or digits.startswith("00"):
        digits = digits[2:]
    return digits


def email_key(email):
    """Return an email as duplicates compare it: normalized, without ``+tag``."""
    email = normalize_email(email)
    local, at, domain = email.rpartition("@")
    if not at:
        return email
    return f"{local.partition('+')[0] or local}@{domain}"
