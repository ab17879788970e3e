"""Model and form fields that store a client's values the way the rules want them."""

from django import forms
from django.db import models

from . import avatars
from .rules import (
    normalize_email,
    normalize_phone,
    validate_domain_decodes,
    validate_email,
    validate_no_hidden_characters,
    validate_phone,
)

# Fields ------------------------------------------------------------------------


class NormalizingField:
    """A model field mixin: its value goes through ``normalize`` on every write path.

    ``to_python`` covers forms and ``full_clean``, ``pre_save`` covers
    ``save()`` and ``bulk_create``, and ``get_prep_value`` covers
    ``update()``, ``bulk_update`` and lookups.
    """

    normalize = staticmethod(lambda value: value)

    def to_python(self, value):
        value = super().to_python(value)
        return self.normalize(value) if isinstance(value, str) else value

    def pre_save(self, model_instance, add):
        value = self.to_python(getattr(model_instance, self.attname))
        setattr(model_instance, self.attname, value)
        return value

    def get_prep_value(self, value):
        return self.to_python(super().get_prep_value(value))


class EmailFormField(forms.EmailField):
    """A form's email field that checks the address as it will be stored."""

    default_validators = [
        validate_no_hidden_characters,
        validate_email,
        validate_domain_decodes,
    ]

    def to_python(self, value):
        value = super().to_python(value)
        return normalize_email(value) if value else value


class LowercaseEmailField(NormalizingField, models.EmailField):
    """An EmailField stored normalized (``normalize_email``) on every write path.

    (Named for what it first did: migrations refer to it by this name.)
    """

    default_validators = [
        validate_no_hidden_characters,
        validate_email,
        validate_domain_decodes,
    ]
    normalize = staticmethod(normalize_email)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": EmailFormField, **kwargs})


class PhoneFormField(forms.CharField):
    """A form's phone field: separators go before the length is checked."""

    def __init__(self, *, max_length=None, **kwargs):
        # The model checks the length of what remains; the browser only caps
        # what can be typed, separators included.
        super().__init__(**kwargs)
        if max_length:
            self.widget.attrs.setdefault("maxlength", str(max_length * 2))

    def to_python(self, value):
        return normalize_phone(super().to_python(value))


class PhoneField(NormalizingField, models.CharField):
    """A phone number stored without separators: an optional ``+`` and digits."""

    default_validators = [validate_phone]
    normalize = staticmethod(normalize_phone)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": PhoneFormField, **kwargs})


class AvatarFormField(forms.ImageField):
    """A form's avatar field with the model's image rules and messages."""

    default_validators = []  # the content decides, not the file name

    def to_python(self, data):
        file = forms.FileField.to_python(self, data)
        if file is not None:
            avatars.check_avatar(file)
        return file


class AvatarField(models.ImageField):
    """An image stored re-encoded under a random name (see ``crm.avatars``)."""

    default_validators = []  # the content decides, not the file name

    def pre_save(self, model_instance, add):
        file = getattr(model_instance, self.attname)
        if file and not file._committed:
            content, extension = avatars.reencode_avatar(file)
            file.save(avatars.random_name(extension), content, save=False)
        return super().pre_save(model_instance, add)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": AvatarFormField, **kwargs})


class KeyField(models.CharField):
    """A column derived from another field on every save (``save``, ``bulk_create``).

    Indexed so that "Possible duplicates" groups clients without a scan.
    ``QuerySet.update()`` and raw SQL must set it themselves
    (``Client.refresh_keys``).
    """

    def __init__(self, *args, source=None, function=None, **kwargs):
        self.source, self.function = source, function
        kwargs.setdefault("max_length", 255)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        # Raw SQL that does not know the column still inserts (key left blank).
        kwargs.setdefault("db_default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        # Migrations see a plain column: they fill it themselves (0008).
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs

    def pre_save(self, model_instance, add):
        if self.function is not None:
            value = self.function(getattr(model_instance, self.source))
            setattr(model_instance, self.attname, value)
        return getattr(model_instance, self.attname)
