"""Undo a merge or a client import: everything back, or nothing and the reason."""

from dataclasses import dataclass

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import ngettext

from .caching import invalidate_client_list
from .history import acting_as, record_history
from .models import Client, ImportRecord, MergedOrder, MergeRecord, Order
from .services import moved_orders, plain_value


def _unstored(values):
    """Return the client that ``_stored`` kept."""
    return Client(
        **{
            field.attname: field.to_python(values[field.attname])
            for field in Client._meta.concrete_fields
            if field.attname in values
        }
    )


class UndoError(ValidationError):
    """An undo that cannot go ahead; nothing has been changed."""


ALREADY_UNDONE = "This %(what)s was undone already; nothing was changed."


@dataclass(frozen=True)
class UndoResult:
    message: str
    restored: list


def merge_undo(*, record, user):
    """Undo the merge ``record`` in one transaction and log it.

    The merged clients come back with their ids and fields (avatars too),
    every order the merge moved goes back to its client, and the survivor's
    fields the merge filled (and VIP) get their old values. Raise
    ``UndoError`` and change nothing when that can no longer be done cleanly:
    a merged client's email is used again, an order the merge moved changed
    hands or was deleted, the survivor is gone or its filled fields changed.
    """
    try:
        with transaction.atomic(), acting_as(user):
            return _merge_undo(record, user)
    except IntegrityError as error:
        # Someone took a merged client's email between the check and the insert.
        raise UndoError(
            "The merge could not be undone: another client now has the email of "
            "a merged client (%(error)s). Nothing was changed.",
            code="email_taken",
            params={"error": error},
        ) from None


def _merge_undo(record, user):
    # The record first, then the clients in primary-key order, like a merge.
    record = MergeRecord.objects.select_for_update().filter(pk=record.pk).first()
    if record is None:
        raise UndoError("This merge no longer exists.", code="gone")
    if record.undone_at is not None:
        raise UndoError(ALREADY_UNDONE % {"what": "merge"}, code="undone")
    restored = [_unstored(values) for values in record.merged]
    pks = sorted({record.survivor_id, *(client.pk for client in restored)})
    locked = {
        client.pk: client
        for client in Client.objects.select_for_update()
        .filter(pk__in=pks)
        .order_by("pk")
    }
    survivor = locked.get(record.survivor_id)
    if survivor is None:
        raise UndoError(
            "The merge cannot be undone: the client it kept (%(survivor)s) no longer "
            "exists (merged into another or deleted since). Nothing was changed.",
            code="survivor_gone",
            params={"survivor": record.survivor_repr},
        )
    if len(locked) > 1:
        raise UndoError(
            "The merge cannot be undone: a client with the id of a merged client "
            "exists. Nothing was changed.",
            code="id_taken",
        )
    emails = [client.email for client in restored]
    taken = sorted(
        Client.objects.filter(email__in=emails).values_list("email", flat=True)
    )
    if taken:
        raise UndoError(
            "The merge cannot be undone: %(emails)s is now the email of another "
            "client. Nothing was changed.",
            code="email_taken",
            params={"emails": ", ".join(taken)},
        )
    changed = [
        field
        for field, value in record.survivor_after.items()
        if plain_value(survivor, field) != value
    ]
    if changed:
        raise UndoError(
            "The merge cannot be undone: %(survivor)s's %(fields)s changed since the "
            "merge. Nothing was changed.",
            code="survivor_changed",
            params={"survivor": survivor, "fields": ", ".join(changed)},
        )
    still = moved_orders(record, survivor.pk).count()
    if still != record.orders_moved:
        raise UndoError(
            "The merge cannot be undone: %(count)d of the %(moved)d orders it moved "
            "were moved to another client or deleted since. Nothing was changed.",
            code="orders_changed",
            params={"count": record.orders_moved - still, "moved": record.orders_moved},
        )

    reason = f"Undo of merge #{record.pk}"
    # A raw insert: the stored values as they were (created_at included).
    Client.objects._insert(
        restored, fields=Client._meta.local_concrete_fields, raw=True
    )
    restored_pks = [client.pk for client in restored]
    record_history(
        Client.objects.filter(pk__in=restored_pks),
        history_type="+",
        user=user,
        reason=reason,
    )
    source = MergedOrder.objects.filter(record=record, order_id=OuterRef("pk"))
    moved_back = moved_orders(record, survivor.pk).update(
        client_id=Subquery(source.values("client_id")[:1])
    )
    if moved_back != record.orders_moved:
        raise UndoError(
            "The merge could not be undone: its orders changed meanwhile. Nothing "
            "was changed.",
            code="orders_changed",
        )
    record_history(
        Order.objects.filter(
            pk__in=MergedOrder.objects.filter(record=record).values("order_id")
        ),
        history_type="~",
        user=user,
        reason=reason,
    )
    for field, value in record.survivor_before.items():
        setattr(survivor, field, value)
    survivor._history_user = user
    survivor._change_reason = reason
    survivor.save(update_fields=[*record.survivor_before, "updated_at"])

    record.undone_at = timezone.now()
    record.undone_by = user
    record.save(update_fields=["undone_at", "undone_by"])
    message = ngettext(
        "Undid merge #%(pk)d: restored %(count)d client and moved %(orders)d "
        "orders back.",
        "Undid merge #%(pk)d: restored %(count)d clients and moved %(orders)d "
        "orders back.",
        len(restored),
    ) % {"pk": record.pk, "count": len(restored), "orders": moved_back}
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=restored, action_flag=ADDITION, change_message=message
    )
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[survivor], action_flag=CHANGE, change_message=message
    )
    invalidate_client_list()
    return UndoResult(message=message, restored=restored)


