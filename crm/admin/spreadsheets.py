"""CSV import and export in the admin (django-import-export), with our safety rails."""

import itertools
import logging
from functools import cache

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldError, PermissionDenied, ValidationError
from django.db import DatabaseError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV
from import_export.signals import post_export

from .. import jobs
from ..spreadsheets.export import csv_chunks
from ..spreadsheets.files import (
    ImportFileError,
    count_lines,
    read_headers,
    refusal_message,
)
from ..spreadsheets.storage import ImportFileGone

logger = logging.getLogger(__name__)

#: The session key of this user's previewed uploads: {upload name: digest}.
PREVIEWS = "crm_import_previews"
UPLOAD_GONE = (
    "That upload is no longer available: it was imported already or it expired. "
    "Nothing was imported; upload the file again."
)
UNREADABLE = "The file could not be read as CSV. Save it as “CSV UTF-8” and try again."
BAD_FILTERS = (
    "The export was not made: the filters in the address are not valid. "
    "Choose them again in the list."
)


class SpreadsheetCSV(CSV):
    """A CSV upload, read by the resource's own reader (our messages, our rules)."""

    resource_class = None

    def is_binary(self):
        return True  # we decode it ourselves, to name the encoding a file has

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream):
        return self.resource_class.read_csv(in_stream)


@cache
def csv_format(resource_class):
    """Return the CSV format that reads files for ``resource_class``."""
    return type(
        f"{resource_class.__name__}CSV",
        (SpreadsheetCSV,),
        {"resource_class": resource_class},
    )


