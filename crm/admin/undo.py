"""Past merges and client imports, each with its "undo" page."""

import logging

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import Client, ImportRecord, MergeRecord
from ..undo import UndoError, import_undo, merge_undo

logger = logging.getLogger(__name__)

FAILED = "The undo failed and was rolled back; nothing was changed."


class UndoAdmin(admin.ModelAdmin):
    """A read-only list of records, each with an "undo" confirmation page."""

    #: The service that undoes a record: ``undo(record=..., user=...)``.
    undo = None
    #: What the record is, in the confirmation page's words.
    what = ""
    list_per_page = 50
    date_hierarchy = "created_at"

    def client_admin(self):
        return self.admin_site._registry[Client]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_undo_permission(self, request):
        raise NotImplementedError

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:pk>/undo/",
                self.admin_site.admin_view(self.undo_view),
                name="{}_{}_undo".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Undone")
    def state(self, obj):
        if obj.undone_at:
            return format_html("Undone {} by {}", obj.undone_at, obj.undone_by or "—")
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_undo", args=(obj.pk,)
        )
        return format_html('<a href="{}">Undo…</a>', url)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_undo": self.has_undo_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def undo_view(self, request, pk):
        """Confirm, then undo: refused with the reason when it cannot be done."""
        if not self.has_undo_permission(request):
            raise PermissionDenied
        record = get_object_or_404(self.model, pk=pk)
        if request.method == "POST":
            try:
                result = type(self).undo(record=record, user=request.user)
            except UndoError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            except DatabaseError:
                logger.exception("Undoing %s failed", record)
                self.message_user(request, FAILED, messages.ERROR)
            else:
                self.message_user(request, result.message, messages.SUCCESS)
            return redirect(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change", record.pk
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Undo {record}",
            "subtitle": None,
            "record": record,
            "what": self.what,
            "opts": self.opts,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            [
                f"admin/{self.opts.app_label}/{self.opts.model_name}/undo.html",
                f"admin/{self.opts.app_label}/undo.html",
            ],
            context,
        )


@admin.register(MergeRecord)
class MergeRecordAdmin(UndoAdmin):
    undo = merge_undo
    what = "merge"
    list_display = (
        "created_at",
        "user",
        "survivor_link",
        "merged_repr",
        "orders_moved",
        "state",
    )
    list_select_related = ("user", "undone_by")
    search_fields = ("survivor_repr", "merged_repr")
    fields = (
        "created_at",
        "user",
        "survivor_link",
        "merged_repr",
        "orders_moved",
        "survivor_before",
        "state",
    )
    change_form_template = "admin/crm/undo_change_form.html"

    def has_undo_permission(self, request):
        return self.client_admin().has_merge_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.has_undo_permission(request)

    def has_module_permission(self, request):
        return self.has_undo_permission(request)

    @admin.display(description="Survivor")
    def survivor_link(self, obj):
        url = reverse("admin:crm_client_change", args=(obj.survivor_id,))
        return format_html('<a href="{}">{}</a>', url, obj.survivor_repr)


@admin.register(ImportRecord)
class ImportRecordAdmin(UndoAdmin):
    undo = import_undo
    what = "import"
    list_display = ("created_at", "user", "file_name", "created", "updated", "state")
    list_select_related = ("user", "undone_by")
    search_fields = ("file_name",)
    fields = ("created_at", "user", "file_name", "job", "created", "updated", "state")
    change_form_template = "admin/crm/undo_change_form.html"

    def has_undo_permission(self, request):
        # It deletes the clients it created and changes the ones it updated.
        clients = self.client_admin()
        return (
            clients.has_import_permission(request)
            and clients.has_change_permission(request)
            and clients.has_delete_permission(request)
        )

    def has_view_permission(self, request, obj=None):
        return self.client_admin().has_import_permission(request)

    def has_module_permission(self, request):
        return self.has_view_permission(request)
