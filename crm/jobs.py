"""Big imports and exports as background jobs: start them, run them, follow them."""

import logging
import pickle
import time
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from .live import events
from .models import Job
from .spreadsheets.export import csv_chunks
from .spreadsheets.files import ImportFileError, refusal_message
from .spreadsheets.results import SHOWN_ROWS

logger = logging.getLogger(__name__)

WORKER_LOST = (
    "The worker running this job stopped before it finished (it was restarted or "
    "ran out of memory). Nothing was imported: the import runs in one "
    "transaction. Retry it."
)
FILE_GONE = "The uploaded file is no longer available; upload it again."


def resource_class(model_name):
    from .spreadsheets.resources import ClientResource, OrderResource

    return {"client": ClientResource, "order": OrderResource}[model_name]


# Files ------------------------------------------------------------------------


def files_dir():
    """Return the folder that holds job uploads and exports (shared with workers)."""
    folder = Path(settings.CRM_PRIVATE_FILES_DIR) / "jobs"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def upload_path(job):
    return files_dir() / f"job-{job.pk}-upload.csv"


def export_path(job):
    return files_dir() / f"job-{job.pk}-export.csv"


# Progress ---------------------------------------------------------------------


def _progress_key(job_id):
    return f"crm:job:{job_id}:progress"


def report_progress(job_id, done, total, *, user_id=None, state="running"):
    """Record how far a job has come (outside its transaction: in the cache),
    and tell its owner's open pages."""
    cache.set(
        _progress_key(job_id),
        {"done": done, "total": total, "at": time.time()},
        settings.CRM_JOB_FILE_MAX_AGE,
    )
    events.job_progress(job_id, user_id, state, done, total)


def progress_of(job):
    """Return ``(done, total)``: live while the job runs, final once it is over."""
    if job.state == Job.State.RUNNING:
        live = cache.get(_progress_key(job.pk))
        if live:
            return live["done"], live["total"] or job.rows_total
    return job.rows_done, job.rows_total


class Progress:
    """A progress callback for one job: reports at most every 1% of its rows."""

    def __init__(self, job):
        self.job_id = job.pk
        self.user_id = job.user_id
        self.reports = 0
        self.largest_step = 0.0
        self._last = 0

    def __call__(self, done, total):
        report_progress(self.job_id, done, total, user_id=self.user_id)
        if total:
            self.largest_step = max(self.largest_step, (done - self._last) / total)
        self._last = done
        self.reports += 1


# Starting ---------------------------------------------------------------------


QUEUE_AWAY = (
    "Background work is unavailable right now: its queue (Redis) cannot be "
    "reached. Nothing was started; try again in a minute."
)


class JobsUnavailable(Exception):
    """The broker cannot take a job now; nothing was started or changed."""

    def __init__(self):
        super().__init__(QUEUE_AWAY)


def queue_available():
    """Whether the broker takes jobs now (always, when jobs run in-process)."""
    from .tasks import run_job

    app = run_job.app
    if app.conf.task_always_eager:
        return True
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=2
            )
    except (KombuOperationalError, OSError):
        return False
    return True


def _enqueue(job, undo):
    """Queue ``job`` once the transaction commits; if the broker is away, call
    ``undo()`` so nothing stays half-started, and raise ``JobsUnavailable``."""
    from .tasks import run_job

    def send():
        try:
            run_job.delay(job.pk)
        except (KombuOperationalError, OSError) as error:
            logger.warning("Could not queue job %s: %s", job.pk, error)
            undo()
            raise JobsUnavailable from error

    transaction.on_commit(send)


def _delete(job):
    def undo():
        with suppress(OSError):
            upload_path(job).unlink(missing_ok=True)
        Job.objects.filter(pk=job.pk).delete()

    return undo


def _back_to(job, **fields):
    def undo():
        Job.objects.filter(pk=job.pk).update(**fields)

    return undo


def start_import(*, user, model_name, file_name, data, rows):
    """Store an upload and queue its preview; return the job.

    Raises ``JobsUnavailable`` (and keeps nothing) when the broker is away.
    """
    if not queue_available():
        raise JobsUnavailable
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        model_name=model_name,
        phase=Job.Phase.PREVIEW,
        user=user,
        file_name=file_name[:255],
        rows_total=rows,
    )
    upload_path(job).write_bytes(data)
    _enqueue(job, _delete(job))
    return job


