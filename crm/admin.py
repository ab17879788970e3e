"""Admin for clients and orders: the staff workbench."""

import logging

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.db.models import Max, Min
from django.http import QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV
from rangefilter.filters import DateRangeFilterBuilder, NumericRangeFilterBuilder

from .formatting import format_money
from .models import CLIENT_HAS_ORDERS, Client, Order
from .resources import (
    ClientResource,
    OrderResource,
    row_error_lines,
    unreadable_file_message,
)
from .services import MergeError, client_merge
from .tmp_storages import ImportFileGone

logger = logging.getLogger(__name__)


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


@admin.action(description="Merge selected clients", permissions=["merge"])
def merge_clients(modeladmin, request, queryset):
    """Merge the selected clients into one, after a confirmation page."""
    clients = list(queryset.order_by("created_at", "pk"))
    if request.POST.get("post"):
        return _merge_confirmed(modeladmin, request, clients)
    if len(clients) < 2:
        modeladmin.message_user(
            request, "Select at least two clients to merge.", messages.WARNING
        )
        return None

    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Merge clients",
        "subtitle": None,
        "clients": clients,
        "default_survivor": clients[0],
        "opts": opts,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(
        request,
        getattr(modeladmin, "merge_confirmation_template", None)
        or [
            f"admin/{opts.app_label}/{opts.model_name}/merge_confirmation.html",
            f"admin/{opts.app_label}/merge_confirmation.html",
            "admin/merge_confirmation.html",
        ],
        context,
    )


def _merge_confirmed(modeladmin, request, clients):
    """Run a confirmed merge and report the outcome with a message."""
    requested = set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
    if len(clients) != len(requested):
        modeladmin.message_user(
            request,
            "Some of the selected clients no longer exist; they may have been "
            "merged or deleted already. Nothing was merged.",
            messages.ERROR,
        )
        return None
    if len(clients) < 2:
        modeladmin.message_user(
            request, "Select at least two clients to merge.", messages.WARNING
        )
        return None
    survivor_pk = request.POST.get("survivor", "")
    survivor = next((c for c in clients if str(c.pk) == survivor_pk), None)
    if survivor is None:
        modeladmin.message_user(
            request,
            "Choose the client to keep from the selected clients. Nothing was merged.",
            messages.ERROR,
        )
        return None

    others = [client for client in clients if client.pk != survivor.pk]
    try:
        result = client_merge(survivor=survivor, others=others, user=request.user)
    except MergeError as error:
        modeladmin.message_user(request, " ".join(error.messages), messages.ERROR)
        return None
    except DatabaseError:
        logger.exception("Merging clients %s failed", [c.pk for c in clients])
        modeladmin.message_user(
            request,
            "The merge failed and was rolled back; nothing was changed.",
            messages.ERROR,
        )
        return None

    count = len(result.merged)
    modeladmin.message_user(
        request,
        f"Merged {count} client{'s' if count != 1 else ''} into “{result.survivor}”; "
        f"moved {result.orders_moved} order{'s' if result.orders_moved != 1 else ''}.",
        messages.SUCCESS,
    )
    return None


# Sorting by a correlated subquery computes it for every client; these columns
# of crm_clienttotals (kept by database triggers) are indexed instead.
TOTALS_ORDERING = ("totals__order_count", "totals__total_cents")


class IndexedDateHierarchyMixin:
    """Answer the date hierarchy tag's top-level queries from the date index.

    Django's tag runs MIN and MAX together (a full scan) and then DISTINCT
    years (on SQLite a Python function per row: ~1 s at 100k clients). Here
    both ends come from the index and each year in between is one indexed
    EXISTS probe. Mixed into the changelist's queryset class only.
    """

    date_field = None

    def _is_date_range(self, args, kwargs):
        return (
            not args
            and set(kwargs) == {"first", "last"}
            and isinstance(kwargs["first"], Min)
            and isinstance(kwargs["last"], Max)
            and all(
                getattr(kwargs[k].source_expressions[0], "name", None)
                == self.date_field
                for k in ("first", "last")
            )
        )

    def aggregate(self, *args, **kwargs):
        if not self._is_date_range(args, kwargs):
            return super().aggregate(*args, **kwargs)
        # The tag asks for the range, then datetimes() needs it again: ask once.
        if not hasattr(self, "_date_range"):
            values = self.order_by().values_list(self.date_field, flat=True)
            self._date_range = {
                "first": values.order_by(self.date_field).first(),
                "last": values.order_by(f"-{self.date_field}").first(),
            }
        return dict(self._date_range)

    def datetimes(self, field_name, kind, *args, **kwargs):
        if kind != "year" or field_name != self.date_field:
            return super().datetimes(field_name, kind, *args, **kwargs)
        ends = self.aggregate(first=Min(field_name), last=Max(field_name))
        if ends["first"] is None:
            return []
        first, last = (timezone.localtime(ends[k]) for k in ("first", "last"))
        values = self.order_by().values_list(field_name, flat=True)
        years = []
        for year in range(first.year, last.year + 1):
            start = first.replace(year, 1, 1, 0, 0, 0, 0)
            span = {
                f"{field_name}__gte": start,
                f"{field_name}__lt": start.replace(year=year + 1),
            }
            if values.filter(**span).exists():
                years.append(start)
        return years


class ClientPaginator(Paginator):
    """Count the changelist's ``count_queryset`` when it offers a cheaper one."""

    @cached_property
    def count(self):
        return getattr(self.object_list, "count_queryset", self.object_list).count()


