"""History rows for every write path: who acted, and bulk rows for bulk writes."""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connections, models
from django.db.models import Value
from django.utils import timezone

#: Who is acting where no request says so (a job, a command, a service).
_acting_user = ContextVar("crm_acting_user", default=None)


@contextmanager
def acting_as(user):
    """Attribute the history rows written inside the block to ``user``."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)


def history_user(request=None, **kwargs):
    """Return who made a change: ``acting_as``'s user, else the request's."""
    user = _acting_user.get()
    if user is not None:
        return user
    user = getattr(request, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def _user_id(user):
    user = user if user is not None else _acting_user.get()
    return getattr(user, "pk", None)


def tracked_fields(model):
    """Return the model's fields that its history rows copy."""
    history = model.history.model
    names = {field.attname for field in history._meta.concrete_fields}
    return [field for field in model._meta.concrete_fields if field.attname in names]


def insert_select(model, columns, queryset):
    """Insert into ``model``'s table the rows ``queryset`` selects: one query.

    ``queryset`` is a ``values_list`` whose items go to ``columns`` in order.
    """
    connection = connections[queryset.db]
    quote = connection.ops.quote_name
    sql, params = queryset.query.sql_with_params()
    statement = "INSERT INTO {} ({}) {}".format(
        quote(model._meta.db_table), ", ".join(quote(c) for c in columns), sql
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def record_history(queryset, *, history_type, user=None, reason=None, **extra):
    """Write one history row per row of ``queryset``, as it is now: one query.

    For writes that send no signals: ``QuerySet.update()``, raw SQL, and rows
    about to be deleted in bulk. ``extra`` sets other history columns.
    """
    model = queryset.model
    history = model.history.model
    fields = tracked_fields(model)
    constants = {
        "history_date": timezone.now(),
        "history_type": history_type,
        "history_user_id": _user_id(user),
        "history_change_reason": reason,
        **extra,
    }
    values = [
        Value(value, output_field=_output_field(history, name))
        for name, value in constants.items()
    ]
    rows = queryset.order_by().values_list(*(f.attname for f in fields), *values)
    columns = [f.column for f in fields] + [
        history._meta.get_field(name).column for name in constants
    ]
    return insert_select(history, columns, rows)


def _output_field(history, name):
    field = history._meta.get_field(name)
    if isinstance(field, models.ForeignKey):
        return field.target_field.__class__()
    return field


def write_history(instances, *, history_type, user=None, using="default", **extra):
    """Write history rows for ``instances`` as they are in memory: one statement.

    For bulk inserts and updates that hold the rows already (the CSV import).
    ``extra`` sets other history columns; a callable gets each instance.
    """
    if not instances:
        return
    model = type(instances[0])
    history = model.history.model
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = tracked_fields(model)
    constants = {
        "history_date": timezone.now(),
        "history_type": history_type,
        "history_user_id": _user_id(user),
        "history_change_reason": None,
        **extra,
    }
    history_fields = [history._meta.get_field(name) for name in constants]
    prepared = {
        name: field.get_db_prep_save(value, connection)
        for (name, value), field in zip(constants.items(), history_fields, strict=True)
        if not callable(value)
    }
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(history._meta.db_table),
        ", ".join(quote(f.column) for f in [*fields, *history_fields]),
        ", ".join(["%s"] * (len(fields) + len(history_fields))),
    )
    params = [
        [
            field.get_db_prep_save(getattr(instance, field.attname), connection)
            for field in fields
        ]
        + [
            prepared[name]
            if name in prepared
            else field.get_db_prep_save(value(instance), connection)
            for (name, value), field in zip(
                constants.items(), history_fields, strict=True
            )
        ]
        for instance in instances
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
