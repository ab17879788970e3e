import time

import pytest
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm import jobs
from crm.models import Client, Job
from crm.tests.helpers import messages_of

pytestmark = pytest.mark.django_db

CLIENT_IMPORT = reverse("admin:crm_client_import")
CLIENT_EXPORT = reverse("admin:crm_client_export")


@pytest.fixture(autouse=True)
def _small_jobs(settings):
    settings.CRM_IMPORT_JOB_ROWS = 5


def client_file(count, bad=()):
    lines = ["name,email,phone"]
    for n in range(1, count + 1):
        domain = "example.com" if n in bad else "mail.test"
        lines.append(f"Person {n},person{n}@{domain},+1 555 {n:04d}")
    return ("\r\n".join(lines) + "\r\n").encode()


def upload(http, data, name="big.csv"):
    file = SimpleUploadedFile(name, data, content_type="text/csv")
    return http.post(CLIENT_IMPORT, {"import_file": file, "format": 0})


def job_page(http, job):
    return http.get(reverse("admin:crm_job_change", args=(job.pk,)))


def test_a_big_import_is_previewed_then_imported_in_the_background(
    admin_client, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, client_file(12))

    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:crm_job_change", args=(job.pk,))
    assert (job.state, job.user, job.file_name) == ("previewed", admin_user, "big.csv")
    assert (job.rows_done, job.rows_total) == (12, 12)
    assert job.result["totals"]["new"] == 12
    assert not Client.objects.exists()
    page = job_page(admin_client, job).content.decode()
    assert "Confirm import" in page and 'value="12" max="12"' in page
    assert page.count('<tr class="new">') == 12
    progress = admin_client.get(reverse("admin:crm_job_progress", args=(job.pk,)))
    assert progress.json() == {
        "state": "previewed",
        "done": 12,
        "total": 12,
        "error": "",
    }
    listing = admin_client.get(reverse("admin:crm_job_changelist")).content.decode()
    assert "Import of clients (big.csv)" in listing and "Previewed: 12 new" in listing

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:crm_job_confirm", args=(job.pk,)))

    job.refresh_from_db()
    assert job.state == "done" and job.result["totals"]["new"] == 12
    assert Client.objects.count() == 12
    assert not jobs.upload_path(job).exists()
    assert LogEntry.objects.filter(change_message__contains="12 new").exists()


def test_a_confirm_runs_once(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, client_file(8))
    job = Job.objects.get()
    confirm = reverse("admin:crm_job_confirm", args=(job.pk,))
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(confirm)
    second = admin_client.post(confirm, follow=True)

    assert "not waiting for a confirmation" in messages_of(second)[-1][1]
    assert Client.objects.count() == 8


def test_a_big_file_with_a_bad_header_is_refused_at_once(admin_client):
    response = upload(admin_client, b"foo,bar\r\n" + b"1,2\r\n" * 50)

    assert response.status_code == 302
    assert not Job.objects.exists()
    follow = admin_client.get(response["Location"])
    assert "no email column" in messages_of(follow)[0][1]


def test_a_big_file_with_bad_rows_fails_its_preview_with_every_error(
    admin_client, client, django_user_model, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, client_file(9, bad={2, 7}))

    job = Job.objects.get()
    assert job.state == "failed" and "Nothing was imported" in job.error
    assert job.result["totals"]["invalid"] == 2
    assert not jobs.upload_path(job).exists()
    page = job_page(admin_client, job).content.decode()
    assert "person2@example.com" in page and "Confirm import" not in page
    errors = admin_client.get(
        reverse("admin:crm_client_import_errors", args=(job.result["errors"],))
    )
    assert errors.content.decode("utf-8-sig").count("not accepted") == 2
    other = django_user_model.objects.create_superuser("other", "o@mail.test", "pw")
    client.force_login(other)
    assert (
        client.get(
            reverse("admin:crm_client_import_errors", args=(job.result["errors"],))
        ).status_code
        == 404
    )


def test_jobs_are_seen_by_their_owner_only(
    admin_client, client, django_user_model, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, client_file(6))
    job = Job.objects.get()
    staff = django_user_model.objects.create_user(
        "pat", "p@mail.test", "pw", is_staff=True
    )
    client.force_login(staff)

    assert client.get(reverse("admin:crm_job_changelist")).status_code == 200
    assert job_page(client, job).status_code in (302, 403)
    assert (
        client.post(reverse("admin:crm_job_confirm", args=(job.pk,))).status_code == 403
    )
    assert (
        client.get(reverse("admin:crm_job_progress", args=(job.pk,))).status_code == 403
    )