class ClientChangeList(ChangeList):
    """Sort by order count or total through the clienttotals indexes."""

    def get_filters(self, request):
        # Django's date hierarchy turns ?created_at__year=9999 into a date past
        # the calendar's end and fails; treat it like any other bad parameter.
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as error:
            raise IncorrectLookupParameters(error) from error

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.date_hierarchy:
            queryset = self.queryset._chain()
            queryset.__class__ = type(
                f"IndexedDate{type(queryset).__name__}",
                (IndexedDateHierarchyMixin, type(queryset)),
                {"date_field": self.date_hierarchy},
            )
            self.queryset = queryset

    def get_ordering(self, request, queryset):
        ordering = []
        for part in super().get_ordering(request, queryset):
            ordering.append(part)
            if isinstance(part, str) and part.lstrip("-") in TOTALS_ORDERING:
                # A tie-breaker in the same direction on the same table lets
                # the page read straight off the unique (total, client) index.
                direction = "-" if part.startswith("-") else ""
                ordering.append(f"{direction}totals__client_id")
        return ordering

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        if any(
            isinstance(part, str) and part.lstrip("-") in TOTALS_ORDERING
            for part in queryset.query.order_by
        ):
            # An inner join (every client has a totals row) lets the database
            # start from the index; a LEFT JOIN would scan and sort all clients.
            # The rows are the same, so the count skips the join.
            unjoined = queryset
            queryset = queryset.filter(totals__isnull=False)
            queryset.count_queryset = unjoined
        return queryset


def is_valid_pk(value):
    """Tell whether ``value`` can be a primary key (a positive 64-bit integer)."""
    return value.isdigit() and 0 < int(value) < 2**63


class LenientAutocompleteSelect(AutocompleteSelect):
    """Re-show a form whose client value is garbage instead of failing on it."""

    def optgroups(self, name, value, attr=None):
        value = [v for v in value if v in ("", None) or is_valid_pk(str(v))]
        return super().optgroups(name, value, attr)


class CrmModelAdmin(ImportExportModelAdmin):
    """Import/export admin with our safety rails."""

    # Spreadsheets move as CSV; a BOM lets Excel read the UTF-8 (accented names).
    import_formats = export_formats = [CSV]
    to_encoding = "utf-8-sig"

    import_template_name = "admin/crm/import.html"

    def changelist_view(self, request, extra_context=None):
        # Any field lookup can come from the URL, and PostgreSQL refuses NUL.
        if "\x00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in key + "".join(values) for key, values in request.GET.lists()
        ):
            cleaned = QueryDict(mutable=True)
            for key, values in request.GET.lists():
                cleaned.setlist(
                    key.replace("\x00", ""), [v.replace("\x00", "") for v in values]
                )
            request.GET = cleaned
        return super().changelist_view(request, extra_context)

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(is_valid_pk(pk) for pk in selected):
            self.message_user(
                request, "The selection is not valid; nothing was done.", messages.ERROR
            )
            return None
        return super().response_action(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = LenientAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def add_data_read_fail_error_to_form(self, form, e):
        form.add_error("import_file", unreadable_file_message(e))

    def process_import(self, request, **kwargs):
        choices = (
            ("format", len(self.get_import_formats())),
            ("resource", len(self.get_import_resource_classes(request))),
        )
        for field, count in choices:
            value = request.POST.get(field) or "0"
            if request.method == "POST" and not (
                value.isdigit() and int(value) < count
            ):
                self.message_user(
                    request, "The import form was not valid.", messages.ERROR
                )
                return self._back_to_import_page()
        try:
            return super().process_import(request, **kwargs)
        except ImportFileGone:
            self.message_user(
                request,
                "That upload is no longer available: it was imported already or it "
                "expired. Nothing was imported; upload the file again.",
                messages.ERROR,
            )
            return self._back_to_import_page()

    def process_result(self, result, request):
        # The library reports "Import finished" even when the confirmed import
        # failed (the data changed since the preview) and was rolled back.
        if result.has_errors() or result.has_validation_errors():
            if result.base_errors:
                reason = str(result.base_errors[0].error)
            else:
                reason = "Nothing was imported: " + "; ".join(row_error_lines(result))
            self.message_user(request, reason, messages.ERROR)
            return self._back_to_import_page()
        return super().process_result(result, request)

    def _back_to_import_page(self):
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_import")


class OrderInline(admin.TabularInline):
    model = Order
    fields = ("title", "amount", "status", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    show_change_link = True


@admin.register(Client)
class ClientAdmin(CrmModelAdmin):
    resource_classes = [ClientResource]
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
        ("created_at", DateRangeFilterBuilder(title="created")),
        HasOpenOrdersFilter,
    )
    date_hierarchy = "created_at"
    fields = ("name", "email", "phone", "avatar", "vip", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at")
    inlines = (OrderInline,)
    actions = (merge_clients,)
    # The full count is a second COUNT(*) on every page load; "Show all" is enough.
    show_full_result_count = False

    def get_queryset(self, request):
        """Return clients annotated with their order count and total."""
        return super().get_queryset(request).with_order_totals()

    paginator = ClientPaginator

    def get_changelist(self, request, **kwargs):
        return ClientChangeList

    def delete_view(self, request, object_id, extra_context=None):
        client = self.get_object(request, unquote(object_id))
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


@admin.register(Order)
class OrderAdmin(CrmModelAdmin):
    resource_classes = [OrderResource]
    list_display = ("title", "client", "amount", "status", "created_at")
    list_filter = (
        "status",
        ("created_at", DateRangeFilterBuilder(title="created")),
        ("amount", NumericRangeFilterBuilder(title="amount")),
    )
    list_select_related = ("client",)
    search_fields = ("title", "client__name", "client__email")
    autocomplete_fields = ("client",)
