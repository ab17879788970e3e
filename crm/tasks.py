"""Celery tasks: thin, idempotent, taking ids and plain values."""

import smtplib

from celery import shared_task

from . import jobs, reports


@shared_task(
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=60,
    max_retries=6,
)
def send_order_report(month=None):
    """Email the order report of ``month`` (``YYYY-MM``; default last month) once."""
    month = reports.parse_month(month) if month else None
    record, sent = reports.send_order_report(month)
    return {"month": f"{record.month:%Y-%m}", "sent": sent, "orders": record.orders}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_job(job_id):
    """Run a background import or export job."""
    jobs.run(job_id)


@shared_task
def tidy_jobs():
    """Fail jobs whose worker stopped and delete expired job files."""
    failed, deleted = jobs.tidy()
    return {"failed": failed, "deleted": deleted}
