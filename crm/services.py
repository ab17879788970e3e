"""Writes that span several models, shared by the admin, views and commands."""

from dataclasses import dataclass

from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Value
from django.utils.translation import ngettext

from .history import acting_as, insert_select, record_history
from .models import Client, MergedOrder, MergeRecord, Order

# Survivor fields that a merge fills from the merged clients when blank.
MERGE_FILLABLE_FIELDS = ("name", "phone", "avatar")

ALREADY_MERGED = (
    "Some of these clients no longer exist; they may have been merged or deleted "
    "already. Nothing was merged."
)


class MergeError(ValidationError):
    """A merge that cannot go ahead; nothing has been changed."""


@dataclass(frozen=True)
class MergeResult:
    survivor: Client
    merged: list
    orders_moved: int
    filled_fields: tuple
    record: MergeRecord = None

    def __str__(self):
        """Say what the merge did, for the person who asked for it."""
        clients = ngettext(
            "Merged %(count)d client into “%(survivor)s”",
            "Merged %(count)d clients into “%(survivor)s”",
            len(self.merged),
        ) % {"count": len(self.merged), "survivor": self.survivor}
        orders = ngettext(
            "moved %(count)d order.", "moved %(count)d orders.", self.orders_moved
        ) % {"count": self.orders_moved}
        return f"{clients}; {orders}"


def client_merge(*, survivor, others, user):
    """Merge ``others`` into ``survivor`` in one transaction and log it.

    Every order moves to the survivor, blank survivor fields are filled from
    the others (lowest primary key first), ``vip`` is kept if any client had
    it, and the others are deleted. Raise ``MergeError`` when the clients are
    not a valid merge or no longer all exist.
    """
    other_pks = sorted({client.pk for client in others})
    if not other_pks:
        raise MergeError(
            "Choose at least one client to merge into the survivor.",
            code="nothing_to_merge",
        )
    if survivor.pk in other_pks:
        raise MergeError(
            "The surviving client cannot also be merged away.",
            code="survivor_merged",
        )
    all_pks = sorted([survivor.pk, *other_pks])

    with transaction.atomic():
        # Locking in primary-key order keeps two overlapping merges from
        # deadlocking; re-reading under the lock sees any merge that won.
        locked = {
            client.pk: client
            for client in Client.objects.select_for_update()
            .filter(pk__in=all_pks)
            .order_by("pk")
        }
        if len(locked) != len(all_pks):
            raise MergeError(ALREADY_MERGED, code="already_merged")
        survivor = locked[survivor.pk]
        merged = [locked[pk] for pk in other_pks]
        before = {f: plain_value(survivor, f) for f in (*MERGE_FILLABLE_FIELDS, "vip")}
        filled = _fill_blanks(survivor, merged)
        if not survivor.vip and any(client.vip for client in merged):
            survivor.vip = True
            filled.append("vip")
        # What an undo needs: the merged clients as they were, the survivor's
        # fields before and after, and (next) every order's first client.
        record = MergeRecord.objects.create(
            user=user,
            survivor_id=survivor.pk,
            survivor_repr=str(survivor)[:400],
            merged=[_stored(client) for client in merged],
            merged_repr=", ".join(str(client) for client in merged),
            survivor_before={field: before[field] for field in filled},
            survivor_after={field: plain_value(survivor, field) for field in filled},
            files="\n".join(client.avatar.name for client in merged if client.avatar),
        )
        moving = Order.objects.filter(client_id__in=other_pks)
        insert_select(
            MergedOrder,
            ("record_id", "order_id", "client_id"),
            moving.order_by().values_list(Value(record.pk), "pk", "client_id"),
        )
        orders_moved = moving.update(client=survivor)
        reason = f"Merged into {survivor} (merge #{record.pk})"[:100]
        record_history(
            moved_orders(record, survivor.pk),
            history_type="~",
            user=user,
            reason=reason,
        )
        MergeRecord.objects.filter(pk=record.pk).update(orders_moved=orders_moved)
        record.orders_moved = orders_moved
        survivor._history_user = user
        survivor.save(update_fields=[*filled, "updated_at"])

        LogEntry.objects.log_actions(
            user_id=user.pk,
            queryset=merged,
            action_flag=DELETION,
            change_message=f"Merged into {survivor} (id {survivor.pk}).",
        )
        with acting_as(user):
            Client.objects.filter(pk__in=other_pks).delete()
        LogEntry.objects.log_actions(
            user_id=user.pk,
            queryset=[survivor],
            action_flag=CHANGE,
            change_message=_log_message(merged, orders_moved, filled),
        )
    return MergeResult(
        survivor=survivor,
        merged=merged,
        orders_moved=orders_moved,
        filled_fields=tuple(filled),
        record=record,
    )


def plain_value(client, field):
    """Return a client's field as JSON keeps it (a file as its name)."""
    value = getattr(client, field)
    return getattr(value, "name", value)


def _stored(client):
    """Return a client's stored values as text, exactly (microseconds too)."""
    return {
        field.attname: field.value_to_string(client)
        for field in Client._meta.concrete_fields
    }


def moved_orders(record, client_id):
    """Return the orders ``record`` moved that still belong to ``client_id``."""
    moved = MergedOrder.objects.filter(record=record).values("order_id")
    return Order.objects.filter(pk__in=moved, client_id=client_id)


def _fill_blanks(survivor, donors):
    """Copy each blank fillable field from the first donor that has it."""
    filled = []
    for field in MERGE_FILLABLE_FIELDS:
        if getattr(survivor, field):
            continue
        donor = next((d for d in donors if getattr(d, field)), None)
        if donor is not None:
            value = getattr(donor, field)
            setattr(survivor, field, getattr(value, "name", value))
            filled.append(field)
    return filled


def _log_message(merged, orders_moved, filled):
    message = ngettext(
        "Merged %(count)d client into this one: %(names)s; ",
        "Merged %(count)d clients into this one: %(names)s; ",
        len(merged),
    ) % {"count": len(merged), "names": ", ".join(str(client) for client in merged)}
    message += ngettext(
        "moved %(count)d order.", "moved %(count)d orders.", orders_moved
    ) % {"count": orders_moved}
    if filled:
        message += f" Filled from them: {', '.join(filled)}."
    return message