def start_export(*, user, model_name, queryset, columns):
    """Queue an export of ``queryset`` (a filtered list) with ``columns``."""
    if not queue_available():
        raise JobsUnavailable
    job = Job.objects.create(
        kind=Job.Kind.EXPORT,
        model_name=model_name,
        phase=Job.Phase.EXPORT,
        user=user,
        query=pickle.dumps(queryset.query),
        columns=list(columns),
        rows_total=queryset.count(),
    )
    _enqueue(job, _delete(job))
    return job


def confirm_import(job):
    """Queue the import of a previewed job; False if it was not waiting for that."""
    if not queue_available():
        raise JobsUnavailable
    confirmed = Job.objects.filter(pk=job.pk, state=Job.State.PREVIEWED).update(
        state=Job.State.QUEUED, phase=Job.Phase.IMPORT
    )
    if confirmed:
        _enqueue(job, _back_to(job, state=Job.State.PREVIEWED, phase=Job.Phase.PREVIEW))
    return bool(confirmed)


def retry(job):
    """Queue a failed job again, if what it needs is still there."""
    if job.state != Job.State.FAILED or not job.result.get("retryable"):
        return False
    if job.kind == Job.Kind.IMPORT and not upload_path(job).exists():
        return False
    if not queue_available():
        raise JobsUnavailable
    requeued = Job.objects.filter(pk=job.pk, state=Job.State.FAILED).update(
        state=Job.State.QUEUED, error="", finished_at=None
    )
    if requeued:
        _enqueue(
            job,
            _back_to(
                job,
                state=Job.State.FAILED,
                error=job.error,
                finished_at=job.finished_at,
            ),
        )
    return bool(requeued)


# Running ----------------------------------------------------------------------


