"""The client and order resources (django-import-export), built from the columns."""

import hashlib
import itertools
from array import array
from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import CharField
from django.utils import timezone
from django.utils.encoding import force_str
from import_export import resources
from import_export.instance_loaders import BaseInstanceLoader

from ..caching import invalidate_client_list
from ..history import record_history, write_history
from ..live import events
from ..models import KEY_FIELDS, Client, ImportRecord, Order
from ..rules import normalize_email
from .columns import CLIENT_COLUMNS, ORDER_COLUMNS, names
from .files import (
    ImportFileError,
    ImportRefused,
    check_headers,
    clean_headers,
    list_numbers,
    read_csv,
    refusal_message,
)
from .results import SHOWN_ROWS, ImportResult

#: How much of a long cell the preview shows.
PREVIEW_CHARS = 200

CHANGED_SINCE_PREVIEW = (
    "Nothing was imported: the data this file names changed since the preview "
    "(someone added or edited a row it would create or update). Upload the file "
    "again to see what it would do now."
)
CHANGED_MEANWHILE = (
    "Nothing was imported: the data changed while the file was being imported "
    "(%(reason)s). Upload the file again to see what it would do now."
)


class ColumnsMetaclass(resources.ModelDeclarativeMetaclass):
    """Declare a resource's fields from its ``columns``, in their order."""

    def __new__(cls, name, bases, attrs):
        for column in attrs.get("columns", ()):
            attrs.setdefault(column.name, column.as_field())
        return super().__new__(cls, name, bases, attrs)


def column(dataset, name):
    """Yield a column's values from a ``CsvFile`` or a ``tablib.Dataset``."""
    if name not in (dataset.headers or ()):
        return iter(())
    if hasattr(dataset, "column"):
        return dataset.column(name)
    return iter(dataset[name])


class KeyInstanceLoader(BaseInstanceLoader):
    """Find the rows' existing objects by the resource's key, a window at a time.

    One query finds the objects of the next ``WINDOW`` rows, so memory stays
    flat however long the file is.
    """

    WINDOW = 1_000  # larger IN lists make PostgreSQL scan the table

    def __init__(self, resource, dataset=None):
        super().__init__(resource, dataset)
        self.column = resource.key_column
        self.keys = column(dataset, self.column)
        self.end = 0  # the window holds the objects of rows up to here
        self.found = {}

    def get_instance(self, row):
        while self.resource.row_number > self.end:
            window = itertools.islice(self.keys, self.WINDOW)
            self.found = self.resource.existing({self.resource.key(v) for v in window})
            self.end += self.WINDOW
        return self.found.get(self.resource.key(row.get(self.column)))