class SpreadsheetAdmin(ImportExportModelAdmin):
    """Import and export as CSV: early refusals, small previews, streamed exports."""

    export_formats = [CSV]
    import_template_name = "admin/crm/import.html"
    export_template_name = "admin/crm/export.html"

    def get_import_formats(self):
        return [csv_format(self.resource_classes[0])]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "import/errors/<str:token>/",
                self.admin_site.admin_view(self.import_errors_view),
                name="{}_{}_import_errors".format(*info),
            ),
            *super().get_urls(),
        ]

    # Import -----------------------------------------------------------------

    def write_to_tmp_storage(self, import_file, input_format):
        storage = self.get_tmp_storage_class()(
            encoding=None,
            read_mode=input_format.get_read_mode(),
            **self.get_tmp_storage_class_kwargs(),
        )
        storage.save(b"".join(import_file.chunks()))
        return storage

    def add_data_read_fail_error_to_form(self, form, e):
        if not isinstance(e, ImportFileError):
            logger.exception("Reading an uploaded file failed")
        form.add_error(
            "import_file", str(e) if isinstance(e, ImportFileError) else UNREADABLE
        )

    def import_action(self, request, **kwargs):
        upload = request.FILES.get("import_file")
        if request.method == "POST" and upload is not None:
            if not self.has_import_permission(request):
                raise PermissionDenied
            if upload.size > settings.CRM_IMPORT_MAX_BYTES:
                limit = settings.CRM_IMPORT_MAX_BYTES // 2**20
                self.message_user(
                    request,
                    f"The file is larger than {limit} MB: split it into smaller "
                    "files, or import it with manage.py import_clients.",
                    messages.ERROR,
                )
                return self._back_to_import_page()
            data = b"".join(upload.chunks())
            if count_lines(data) > settings.CRM_IMPORT_JOB_ROWS:
                return self._import_in_background(request, upload, data)
        return self._import_here(request, **kwargs)

    def _import_in_background(self, request, upload, data):
        """Refuse a bad header now; preview and import the rows in a job."""
        resource = self.resource_classes[0]
        try:
            read_headers(data, resource.required_columns)
        except ImportFileError as error:
            self.message_user(request, str(error), messages.ERROR)
            return self._back_to_import_page()
        try:
            job = jobs.start_import(
                user=request.user,
                model_name=self.opts.model_name,
                file_name=upload.name,
                data=data,
                rows=count_lines(data),
            )
        except jobs.JobsUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
            return self._back_to_import_page()
        self.message_user(
            request,
            "The file is big: it is being previewed in the background. This page "
            "shows its progress; confirm the import here when the preview is ready.",
            messages.INFO,
        )
        return redirect("admin:crm_job_change", job.pk)

    def _import_here(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        upload = request.FILES.get("import_file")
        name = getattr(upload, "tmp_storage_name", None)
        result = context.get("result")
        if name and not context.get("confirm_form"):
            # Refused: nothing will confirm it, so it must not wait anywhere.
            self.get_tmp_storage_class()(name=name).remove()
        elif name:
            # Only who previewed it may confirm it, and only to the same effect.
            previews = request.session.get(PREVIEWS, {})
            previews[name] = result.digest
            request.session[PREVIEWS] = dict(list(previews.items())[-20:])
        if result is not None and result.totals["invalid"]:
            storage = self.get_tmp_storage_class()
            token = storage.save_errors(request.user.pk, result.errors_csv())
            context["errors_url"] = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_import_errors",
                args=(token,),
            )
        return response

    def import_errors_view(self, request, token):
        """Download the errors CSV of an import preview (its owner only)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        text = self.get_tmp_storage_class().read_errors(request.user.pk, token)
        if text is None:
            raise Http404(
                "These errors are no longer available; upload the file again."
            )
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        name = f"{self.opts.model_name}-import-errors.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def get_import_data_kwargs(self, request=None, form=None, **kwargs):
        kwargs = super().get_import_data_kwargs(request=request, form=form, **kwargs)
        name = getattr(form, "cleaned_data", {}).get("import_file_name")
        if request is not None and name:
            kwargs["expected_digest"] = request.session.get(PREVIEWS, {}).get(name)
        return kwargs

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
        name = request.POST.get("import_file_name", "")
        if request.method == "POST" and name not in request.session.get(PREVIEWS, {}):
            # Not an upload this user previewed (or confirmed already).
            self.message_user(request, UPLOAD_GONE, messages.ERROR)
            return self._back_to_import_page()
        try:
            response = super().process_import(request, **kwargs)
            self._forget_preview(request)
            return response
        except ImportFileGone:
            self.message_user(request, UPLOAD_GONE, messages.ERROR)
        except ImportFileError as error:
            self.message_user(request, str(error), messages.ERROR)
        return self._back_to_import_page()

    def _forget_preview(self, request):
        previews = request.session.get(PREVIEWS, {})
        if previews.pop(request.POST.get("import_file_name", ""), None) is not None:
            request.session[PREVIEWS] = previews

    def process_result(self, result, request):
        # The library reports "Import finished" even when the confirmed import
        # failed (the data changed since the preview) and was rolled back.
        if result.has_errors() or result.has_validation_errors():
            if result.base_errors:
                reason = str(result.base_errors[0].error)
            else:
                reason = refusal_message(result)
            self.message_user(request, reason, messages.ERROR)
            return self._back_to_import_page()
        return super().process_result(result, request)

    def generate_log_entries(self, result, request):
        """Log the import once, with its counts (not once per row)."""
        if self.get_skip_admin_log():
            return
        totals = result.totals
        LogEntry.objects.create(
            user_id=request.user.pk,
            content_type_id=ContentType.objects.get_for_model(self.model).pk,
            object_repr=f"CSV import of {self.opts.verbose_name_plural}",
            action_flag=ADDITION,
            change_message=(
                f"Imported a CSV file: {totals['new']} new, {totals['update']} "
                f"updated, {totals['skip']} unchanged."
            ),
        )

    def _back_to_import_page(self):
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_import")

    # Export -----------------------------------------------------------------

    def get_export_context_data(self, **kwargs):
        return {
            **super().get_export_context_data(**kwargs),
            "job_rows": settings.CRM_IMPORT_JOB_ROWS,
        }

    def export_action(self, request):
        try:
            return super().export_action(request)
        except (IncorrectLookupParameters, ValidationError, FieldError, ValueError):
            self.message_user(request, BAD_FILTERS, messages.ERROR)
            return redirect(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
            )

    def _do_file_export(self, file_format, request, queryset, export_form=None):
        """Stream the file row by row, as ``/clients/export.csv`` does."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        resource = self.choose_export_resource_class(export_form, request)
        selected = self.get_export_resource_fields_from_form(export_form)
        columns = [
            column
            for column in resource.columns
            if not selected or column.name in selected
        ]
        if "background" in request.POST:
            try:
                job = jobs.start_export(
                    user=request.user,
                    model_name=self.opts.model_name,
                    queryset=queryset,
                    columns=[column.name for column in columns],
                )
            except jobs.JobsUnavailable as error:
                self.message_user(request, str(error), messages.ERROR)
                return redirect(request.get_full_path())
            self.message_user(
                request,
                "The file is being prepared in the background; download it from "
                "this page when it is ready (only you can, for a day).",
                messages.INFO,
            )
            return redirect("admin:crm_job_change", job.pk)
        rows = resource(**self.get_export_resource_kwargs(request)).filter_export(
            queryset
        )
        chunks = csv_chunks(rows, columns)
        try:
            # The first chunk runs the query: a bad filter fails here, not
            # half way through a download.
            first = next(chunks)
        except (DatabaseError, ValueError, OverflowError):
            logger.warning("Export query failed", exc_info=True)
            self.message_user(request, BAD_FILTERS, messages.ERROR)
            return redirect(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
            )
        response = StreamingHttpResponse(
            itertools.chain([first], chunks), content_type="text/csv; charset=utf-8"
        )
        filename = self.get_export_filename(request, queryset, file_format)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        post_export.send(sender=None, model=self.model)
        return response
