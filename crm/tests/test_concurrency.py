import threading

import pytest
from django.db import connection, connections
from django.test import Client as HttpClient
from django.urls import reverse

from crm.models import Client

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrency is proven on PostgreSQL (set DATABASE_URL)",
    ),
]


def run_in_threads(*targets):
    """Run each target in its own thread with its own connection; return results."""
    results = [None] * len(targets)

    def run(index, target):
        try:
            results[index] = target()
        except Exception as error:  # reported to the test
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def test_concurrent_creates_of_one_email_make_one_client(user, monkeypatch):
    both_validated = threading.Barrier(2, timeout=10)
    validate = Client.validate_constraints

    def validate_then_wait(self, exclude=None):
        validate(self, exclude=exclude)
        both_validated.wait()  # both requests have seen "no duplicate"

    monkeypatch.setattr(Client, "validate_constraints", validate_then_wait)

    def create(email):
        def post():
            http = HttpClient()
            http.force_login(user)
            return http.post(
                reverse("clients:add"), {"name": "Racer", "email": email, "phone": ""}
            )

        return post

    results = run_in_threads(create("race@mail.test"), create("RACE@Mail.TEST"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.status_code for r in results) == [200, 302]
    rejected = next(r for r in results if r.status_code == 200)
    assert "already exists" in rejected.context["form"].errors["email"][0]
    assert Client.objects.filter(email="race@mail.test").count() == 1


def test_overlapping_merges_never_deadlock_or_lose_orders(admin_user):
    from decimal import Decimal

    from django.db.models import Sum

    from crm.models import Order
    from crm.services import MergeError, client_merge

    def merge(survivor_pk, other_pks):
        def run():
            survivor = Client(pk=survivor_pk)
            others = [Client(pk=pk) for pk in other_pks]
            try:
                return client_merge(survivor=survivor, others=others, user=admin_user)
            except MergeError as error:
                return error

        return run

    for round_ in range(50):
        clients = [
            Client.objects.create(name=f"C{round_}-{n}", email=f"c{round_}-{n}@m.test")
            for n in range(4)
        ]
        for n, client in enumerate(clients):
            for amount in ("1.10", "2.20", str(n)):
                Order.objects.create(client=client, title="o", amount=Decimal(amount))
        a, b, c, d = (client.pk for client in clients)
        before = Order.objects.filter(client_id__in=[a, b, c, d])
        total = before.aggregate(s=Sum("amount"))["s"]
        count = before.count()

        # Overlapping sets, listed in opposite orders, survivors crossing over.
        results = run_in_threads(merge(a, [c, b]), merge(d, [b, c, a]))

        failures = [r for r in results if isinstance(r, Exception)]
        unexpected = [
            r
            for r in failures
            if not (isinstance(r, MergeError) and r.code == "already_merged")
        ]
        assert not unexpected, unexpected
        assert len(failures) <= 1, "at least one merge must win"
        remaining = Client.objects.filter(pk__in=[a, b, c, d])
        after = Order.objects.filter(client_id__in=remaining.values("pk"))
        assert after.count() == count
        assert after.aggregate(s=Sum("amount"))["s"] == total
        assert not Order.objects.exclude(client__in=Client.objects.all()).exists()


def test_import_confirmed_while_its_clients_are_edited_lands_whole():
    import tablib
    from django.db import transaction

    from crm.spreadsheets.resources import ClientResource

    edited = Client.objects.create(name="Edited", email="edited@mail.test")
    Client.objects.create(name="Other", email="other@mail.test")
    locked = threading.Event()
    release = threading.Event()

    def edit():
        with transaction.atomic():
            client = Client.objects.select_for_update().get(pk=edited.pk)
            locked.set()
            release.wait(timeout=10)  # the import is under way meanwhile
            client.phone = "555-0100"
            client.save()

    def import_file():
        locked.wait(timeout=10)
        dataset = tablib.Dataset(headers=["name", "email", "phone"])
        dataset.append(["Imported Edit", "EDITED@mail.test", "555-0199"])
        dataset.append(["Imported Other", "other@mail.test", ""])
        for n in range(50):
            dataset.append([f"New {n}", f"new{n}@mail.test", ""])
        threading.Timer(0.5, release.set).start()
        return ClientResource().import_data(dataset, dry_run=False)

    edit_result, result = run_in_threads(edit, import_file)
    assert not isinstance(edit_result, Exception), edit_result
    assert not isinstance(result, Exception), result
    assert not result.has_errors() and not result.has_validation_errors()
    assert Client.objects.count() == 52
    edited.refresh_from_db()
    # The import waited for the edit's lock, then wrote every row of the file.
    assert (edited.name, edited.phone) == ("Imported Edit", "5550199")
    assert Client.objects.get(email="other@mail.test").name == "Imported Other"


def test_an_undo_racing_a_merge_of_its_survivor_leaves_every_order_with_a_client(
    admin_user,
):
    from decimal import Decimal

    from django.db.models import Sum

    from crm.models import MergeRecord, Order
    from crm.services import MergeError, client_merge
    from crm.undo import UndoError, merge_undo

    for round_ in range(20):
        keep, gone, target = (
            Client.objects.create(name=f"R{round_}-{n}", email=f"r{round_}-{n}@m.test")
            for n in range(3)
        )
        for client in (keep, gone, target):
            for amount in ("1.10", "2.20"):
                Order.objects.create(client=client, title="o", amount=Decimal(amount))
        record = client_merge(survivor=keep, others=[gone], user=admin_user).record
        ours = Order.objects.filter(client_id__in=[keep.pk, gone.pk, target.pk])
        total, count = ours.aggregate(s=Sum("amount"))["s"], ours.count()

        def undo(record=record):
            try:
                return merge_undo(record=record, user=admin_user)
            except UndoError as error:
                return error

        def merge_survivor_away(keep=keep, target=target):
            try:
                return client_merge(survivor=target, others=[keep], user=admin_user)
            except MergeError as error:
                return error

        undone, merged = run_in_threads(undo, merge_survivor_away)

        assert not isinstance(merged, Exception), merged
        record = MergeRecord.objects.get(pk=record.pk)
        if isinstance(undone, UndoError):
            # The merge won: the survivor is gone, the undo refused and did nothing.
            assert undone.code == "survivor_gone", undone
            assert record.undone_at is None
            assert not Client.objects.filter(pk=gone.pk).exists()
        else:
            # The undo won: the merged client is back with its orders.
            assert not isinstance(undone, Exception), undone
            assert record.undone_at is not None
            assert Order.objects.filter(client_id=gone.pk).count() == 2
        after = Order.objects.filter(pk__in=ours.values("pk"))
        assert after.count() == count
        assert after.aggregate(s=Sum("amount"))["s"] == total
        assert not Order.objects.exclude(client__in=Client.objects.all()).exists()