class CrmResource(resources.ModelResource, metaclass=ColumnsMetaclass):
    """A resource that imports whole files or nothing, fast, and exports safely."""

    #: The file's columns (``crm.spreadsheets.columns``).
    columns = ()
    #: Model fields that ``full_clean`` leaves alone on import.
    clean_exclude = ()
    #: Columns a file must have.
    required_columns = ()
    #: The column that names an existing object (its rows update that object).
    key_column = None

    class Meta:
        use_bulk = True
        batch_size = 1000
        skip_diff = True
        instance_loader_class = KeyInstanceLoader

    def __init__(self, *, progress=None, **kwargs):
        super().__init__(**kwargs)
        #: Called with (rows done, rows in all) every 1% of the rows.
        self.progress = progress
        self._rows_done = self._next_report = self._rows = 0
        self._import_fields = None
        self._updates_shown = 0
        self._file_fields = []
        self._before = None
        self._preview = None
        self._ragged = {}
        self._width = 0
        self._keys = {}
        self._digest = hashlib.sha256()
        self._rows_sharing_key = {}
        self._diff_headers = []
        self._user = None
        self._dry_run = False
        self.row_number = 0

    @classmethod
    def get_result_class(cls):
        return ImportResult

    # Reading files ----------------------------------------------------------

    @classmethod
    def read_csv(cls, data):
        """Return an uploaded file as a dataset, refused early by its header."""
        return read_csv(data, required=cls.required_columns)

    # Import -----------------------------------------------------------------

    def import_data(self, dataset, *args, **kwargs):
        """Import the whole file or nothing; refuse a bad header before any row."""
        try:
            dataset.headers = clean_headers(dataset.headers or ())
            check_headers(dataset.headers, self.required_columns)
        except ImportFileError as error:
            result = self.get_result_class()()
            result.append_base_error(self.get_error_result_class()(error))
            return result
        kwargs.update(use_transactions=True, rollback_on_validation_errors=True)
        self._dry_run = kwargs.get("dry_run", args[0] if args else False)
        imported = {field.column_name for field in self.get_import_fields()}
        self._diff_headers = [h for h in dataset.headers if h in imported]
        try:
            return super().import_data(dataset, *args, **kwargs)
        except DatabaseError as error:
            # A deferred constraint fails at commit, after the rows were checked.
            result = self.get_result_class()()
            message = CHANGED_MEANWHILE % {"reason": error}
            result.append_base_error(
                self.get_error_result_class()(ImportFileError(message))
            )
            return result

    def get_diff_headers(self):
        """The file's own imported columns: what the preview and errors show."""
        return self._diff_headers

    def get_import_fields(self):
        if self._import_fields is None:
            self._import_fields = [
                field for field in super().get_import_fields() if not field.readonly
            ]
        return self._import_fields

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        user = kwargs.get("user")
        self._user = user if getattr(user, "is_authenticated", False) else None
        self._rows = len(dataset)
        self._rows_sharing_key = self._duplicates(dataset)
        by_column = {field.column_name: field for field in self.get_import_fields()}
        # The imported fields the file has a column for, in its order.
        self._file_fields = [by_column[c] for c in dataset.headers if c in by_column]
        self._ragged = getattr(dataset, "ragged", {})
        self._width = len(dataset.headers)

    def before_import_row(self, row, row_number=None, **kwargs):
        super().before_import_row(row, row_number=row_number, **kwargs)
        self.row_number = row_number
        if not any(str(value or "").strip() for value in row.values()):
            raise ValidationError(
                "This row is empty: delete it, or fill it in.", code="empty_row"
            )
        if row_number in self._ragged:
            raise ValidationError(
                "This row has %(cells)d cells but the header has %(columns)d "
                "columns: check for a missing or extra separator.",
                code="ragged_row",
                params={
                    "cells": self._ragged[row_number],
                    "columns": self._width,
                },
            )

    def key(self, value):
        """Return a key cell as the database stores it ('' when unusable)."""
        # Each row's key is wanted several times (loader, duplicates, the row);
        # remember the recent ones.
        try:
            return self._keys[value]
        except KeyError:
            if len(self._keys) > 4 * KeyInstanceLoader.WINDOW:
                self._keys.clear()
        key = self._keys[value] = self.clean_key(value)
        return key

    def clean_key(self, value):
        """Return a key cell as the database stores it, not remembered."""
        try:
            return self.fields[self.key_column].widget.clean(value)
        except (ValueError, ValidationError):
            return ""

    def existing(self, keys):
        """Return ``{key: object}`` for the objects the file names."""
        raise NotImplementedError

    def _duplicates(self, dataset):
        """Return ``{row number: rows}`` for rows whose key another row has too.

        Each row's key is cleaned once and only its hash kept (8 bytes a row,
        plus a set of them), so a million distinct keys cost tens of megabytes,
        not hundreds; only rows whose hash repeats are looked at again.
        """
        clean = self.clean_key
        digests = array("q", map(hash, map(clean, column(dataset, self.key_column))))
        seen, twice = set(), set()
        for digest in digests:
            (twice if digest in seen else seen).add(digest)
        del seen
        rows_by_key = defaultdict(list)
        for number, (digest, value) in enumerate(
            zip(digests, column(dataset, self.key_column), strict=True), 1
        ):
            if digest in twice and (key := clean(value)):
                rows_by_key[key].append(number)
        return {
            number: rows
            for rows in rows_by_key.values()
            if len(rows) > 1
            for number in rows
        }

    def import_instance(self, instance, row, **kwargs):
        self._before = self._values(instance) if instance.pk is not None else None
        errors = self._import_cells(instance, row)
        instance.import_row_number = kwargs.get("row_number")
        rows = self._rows_sharing_key.get(kwargs.get("row_number"))
        if rows:
            errors.setdefault(self.key_column, []).append(
                ValidationError(
                    "“%(key)s” appears more than once in the file (rows %(rows)s).",
                    code="duplicate_in_file",
                    params={
                        "key": self.key(row[self.key_column]),
                        "rows": list_numbers(rows),
                    },
                )
            )
        if errors:
            raise ValidationError(errors)

    def _import_cells(self, instance, row):
        """Set the file's cells on ``instance``; return ``{field: [errors]}``.

        What ``Resource.import_instance`` does for plain fields (a cell's
        ``ValueError`` is its field's error; a blank cell whose field does not
        save empty values keeps the value), without its three calls and a
        debug message per cell: a tenth of the import's time.
        """
        errors = {}
        for field in self._file_fields:
            try:
                value = field.widget.clean(row[field.column_name], row=row)
            except ValueError as error:
                errors[field.attribute] = [
                    ValidationError(force_str(error), code="invalid")
                ]
                continue
            if value is not None or field.saves_null_values:
                setattr(instance, field.attribute, value)
        return errors

    def _values(self, instance):
        """Return the imported fields' values, as the model would store them."""
        values = []
        for field in self._file_fields:
            value = field.get_value(instance)
            model_field = instance._meta.get_field(field.attribute)
            try:
                values.append(model_field.to_python(value))
            except ValidationError:
                values.append(value)
        return values

    def skip_row(self, instance, original, row, import_validation_errors=None):
        # A row that changes nothing is "unchanged": counted, not written.
        unchanged = (
            self._before is not None
            and not import_validation_errors
            and self._before == self._values(instance)
        )
        if unchanged and self.row_number <= SHOWN_ROWS:
            self._preview = [_cell(value) for value in self._before]
        return unchanged

    def validate_instance(self, instance, import_validation_errors=None):
        # The model's own rules, once per row, without a query per row: the
        # loader and the duplicate check stand in for uniqueness checks.
        errors = dict(import_validation_errors or {})
        try:
            instance.full_clean(
                exclude=[*errors, *self.clean_exclude],
                validate_unique=False,
                validate_constraints=False,
            )
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def after_save_instance(self, instance, row, **kwargs):
        super().after_save_instance(instance, row, **kwargs)
        # The preview shows the first rows and the first updated rows.
        updating = self._before is not None
        if self.row_number <= SHOWN_ROWS or (
            updating and self._updates_shown < SHOWN_ROWS
        ):
            after = [_cell(value) for value in self._values(instance)]
            before = [_cell(value) for value in self._before or after]
            self._preview = [
                new if old == new else f"{old} → {new}"
                for old, new in zip(before, after, strict=True)
            ]

    def after_import_row(self, row, row_result, **kwargs):
        # skip_diff leaves the preview empty: show the values (old → new).
        super().after_import_row(row, row_result, **kwargs)
        # What the row does, and to what: a confirm must find the same.
        self._digest.update(repr((row_result.import_type, self._before)).encode())
        if self._preview is not None:
            row_result.diff = self._preview
        if row_result.import_type == "update":
            self._updates_shown += 1
        self._preview = self._before = None

    def import_row(self, row, instance_loader, **kwargs):
        row_result = super().import_row(row, instance_loader, **kwargs)
        self._rows_done += 1
        if self.progress and self._rows_done >= self._next_report:
            self.progress(self._rows_done, self._rows)
            self._next_report = self._rows_done + max(1, self._rows // 100)
        return row_result

    def bulk_create(
        self, using_transactions, dry_run, raise_errors, batch_size=None, result=None
    ):
        instances, self.create_instances = self.create_instances, []
        # A preview writes nothing (on SQLite a write would lock everyone
        # else out for as long as the preview runs); the model's rules, the
        # key lookups and the duplicate check have judged every row already.
        if not instances or dry_run or self._import_fails(result):
            return
        try:
            # A savepoint: after a failed INSERT, PostgreSQL answers nothing else.
            with transaction.atomic(using=self.get_db_connection_name()):
                self._execute_inserts(instances)
                self._write_history(instances, "+")
        except IntegrityError as error:
            self.handle_import_error(
                result, self.explain_conflict(error, instances), raise_errors
            )
        except DatabaseError as error:
            self.handle_import_error(result, error, raise_errors)

    def explain_conflict(self, error, instances):
        """Say why new rows clashed with the database, which the preview allowed."""
        return ImportFileError(CHANGED_MEANWHILE % {"reason": error})

    def bulk_update(
        self, using_transactions, dry_run, raise_errors, batch_size=None, result=None
    ):
        # QuerySet.bulk_update() builds a CASE expression per row and field
        # (~1k rows/s); one parametrised UPDATE run for every row is far faster.
        if dry_run or self._import_fails(result):
            self.update_instances.clear()
            return
        instances = self.update_instances
        if not instances:
            return
        size = batch_size or len(instances)
        try:
            for start in range(0, len(instances), size):
                self._execute_updates(instances[start : start + size])
        except Exception as error:
            self.handle_import_error(result, error, raise_errors)
        finally:
            self.update_instances.clear()

    def _execute_inserts(self, instances):
        """Insert new rows like ``bulk_create()``, with less work per value.

        Django's bulk_create() rebuilds its multi-row INSERT for every batch
        and computes "now" for every row's auto_now fields; here the statement
        is built once per batch size and "now" once per call (a quarter of
        the import's time was spent there).
        """
        opts = self._meta.model._meta
        connection = connections[self.get_db_connection_name()]
        quote = connection.ops.quote_name
        fields = [field for field in opts.concrete_fields if not field.primary_key]
        # auto_now fields get one "now" for the whole call, prepared once.
        now = timezone.now()
        prepared_now = {}
        for field in fields:
            if getattr(field, "auto_now", False) or getattr(
                field, "auto_now_add", False
            ):
                prepared_now[field] = field.get_db_prep_save(now, connection)
                for instance in instances:
                    setattr(instance, field.attname, now)
        preparers = [
            self._preparer(field, connection, prepared_now) for field in fields
        ]
        rows = connection.ops.bulk_batch_size(fields, instances)
        placeholders = "({})".format(", ".join(["%s"] * len(fields)))
        returning = connection.features.can_return_rows_from_bulk_insert
        statements = {}
        with connection.cursor() as cursor:
            for start in range(0, len(instances), rows):
                batch = instances[start : start + rows]
                if len(batch) not in statements:
                    statements[len(batch)] = "INSERT INTO {} ({}) VALUES {}{}".format(
                        quote(opts.db_table),
                        ", ".join(quote(field.column) for field in fields),
                        ", ".join([placeholders] * len(batch)),
                        f" RETURNING {quote(opts.pk.column)}" if returning else "",
                    )
                params = [
                    prepare(instance) for instance in batch for prepare in preparers
                ]
                cursor.execute(statements[len(batch)], params)
                if returning:
                    for instance, (pk,) in zip(batch, cursor.fetchall(), strict=True):
                        instance.pk = pk
                        instance._state.adding = False
                        instance._state.db = connection.alias

    @staticmethod
    def _preparer(field, connection, prepared_now):
        """Return ``instance -> the field's INSERT parameter``."""
        if field in prepared_now:
            value = prepared_now[field]
            return lambda instance: value

        def prepare(instance):
            value = field.pre_save(instance, True)
            if type(value) is str and isinstance(field, CharField):
                # What get_db_prep_save() gives a text field's text: itself
                # (pre_save() normalized it already).
                return value
            return field.get_db_prep_save(value, connection)

        return prepare

    def _execute_updates(self, instances):
        opts = self._meta.model._meta
        connection = connections[self.get_db_connection_name()]
        quote = connection.ops.quote_name
        columns = [opts.get_field(name) for name in self.get_bulk_update_fields()]
        sql = "UPDATE {} SET {} WHERE {} = %s".format(
            quote(opts.db_table),
            ", ".join(f"{quote(field.column)} = %s" for field in columns),
            quote(opts.pk.column),
        )
        params = [
            [
                field.get_db_prep_save(getattr(instance, field.attname), connection)
                for field in columns
            ]
            + [instance.pk]
            for instance in instances
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
        self._write_history(instances, "~")

    def _write_history(self, instances, history_type):
        """Record the rows just written in their history, in one statement."""
        extra = self.history_columns(history_type)
        if history_type == "+" and not any(map(callable, extra.values())):
            # New rows are stored as they are: the database copies them.
            model = self._meta.model
            pks = [instance.pk for instance in instances]
            record_history(
                model.objects.using(self.get_db_connection_name()).filter(pk__in=pks),
                history_type=history_type,
                user=self._user,
                **extra,
            )
            return
        write_history(
            instances,
            history_type=history_type,
            user=self._user,
            using=self.get_db_connection_name(),
            **self.history_columns(history_type),
        )

    def history_columns(self, history_type):
        """Return other history columns to fill (a callable gets each row)."""
        return {}

    def get_bulk_update_fields(self):
        return [field.attribute for field in self.get_import_fields()]

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        if self.progress:
            self.progress(self._rows_done, self._rows)
        result.digest = self._digest.hexdigest()
        expected = kwargs.get("expected_digest")
        if (
            expected
            and expected != result.digest
            and not (result.has_errors() or result.has_validation_errors())
        ):
            # Someone added or changed what the file names since the preview:
            # what the user confirmed is not what would happen now.
            result.append_base_error(
                self.get_error_result_class()(ImportFileError(CHANGED_SINCE_PREVIEW))
            )
        if not self._is_dry_run(kwargs):
            invalidate_client_list()  # bulk writes send no signals
        if result.has_validation_errors() and not self._is_dry_run(kwargs):
            # Callers that only look at errors (the library's ``import``
            # command) must not report a refused file as imported.
            result.append_base_error(
                self.get_error_result_class()(ImportRefused(refusal_message(result)))
            )

    def _import_fails(self, result):
        # The whole file is rolled back anyway: do not write what is thrown away.
        return result is not None and (
            result.has_validation_errors() or bool(result.base_errors)
        )


class ClientResource(CrmResource):
    """Clients keyed by email: a known email updates that client."""

    columns = CLIENT_COLUMNS
    clean_exclude = ("avatar", *KEY_FIELDS)  # keys are derived when saved
    required_columns = ("email",)
    key_column = "email"

    class Meta:
        model = Client
        fields = names(CLIENT_COLUMNS)
        import_id_fields = ("email",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        #: The undoable record of a real (not dry-run) import.
        self.import_record = None

    def existing(self, keys):
        return Client.objects.by_email(keys)

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        if not self._dry_run:
            job = kwargs.get("job")
            self.import_record = ImportRecord.objects.create(
                user=self._user,
                job=job,
                file_name=(kwargs.get("file_name") or getattr(job, "file_name", ""))[
                    :255
                ],
            )

    def import_instance(self, instance, row, **kwargs):
        if instance.pk is not None:
            # What an undo of the import gives back (history_before).
            instance._history_before = {
                name: instance._meta.get_field(name).value_to_string(instance)
                for name in self.get_bulk_update_fields()
                if name not in KEY_FIELDS
            }
        super().import_instance(instance, row, **kwargs)

    def history_columns(self, history_type):
        if self.import_record is None:
            return {}
        columns = {"history_import_id": self.import_record.pk}
        if history_type == "~":
            columns["history_before"] = lambda instance: instance._history_before
        return columns

    def before_save_instance(self, instance, row, **kwargs):
        # Bulk writes skip save(): run what save() and auto_now would do.
        super().before_save_instance(instance, row, **kwargs)
        if instance._state.adding:
            instance.apply_create_rules()
        else:
            instance.updated_at = timezone.now()
            instance.refresh_keys()

    def get_bulk_update_fields(self):
        fields = [f for f in super().get_bulk_update_fields() if f != "email"]
        return [*fields, "updated_at", *KEY_FIELDS]

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        record = self.import_record
        if record is None or self._is_dry_run(kwargs):
            return
        if result.has_errors() or result.has_validation_errors():
            return  # rolled back with the rows
        record.created, record.updated = result.totals["new"], result.totals["update"]
        if record.created or record.updated:
            record.save(update_fields=["created", "updated"])
        else:
            record.delete()  # nothing to undo
            self.import_record = None

    def filter_export(self, queryset, **kwargs):
        queryset = super().filter_export(queryset, **kwargs)
        if "total_amount" not in queryset.query.annotations:
            queryset = queryset.with_order_totals()
        return queryset

    def explain_conflict(self, error, instances):
        taken = Client.objects.by_email(instance.email for instance in instances)
        rows = [
            f"row {instance.import_row_number} ({instance.email})"
            for instance in instances
            if normalize_email(instance.email) in taken
        ]
        if not rows:
            return super().explain_conflict(error, instances)
        return ImportFileError(
            "Nothing was imported: a client with the email of "
            f"{', '.join(rows[:10])} was added by someone else while the file was "
            "being imported. Upload the file again: those rows will update that "
            "client instead."
        )


class OrderResource(CrmResource):
    """Orders, each naming its client by email; an order's ``id`` updates it."""

    columns = ORDER_COLUMNS
    # The widget found the client in the database already.
    clean_exclude = ("client",)
    required_columns = ("client", "title", "amount")
    key_column = "id"

    class Meta:
        model = Order
        fields = names(ORDER_COLUMNS)
        import_id_fields = ["id"]  # a list: the library then allows files without it

    def existing(self, keys):
        return Order.objects.in_bulk([key for key in keys if key])

    def clean_key(self, value):
        """Return an order id cell as an id: digits only, in the id's range."""
        value = str(value or "").strip()
        if value.isascii() and value.isdigit() and 0 < int(value) < 2**63:
            return int(value)
        return None

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        self.fields["client"].widget.prefetch(column(dataset, "client"))

    def before_import_row(self, row, row_number=None, **kwargs):
        super().before_import_row(row, row_number=row_number, **kwargs)
        value = str(row.get("id") or "").strip()
        if value and self.key(value) is None:
            message = "“%(id)s” is not an order id (leave it blank for a new order)."
            raise ValidationError(
                {"id": ValidationError(message, code="invalid", params={"id": value})}
            )

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        if result.totals["new"] and not self._is_dry_run(kwargs):
            # One message for the whole file, not one per order.
            events.orders_imported(result.totals["new"])

    def filter_export(self, queryset, **kwargs):
        return super().filter_export(queryset, **kwargs).select_related("client")


def _cell(value):
    """Show a value in the preview the way the file writes it (long ones cut)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")  # 1E+9 is 1000000000
    text = str(value)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"