def test_progress_is_reported_every_one_percent(monkeypatch):
    job = Job.objects.create(
        kind="import", model_name="client", phase="preview", rows_total=500
    )
    jobs.upload_path(job).write_bytes(client_file(500))
    reported = []
    monkeypatch.setattr(
        jobs, "report_progress", lambda *args, **kwargs: reported.append(args)
    )

    jobs.run(job.pk)

    steps = [done for _, done, _ in reported]
    assert steps[0] == 0 and steps[-1] == 500
    assert max(b - a for a, b in zip(steps, steps[1:], strict=False)) <= 5
    job.refresh_from_db()
    assert job.result["largest_progress_step"] <= 0.01


def test_a_job_whose_worker_died_is_marked_failed_and_can_be_retried(
    settings, django_capture_on_commit_callbacks
):
    job = Job.objects.create(
        kind="import", model_name="client", phase="import", rows_total=6
    )
    jobs.upload_path(job).write_bytes(client_file(6))
    # A worker took it and died: no progress for longer than the stall limit.
    Job.objects.filter(pk=job.pk).update(state="running")
    cache.set(
        f"crm:job:{job.pk}:progress", {"done": 3, "total": 6, "at": time.time() - 3600}
    )

    jobs.run(job.pk)  # the message comes back from the queue to another worker

    job.refresh_from_db()
    assert job.state == "failed" and "Nothing was imported" in job.error
    assert not Client.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.retry(job)
    job.refresh_from_db()
    assert job.state == "done" and Client.objects.count() == 6


def test_a_duplicate_delivery_of_a_live_job_changes_nothing():
    job = Job.objects.create(
        kind="import", model_name="client", phase="import", state="running"
    )
    jobs.report_progress(job.pk, 10, 100)

    jobs.run(job.pk)

    job.refresh_from_db()
    assert job.state == "running" and not job.error


def test_tidy_fails_stalled_jobs_and_deletes_old_files(settings):
    stalled = Job.objects.create(
        kind="import", model_name="client", phase="import", state="running"
    )
    cache.set(
        f"crm:job:{stalled.pk}:progress",
        {"done": 1, "total": 9, "at": time.time() - 3600},
    )
    old = jobs.export_path(stalled)
    old.write_text("x")
    settings.CRM_JOB_FILE_MAX_AGE = -1

    assert jobs.tidy() == (1, 1)

    stalled.refresh_from_db()
    assert stalled.state == "failed" and not old.exists()


def test_an_unexpected_error_fails_the_job_with_a_retry(monkeypatch):
    job = Job.objects.create(
        kind="import", model_name="client", phase="import", rows_total=6
    )
    jobs.upload_path(job).write_bytes(client_file(6))

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "_imported", broken)
    jobs.run(job.pk)

    job.refresh_from_db()
    assert job.state == "failed" and "disk on fire" in job.error
    assert job.result["retryable"] and jobs.upload_path(job).exists()


def test_a_big_export_runs_as_a_job_whose_file_only_its_owner_downloads(
    admin_client,
    client,
    django_user_model,
    make_client,
    django_capture_on_commit_callbacks,
):
    for n in range(3):
        make_client(name=f"VIP {n}", email=f"v{n}@company.com")
    make_client(name="Plain", email="plain@mail.test")
    form = admin_client.get(CLIENT_EXPORT + "?vip__exact=1").context["form"]
    data = {
        name: "on"
        for name in form.fields
        if name not in ("format", "resource", "export_items")
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CLIENT_EXPORT + "?vip__exact=1",
            {**data, "format": 0, "resource": 0, "background": "1"},
        )

    job = Job.objects.get()
    assert response["Location"] == reverse("admin:crm_job_change", args=(job.pk,))
    assert (job.kind, job.state, job.result["rows"]) == ("export", "done", 3)
    download = admin_client.get(reverse("admin:crm_job_download", args=(job.pk,)))
    text = b"".join(download.streaming_content).decode("utf-8-sig")
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert text.count("@company.com") == 3 and "plain@" not in text
    other = django_user_model.objects.create_superuser("other", "o@mail.test", "pw")
    client.force_login(other)
    # Superusers see every job; only its owner takes its file... or a superuser.
    assert (
        client.get(reverse("admin:crm_job_download", args=(job.pk,))).status_code == 200
    )
    staff = django_user_model.objects.create_user(
        "pat", "p@mail.test", "pw", is_staff=True
    )
    client.force_login(staff)
    assert (
        client.get(reverse("admin:crm_job_download", args=(job.pk,))).status_code == 403
    )


def test_an_expired_export_says_so(admin_client, django_capture_on_commit_callbacks):
    job = Job.objects.create(
        kind="export", model_name="client", phase="export", state="done"
    )
    response = admin_client.get(reverse("admin:crm_job_download", args=(job.pk,)))
    assert response.status_code == 404
