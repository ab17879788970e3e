"""The API's endpoints: clients (with merge) and orders."""

import hashlib
import logging

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action, api_view, permission_classes, schema
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from ..caching import client_list_version
from ..models import CLIENT_HAS_ORDERS, EMAIL_TAKEN_MESSAGE, Client, Order
from ..services import MergeError, client_merge
from .filters import ClientFilter, OrderFilter
from .schema import VALIDATION_ERROR
from .serializers import (
    ClientSerializer,
    MergeResultSerializer,
    MergeSerializer,
    OrderSerializer,
)

logger = logging.getLogger(__name__)


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
@schema(None)
def not_found(request, *args, **kwargs):
    """Answer an unknown API URL as DRF answers a missing row."""
    raise NotFound


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the data as it is."
    default_code = "conflict"


#: Seconds a list page stays cached (any client or order change drops it sooner).
LIST_CACHE_SECONDS = 60


class CrmViewSet(viewsets.ModelViewSet):
    """A ModelViewSet with cached list pages; writes answer with the row as read."""

    def list(self, request, *args, **kwargs):
        # Pages are cached under the client data's version, as the public
        # client list is (crm/caching.py): any client or order change, on any
        # path, makes the next request read the database. The full URL is in
        # the key: the query, and the host that next/avatar links are built on.
        url = hashlib.sha256(request.build_absolute_uri().encode()).hexdigest()
        key = f"crm:api:{client_list_version()}:{self.basename}:{url}"
        data = cache.get(key)
        if data is None:
            response = super().list(request, *args, **kwargs)
            cache.set(key, response.data, LIST_CACHE_SECONDS)
            return response
        return Response(data)

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer)

    def _save(self, serializer):
        try:
            with transaction.atomic():
                instance = serializer.save()
        except IntegrityError:
            # Another request saved the same email between validation and save.
            if not self.is_duplicate_email(serializer):
                raise
            raise ValidationError({"email": [EMAIL_TAKEN_MESSAGE]}) from None
        # Re-read through the list's queryset: its computed columns.
        serializer.instance = self.get_queryset().get(pk=instance.pk)

    def is_duplicate_email(self, serializer):
        return False


class ClientViewSet(CrmViewSet):
    """Clients, with their order count and total (the admin's numbers)."""

    queryset = Client.objects.with_order_totals()
    serializer_class = ClientSerializer
    filterset_class = ClientFilter
    action_permissions = {"merge": ("crm.change_client", "crm.delete_client")}
    conflict_on_delete = True

    def is_duplicate_email(self, serializer):
        email = serializer.validated_data.get("email")
        others = Client.objects.exclude(pk=getattr(serializer.instance, "pk", None))
        return bool(email) and others.filter(email=email).exists()

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict(CLIENT_HAS_ORDERS % {"client": instance}) from None

    @extend_schema(
        request=MergeSerializer,
        responses={
            200: MergeResultSerializer,
            400: OpenApiResponse(VALIDATION_ERROR, "Not a merge that can be done."),
        },
    )
    @action(detail=False, methods=["post"])
    def merge(self, request):
        """Merge clients into one, as the admin's "Merge selected clients" does.

        The survivor keeps its fields, fills its blank ones from the others,
        takes all their orders (and VIP if any had it); the others are deleted.
        """
        serializer = MergeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # The service locks and re-reads the clients; a missing one is its error.
        try:
            result = client_merge(
                survivor=Client(pk=data["survivor"]),
                others=[Client(pk=pk) for pk in data["others"]],
                user=request.user,
            )
        except MergeError as error:
            raise ValidationError({"non_field_errors": error.messages}) from None
        survivor = self.get_queryset().get(pk=result.survivor.pk)
        return Response(
            MergeResultSerializer(
                {
                    "detail": str(result),
                    "survivor": survivor,
                    "merged": [client.pk for client in result.merged],
                    "orders_moved": result.orders_moved,
                },
                context=self.get_serializer_context(),
            ).data
        )


class OrderViewSet(CrmViewSet):
    """Orders, each with its client's id and email."""

    queryset = Order.objects.select_related("client")
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
