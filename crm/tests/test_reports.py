import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm import reports, tasks
from crm.models import Order, SentReport

pytestmark = pytest.mark.django_db

OCTOBER = datetime.date(2026, 10, 1)


@pytest.fixture(autouse=True)
def _recipients(settings):
    settings.CRM_REPORT_RECIPIENTS = ["boss@company.com", "ops@company.com"]
    settings.TIME_ZONE = "Europe/Paris"


def order_at(client, moment, amount="10.00", status=Order.Status.NEW, title="Desk"):
    order = Order.objects.create(
        client=client, amount=Decimal(amount), status=status, title=title
    )
    Order.objects.filter(pk=order.pk).update(created_at=moment)
    return order


def paris(*args):
    return datetime.datetime(*args, tzinfo=timezone.get_default_timezone())


@pytest.fixture
def october_orders(make_client):
    ann = make_client(name="=Ann", email="-ann@mail.test")
    bob = make_client(name="Bob", email="bob@mail.test")
    order_at(ann, paris(2026, 10, 1, 0, 0), "10.50", Order.Status.NEW, "@first")
    order_at(bob, paris(2026, 10, 31, 23, 59), "20.00", Order.Status.DONE)
    order_at(bob, paris(2026, 10, 15, 12, 0), "0.25", Order.Status.DONE)
    order_at(ann, paris(2026, 9, 30, 23, 59), "99.00")  # September in Paris
    order_at(ann, paris(2026, 11, 1, 0, 0), "99.00")  # November
    return ann, bob


def report_rows(text):
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def test_the_report_lists_the_month_in_the_site_time_zone_with_totals(october_orders):
    text, count = reports.order_report_csv(OCTOBER)

    rows = report_rows(text)
    assert count == 3
    assert rows[0] == [
        "client name",
        "client email",
        "title",
        "amount",
        "status",
        "created_at",
    ]
    assert rows[1][:5] == ["'=Ann", "'-ann@mail.test", "'@first", "10.50", "NEW"]
    assert rows[1][5] == "2026-10-01 00:00:00"  # in TIME_ZONE, not UTC
    assert [row[3] for row in rows[1:4]] == ["10.50", "0.25", "20.00"]
    totals = {row[2]: (row[3], row[4]) for row in rows[4:]}
    assert totals == {
        "Total New (1 orders)": ("10.50", "NEW"),
        "Total In progress (0 orders)": ("0.00", "IN_PROGRESS"),
        "Total Done (2 orders)": ("20.25", "DONE"),
        "Total (3 orders)": ("30.75", ""),
    }


def test_the_report_is_emailed_once_per_month(october_orders):
    record, sent = reports.send_order_report(OCTOBER)
    again, sent_again = reports.send_order_report(OCTOBER)

    assert sent and not sent_again
    assert again.pk == record.pk and record.orders == 3
    [email] = mail.outbox
    assert email.to == ["boss@company.com", "ops@company.com"]
    assert "October 2026" in email.subject
    [(name, content, mimetype)] = email.attachments
    assert (name, mimetype) == ("orders-2026-10.csv", "text/csv")
    assert "Total (3 orders),30.75" in content


def test_sending_again_is_an_explicit_choice(october_orders):
    reports.send_order_report(OCTOBER)
    reports.send_order_report(OCTOBER, again=True)
    assert len(mail.outbox) == 2


def test_a_failed_send_leaves_the_month_unsent_so_a_retry_sends_it(
    october_orders, monkeypatch
):
    def broken(self, *args, **kwargs):
        raise OSError("SMTP server unreachable")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    with pytest.raises(OSError):
        reports.send_order_report(OCTOBER)
    assert not SentReport.objects.filter(sent_at__isnull=False).exists()
    monkeypatch.undo()

    reports.send_order_report(OCTOBER)

    assert len(mail.outbox) == 1


def test_the_task_defaults_to_last_month(october_orders, monkeypatch):
    monkeypatch.setattr(
        reports.timezone, "localdate", lambda: datetime.date(2026, 11, 1)
    )

    outcome = tasks.send_order_report.delay().get()

    assert outcome == {"month": "2026-10", "sent": True, "orders": 3}


@pytest.mark.parametrize(
    ("month", "first_day"),
    [("2026-10", OCTOBER), (" 2024-02 ", datetime.date(2024, 2, 1))],
)
def test_months_are_written_yyyy_mm(month, first_day):
    assert reports.parse_month(month) == first_day


@pytest.mark.parametrize(
    "month", ["2026-13", "2026-1", "oct", "", "2026-10-01", "0000-01"]
)
def test_a_bad_month_is_a_clear_error(month):
    with pytest.raises(reports.ReportError, match="YYYY-MM"):
        reports.parse_month(month)


def test_the_command_sends_prints_and_refuses_a_bad_month(october_orders):
    out = io.StringIO()
    call_command("send_order_report", "--month", "2026-10", stdout=out)
    call_command("send_order_report", "--month", "2026-10", stdout=out)
    assert "Sent the report for 2026-10 (3 orders)" in out.getvalue()
    assert "was sent already" in out.getvalue()
    assert len(mail.outbox) == 1
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("send_order_report", "--month", "October")


def test_no_recipients_is_a_clear_error(settings):
    settings.CRM_REPORT_RECIPIENTS = []
    with pytest.raises(CommandError, match="CRM_REPORT_RECIPIENTS"):
        call_command("send_order_report", "--month", "2026-10")


def test_beat_runs_the_report_at_six_on_the_first(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["monthly-order-report"]
    schedule = entry["schedule"]
    assert entry["task"] == "crm.tasks.send_order_report"
    assert (schedule.minute, schedule.hour, schedule.day_of_month) == ({0}, {6}, {1})