def import_undo(*, record, user):
    """Undo the client import ``record`` in one transaction and log it.

    The clients it created are deleted and the clients it updated get their
    old values back. Raise ``UndoError`` and change nothing while something
    depends on it: one of its clients changed since (edited, merged, deleted)
    or a client it created has orders.
    """
    with transaction.atomic(), acting_as(user):
        return _import_undo(record, user)


def _import_undo(record, user):
    record = ImportRecord.objects.select_for_update().filter(pk=record.pk).first()
    if record is None:
        raise UndoError("This import no longer exists.", code="gone")
    if record.undone_at is not None:
        raise UndoError(ALREADY_UNDONE % {"what": "import"}, code="undone")
    History = Client.history.model
    rows = History.objects.filter(history_import=record)
    # Locked, so no one changes them between the checks and the undo.
    list(
        Client.objects.select_for_update()
        .filter(pk__in=rows.values("id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    later = History.objects.filter(
        id=OuterRef("id"), history_id__gt=OuterRef("history_id")
    )
    changed = list(rows.filter(Exists(later)).values_list("email", flat=True)[:6])
    if changed:
        raise UndoError(
            "The import cannot be undone: %(emails)s changed since (edited, merged "
            "or deleted). Nothing was changed.",
            code="changed_since",
            params={"emails": _some(changed)},
        )
    created = rows.filter(history_type="+").values("id")
    with_orders = list(
        Client.objects.filter(pk__in=created, orders__isnull=False)
        .values_list("email", flat=True)
        .distinct()[:6]
    )
    if with_orders:
        raise UndoError(
            "The import cannot be undone: clients it created have orders since "
            "(%(emails)s). Nothing was changed.",
            code="has_orders",
            params={"emails": _some(with_orders)},
        )

    reason = f"Undo of import #{record.pk}"
    deleted_clients = Client.objects.filter(pk__in=created)
    record_history(deleted_clients, history_type="-", user=user, reason=reason)
    connection = connections[deleted_clients.db]
    # One DELETE: an import's clients have no orders, avatars or signals to run.
    history_table = connection.ops.quote_name(History._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM crm_client WHERE id IN (SELECT id FROM {history_table} "
            "WHERE history_import_id = %s AND history_type = '+')",
            [record.pk],
        )
        deleted = cursor.rowcount
    updated = list(rows.filter(history_type="~").values_list("id", "history_before"))
    _restore(updated)
    record_history(
        Client.objects.filter(pk__in=rows.filter(history_type="~").values("id")),
        history_type="~",
        user=user,
        reason=reason,
    )
    record.undone_at = timezone.now()
    record.undone_by = user
    record.save(update_fields=["undone_at", "undone_by"])
    message = (
        f"Undid import #{record.pk}: deleted {deleted} clients it created, "
        f"restored {len(updated)} clients it updated."
    )
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[record], action_flag=CHANGE, change_message=message
    )
    invalidate_client_list()
    return UndoResult(message=message, restored=[])


def _restore(rows):
    """Give clients the values kept in their history (``history_before``)."""
    if not rows:
        return
    opts = Client._meta
    names = sorted({name for _pk, before in rows for name in before or {}})
    fields = [opts.get_field(name) for name in names]
    keys = [opts.get_field(name) for name in ("email_key", "name_key", "phone_key")]
    keys = [key for key in keys if key.source in names]
    connection = connections[Client.objects.db]
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE id = %s".format(
        quote(opts.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in [*fields, *keys]),
    )
    params = []
    for pk, before in rows:
        client = Client(pk=pk)
        for field in fields:
            setattr(client, field.attname, field.to_python(before.get(field.name)))
        client.refresh_keys()
        params.append(
            [
                field.get_db_prep_save(getattr(client, field.attname), connection)
                for field in [*fields, *keys]
            ]
            + [pk]
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _some(emails):
    shown = ", ".join(emails[:5])
    return f"{shown} and more" if len(emails) > 5 else shown
