"""Admin for clients: the list staff live in, the client page, merge."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext as _
from simple_history.admin import SimpleHistoryAdmin

from ..formatting import format_money
from ..models import CLIENT_HAS_ORDERS, Client, Order
from ..spreadsheets.resources import ClientResource
from .base import CREATED_RANGE_FILTER, CrmModelAdmin
from .changelist import ClientChangeList
from .duplicates import duplicates_view, merge_view
from .merge import merge_clients


class HasOpenOrdersFilter(admin.SimpleListFilter):
    title = "has open orders"
    parameter_name = "has_open_orders"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        """Return clients with (or without) an order that is not done."""
        if self.value() == "yes":
            return queryset.active()
        if self.value() == "no":
            return queryset.exclude(pk__in=Client.objects.active().values("pk"))
        return queryset


class OrderInline(admin.TabularInline):
    model = Order
    fields = ("title", "amount", "status", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    show_change_link = True


@admin.register(Client)
class ClientAdmin(SimpleHistoryAdmin, CrmModelAdmin):
    resource_classes = (ClientResource,)
    list_display = (
        "name",
        "email",
        "phone",
        "vip",
        "order_count",
        "total_amount",
        "created_at",
        "avatar_thumbnail",
    )
    search_fields = ("name", "email", "phone")
    list_filter = (
        "vip",
        CREATED_RANGE_FILTER,
        HasOpenOrdersFilter,
    )
    date_hierarchy = "created_at"
    fields = ("name", "email", "phone", "avatar", "vip", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at")
    inlines = (OrderInline,)
    actions = (merge_clients,)
    # The base of the import/export buttons' template (django-import-export).
    change_list_template = "admin/crm/client/change_list.html"

    class Media:
        # New orders show up on the list and the client page without a reload.
        css = {"all": ("crm/live.css",)}
        js = ("crm/live.js",)

    def get_urls(self):
        return [
            path(
                "duplicates/",
                self.admin_site.admin_view(lambda r: duplicates_view(self, r)),
                name="crm_client_duplicates",
            ),
            path(
                "merge/",
                self.admin_site.admin_view(lambda r: merge_view(self, r)),
                name="crm_client_merge",
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        """Return clients annotated with their order count and total."""
        return super().get_queryset(request).with_order_totals()

    def get_changelist(self, request, **kwargs):
        return ClientChangeList

    def get_search_results(self, request, queryset, search_term):
        """Search like the public list (any letter case), phone numbers too."""
        return queryset.search(search_term, phone=True), False

    def delete_view(self, request, object_id, extra_context=None):
        client = self.get_object(request, unquote(object_id))
        if client is not None and not self.has_delete_permission(request, client):
            # Before anything about the client shows (its name, its orders).
            raise PermissionDenied
        if client is not None and client.orders.exists():
            # Orders are protected: say what to do instead of listing them all.
            message = CLIENT_HAS_ORDERS % {"client": client}
            self.message_user(request, message, messages.ERROR)
            return redirect("admin:crm_client_change", client.pk)
        return super().delete_view(request, object_id, extra_context)

    def has_merge_permission(self, request):
        # @admin.action(permissions=...) grants on ANY listed permission; a
        # merge changes one client and deletes others, so it needs both.
        return self.has_change_permission(request) and self.has_delete_permission(
            request
        )

    def action_checkbox(self, obj):
        """Return the row's selection checkbox: Django's markup, built directly.

        Django renders a CheckboxInput widget template for every row, which
        cost about a quarter of the changelist's rendering time.
        """
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(_("Select this object for an action - {}"), str(obj)),
        )

    @admin.display(description="Orders", ordering="totals__order_count")
    def order_count(self, obj):
        return obj.order_count

    @admin.display(description="Total amount", ordering="totals__total_cents")
    def total_amount(self, obj):
        return format_money(obj.total_amount)

    @admin.display(description="Avatar")
    def avatar_thumbnail(self, obj):
        if obj.avatar:
            return format_html(
                '<img src="{}" alt="" width="32" height="32" '
                'style="border-radius:50%;object-fit:cover">',
                obj.avatar.url,
            )
        return format_html(
            '<span class="avatar-fallback" aria-hidden="true">{}</span>',
            (obj.name[:1] or "?").upper(),
        )
