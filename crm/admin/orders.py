"""Admin for orders."""

from django.contrib import admin
from django.db import connections
from django.db.models import Q
from rangefilter.filters import NumericRangeFilterBuilder
from simple_history.admin import SimpleHistoryAdmin

from ..models import Client, Order, contains_any_case
from ..spreadsheets.resources import OrderResource
from .base import CREATED_RANGE_FILTER, CrmModelAdmin


@admin.register(Order)
class OrderAdmin(SimpleHistoryAdmin, CrmModelAdmin):
    resource_classes = (OrderResource,)
    list_display = ("title", "client", "amount", "status", "created_at")
    list_filter = (
        "status",
        CREATED_RANGE_FILTER,
        ("amount", NumericRangeFilterBuilder(title="amount")),
    )
    list_select_related = ("client",)
    search_fields = ("title", "client__name", "client__email")
    autocomplete_fields = ("client",)

    def get_search_results(self, request, queryset, search_term):
        """Find orders by title or by their client, in any letter case."""
        term = search_term.replace("\x00", "").strip()
        if not term:
            return queryset, False
        vendor = connections[queryset.db].vendor
        return queryset.filter(
            contains_any_case("title", term, vendor)
            | Q(client__in=Client.objects.search(term))
        ), False
