"""Admin for background jobs: their progress, results, confirm, retry, download."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from .. import jobs
from ..models import Job


def can_use(request, job):
    """Tell whether the user may act on the job: its owner, or a superuser."""
    return request.user.is_superuser or job.user_id == request.user.pk


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("__str__", "state", "progress", "user", "created_at", "outcome")
    list_filter = ("state", "kind", "model_name")
    list_select_related = ("user",)
    change_form_template = "admin/crm/job/change_form.html"

    class Media:
        js = ("crm/live.js",)  # progress arrives as it happens

    # Jobs are started from the import and export pages, never edited by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        if not request.user.is_staff:
            return False
        if super().has_view_permission(request, obj):
            return True
        return obj is None or obj.user_id == request.user.pk

    def has_module_permission(self, request):
        return request.user.is_staff

    def get_queryset(self, request):
        """Staff see their own jobs; those with the view permission see all."""
        queryset = super().get_queryset(request)
        if request.user.has_perm("crm.view_job"):
            return queryset
        return queryset.filter(user=request.user)

    @admin.display(description="Progress")
    def progress(self, job):
        done, total = jobs.progress_of(job)
        return format_html(
            '<progress value="{}" max="{}"></progress> {}',
            done,
            total or 1,
            f"{done:,} of {total:,}",
        )

    @admin.display(description="Result")
    def outcome(self, job):
        if job.error:
            return job.error[:120]
        totals = job.result.get("totals")
        if totals:
            counts = (
                f"{totals.get('new', 0)} new, {totals.get('update', 0)} updated, "
                f"{totals.get('skip', 0)} unchanged"
            )
            return (
                f"Previewed: {counts}" if job.state == Job.State.PREVIEWED else counts
            )
        if "rows" in job.result and job.kind == Job.Kind.EXPORT:
            return f"{job.result['rows']:,} rows"
        return ""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/progress/", view(self.progress_view), name="crm_job_progress"
            ),
            path("<int:pk>/confirm/", view(self.confirm_view), name="crm_job_confirm"),
            path("<int:pk>/retry/", view(self.retry_view), name="crm_job_retry"),
            path(
                "<int:pk>/download/", view(self.download_view), name="crm_job_download"
            ),
            *super().get_urls(),
        ]

    def _job(self, request, pk):
        job = get_object_or_404(Job, pk=pk)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return job

    def progress_view(self, request, pk):
        """The job's state and progress, for its page to follow without reloading."""
        job = self._job(request, pk)
        done, total = jobs.progress_of(job)
        return JsonResponse(
            {"state": job.state, "done": done, "total": total, "error": job.error}
        )

    def confirm_view(self, request, pk):
        job = self._job(request, pk)
        if request.method != "POST" or not can_use(request, job):
            raise PermissionDenied
        try:
            queued = jobs.confirm_import(job)
        except jobs.JobsUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            if queued:
                self.message_user(request, "The import is running.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    "This job is not waiting for a confirmation (it was confirmed "
                    "already, or it failed).",
                    messages.ERROR,
                )
        return redirect("admin:crm_job_change", job.pk)

    def retry_view(self, request, pk):
        job = self._job(request, pk)
        if request.method != "POST" or not can_use(request, job):
            raise PermissionDenied
        try:
            queued = jobs.retry(job)
        except jobs.JobsUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            if queued:
                self.message_user(request, "The job is queued again.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    "This job cannot be retried: start it again from the import or "
                    "export page.",
                    messages.ERROR,
                )
        return redirect("admin:crm_job_change", job.pk)

    def download_view(self, request, pk):
        """The export's file, for the person who asked for it."""
        job = self._job(request, pk)
        if not can_use(request, job):
            raise PermissionDenied
        path = jobs.export_file(job)
        if path is None:
            raise Http404("This export's file has expired; export again.")
        return FileResponse(
            open(path, "rb"),
            as_attachment=True,
            filename=f"{job.model_name}s-{job.created_at:%Y-%m-%d}.csv",
            content_type="text/csv; charset=utf-8",
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = {}
        if job is not None:
            done, total = jobs.progress_of(job)
            errors = job.result.get("errors")
            extra = {
                "job": job,
                "done": done,
                "total": total,
                "percent": round(100 * done / total) if total else 0,
                "can_use": can_use(request, job),
                "export_ready": jobs.export_file(job) is not None,
                "errors_url": errors
                and reverse(
                    f"admin:crm_{job.model_name}_import_errors", args=(errors,)
                ),
            }
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), **extra}
        )