def run(job_id):
    """Run a queued job (the worker's task); record its outcome on the job."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        _fail_if_abandoned(job_id)
        return
    job = Job.objects.get(pk=job_id)
    report_progress(job.pk, 0, job.rows_total, user_id=job.user_id)
    phase = {
        Job.Phase.PREVIEW: _preview,
        Job.Phase.IMPORT: _import,
        Job.Phase.EXPORT: _export,
    }[job.phase]
    try:
        phase(job)
    except ImportFileError as error:
        _finish(job, Job.State.FAILED, error=str(error))
        upload_path(job).unlink(missing_ok=True)
    except Exception as error:
        logger.exception("Job %s failed", job.pk)
        _finish(
            job,
            Job.State.FAILED,
            error=f"The job failed ({type(error).__name__}: {error}). Nothing was "
            "changed. Retry it; if it fails again, tell your administrator.",
            retryable=True,
        )


def _fail_if_abandoned(job_id):
    """A job already running whose worker stopped reporting: mark it failed.

    A worker killed mid-job hands its message back to the queue; whoever gets
    it finds the job still "running" and, if nothing moved for a while,
    says so. A duplicate delivery of a job that is alive changes nothing.
    """
    job = Job.objects.filter(pk=job_id, state=Job.State.RUNNING).first()
    if job is not None and _stalled(job):
        _finish(job, Job.State.FAILED, error=WORKER_LOST, retryable=True)


def _stalled(job):
    live = cache.get(_progress_key(job.pk))
    last = live["at"] if live else job.started_at.timestamp()
    return time.time() - last > settings.CRM_JOB_STALL_SECONDS


def _finish(job, state, *, error="", retryable=False, **result):
    done, total = progress_of(job)
    job.state = state
    job.error = error
    job.finished_at = timezone.now()
    job.result = {**job.result, **result, "retryable": retryable}
    job.rows_done = total if state == Job.State.DONE else done
    job.rows_total = max(total, job.rows_total)
    job.save(
        update_fields=[
            "state",
            "error",
            "finished_at",
            "result",
            "rows_done",
            "rows_total",
        ]
    )
    events.job_progress(job.pk, job.user_id, state, job.rows_done, job.rows_total)


def _read_upload(job):
    try:
        return upload_path(job).read_bytes()
    except FileNotFoundError:
        raise ImportFileError(FILE_GONE) from None


def _imported(job, *, dry_run):
    """Read the job's upload and import it (or preview it); return the result.

    The import must do what its preview showed: the preview's digest of what
    each row does is checked again (``CHANGED_SINCE_PREVIEW`` otherwise).
    """
    resource_cls = resource_class(job.model_name)
    dataset = resource_cls.read_csv(_read_upload(job))
    progress = Progress(job)
    Job.objects.filter(pk=job.pk).update(rows_total=len(dataset))
    job.rows_total = len(dataset)
    resource = resource_cls(progress=progress)
    expected = None if dry_run else job.result.get("digest")
    result = resource.import_data(
        dataset,
        dry_run=dry_run,
        expected_digest=expected,
        user=job.user,
        job=None if dry_run else job,
    )
    job.result = {
        **job.result,
        "progress_reports": progress.reports,
        "largest_progress_step": progress.largest_step,
        "digest": getattr(result, "digest", None),
    }
    return result


def summary(result):
    """What the job page shows of an import result (first rows and errors)."""
    return {
        "totals": dict(result.totals),
        "total_rows": result.total_rows,
        "headers": list(result.diff_headers),
        "rows": [
            {"type": row.import_type, "cells": [str(cell) for cell in row.diff or ()]}
            for row in result.valid_rows()[:SHOWN_ROWS]
        ],
        "invalid": [
            {
                "number": row.number,
                "errors": [
                    f"{field}: {message}"
                    for field, messages in row.field_specific_errors.items()
                    for message in messages
                ]
                + [str(message) for message in row.non_field_specific_errors],
                "values": [str(value) for value in row.values],
            }
            for row in result.invalid_rows[:SHOWN_ROWS]
        ],
        "base_errors": [str(error.error) for error in result.base_errors],
    }


def _errors_token(job, result):
    from .spreadsheets.storage import FolderStorage, SharedCacheStorage

    storage = SharedCacheStorage if settings.REDIS_URL else FolderStorage
    return storage.save_errors(job.user_id, result.errors_csv())


def _preview(job):
    result = _imported(job, dry_run=True)
    if result.has_errors() or result.has_validation_errors():
        token = _errors_token(job, result) if result.totals["invalid"] else ""
        message = (
            str(result.base_errors[0].error)
            if result.base_errors
            else refusal_message(result)
        )
        _finish(job, Job.State.FAILED, error=message, errors=token, **summary(result))
        upload_path(job).unlink(missing_ok=True)
        return
    _finish(job, Job.State.PREVIEWED, **summary(result))


def _import(job):
    result = _imported(job, dry_run=False)
    upload_path(job).unlink(missing_ok=True)
    if result.has_errors() or result.has_validation_errors():
        message = (
            str(result.base_errors[0].error)
            if result.base_errors
            else refusal_message(result)
        )
        _finish(job, Job.State.FAILED, error=message)
        return
    totals = dict(result.totals)
    if job.user_id:
        model = resource_class(job.model_name)._meta.model
        LogEntry.objects.create(
            user_id=job.user_id,
            content_type_id=ContentType.objects.get_for_model(model).pk,
            object_repr=str(job)[:200],
            action_flag=ADDITION,
            change_message=(
                f"Imported a CSV file in the background: {totals['new']} new, "
                f"{totals['update']} updated, {totals['skip']} unchanged."
            ),
        )
    _finish(job, Job.State.DONE, totals=totals)


def _export(job):
    resource_cls = resource_class(job.model_name)
    queryset = resource_cls._meta.model.objects.all()
    queryset.query = pickle.loads(job.query)
    resource = resource_cls()
    columns = [c for c in resource.columns if c.name in job.columns] or list(
        resource.columns
    )
    progress = Progress(job)
    total = job.rows_total
    step = max(1, total // 100)
    rows = next_report = 0
    path = export_path(job)
    with open(path, "w", encoding="utf-8", newline="") as file:
        for chunk in csv_chunks(resource.filter_export(queryset), columns):
            file.write(chunk)
            rows += chunk.count("\n")
            if rows >= next_report:
                progress(min(rows, total), total)
                next_report = rows + step
    _finish(job, Job.State.DONE, rows=max(rows - 1, 0), size=path.stat().st_size)


# Reading results ----------------------------------------------------------------


def export_file(job):
    """Return the path of a finished export's file, or None if it expired."""
    if job.kind != Job.Kind.EXPORT or job.state != Job.State.DONE:
        return None
    path = export_path(job)
    return path if path.exists() else None


# Housekeeping -------------------------------------------------------------------


def tidy():
    """Fail jobs whose worker stopped; delete job files older than their age."""
    failed = 0
    for job in Job.objects.filter(state=Job.State.RUNNING):
        if _stalled(job):
            _finish(job, Job.State.FAILED, error=WORKER_LOST, retryable=True)
            failed += 1
    oldest = time.time() - settings.CRM_JOB_FILE_MAX_AGE
    deleted = 0
    for path in files_dir().iterdir():
        if path.stat().st_mtime < oldest:
            path.unlink(missing_ok=True)
            deleted += 1
    return failed, deleted
