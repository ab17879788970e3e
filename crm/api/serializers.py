"""The API's representations of clients and orders.

Every rule comes from the model layer: a write builds the instance it would
save and runs ``full_clean()`` (field validators, normalization, the
case-insensitive unique email, blocked domains), so the API, the admin, the
public pages and CSV import refuse the same things with the same messages.
"""

import copy
from collections.abc import Mapping

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from ..admin.merge import MAX_CLIENTS
from ..models import Client, Order
from .filters import MAX_ID

UNKNOWN_FIELD = "Unknown field."


@extend_schema_field(OpenApiTypes.EMAIL)
class EmailField(serializers.CharField):
    """An email as typed: the model normalizes it, then checks it."""


class ModelCheckedSerializer(serializers.ModelSerializer):
    """A ModelSerializer that leaves validation to the model's ``full_clean()``.

    An unknown field is an error (a typo must not be dropped without a word);
    read-only fields sent back from a GET are ignored.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {str(name)[:100]: [UNKNOWN_FIELD] for name in unknown}
                )
        return super().to_internal_value(data)

    def validate(self, attrs):
        instance = copy.copy(self.instance) if self.instance else self.Meta.model()
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as error:
            errors = error.update_error_dict({})
            if NON_FIELD_ERRORS in errors:
                errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop(NON_FIELD_ERRORS)
            raise DjangoValidationError(errors) from None
        # The values as the model cleaned them (a normalized email, phone).
        return {name: getattr(instance, name) for name in attrs}


class ClientSerializer(ModelCheckedSerializer):
    email = EmailField(max_length=254)
    # Separators go before the model checks the length (``+44 20 7946 0958``).
    phone = serializers.CharField(max_length=40, allow_blank=True, required=False)
    avatar = serializers.ImageField(
        read_only=True, help_text="The avatar's URL, or null. Upload it in the admin."
    )
    order_count = serializers.IntegerField(read_only=True)
    total_amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, read_only=True
    )

    class Meta:
        model = Client
        fields = (
            "id",
            "name",
            "email",
            "phone",
            "vip",
            "avatar",
            "created_at",
            "updated_at",
            "order_count",
            "total_amount",
        )
        extra_kwargs = {"name": {"validators": []}}


class OrderSerializer(ModelCheckedSerializer):
    client_email = serializers.CharField(source="client.email", read_only=True)

    class Meta:
        model = Order
        fields = (
            "id",
            "client",
            "client_email",
            "title",
            "amount",
            "status",
            "created_at",
        )


class IdField(serializers.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class MergeSerializer(serializers.Serializer):
    survivor = IdField(help_text="The id of the client to keep.")
    others = serializers.ListField(
        child=IdField(),
        allow_empty=False,
        max_length=MAX_CLIENTS - 1,
        help_text="The ids of the clients merged into the survivor, then deleted.",
    )

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {str(name)[:100]: [UNKNOWN_FIELD] for name in unknown}
                )
        return super().to_internal_value(data)


class MergeResultSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What the merge did.")
    survivor = ClientSerializer()
    merged = serializers.ListField(child=serializers.IntegerField())
    orders_moved = serializers.IntegerField()
