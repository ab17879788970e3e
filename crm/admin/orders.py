"""Admin for orders."""

from django.contrib import admin
from rangefilter.filters import NumericRangeFilterBuilder
from simple_history.admin import SimpleHistoryAdmin

from ..models import Order
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
        return queryset.search(search_term), False
