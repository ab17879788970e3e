"""CSV import/export resources, shared by the admin and the command line."""

from collections import defaultdict
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models.functions import Lower
from django.utils import timezone
from import_export import fields, resources, widgets
from import_export.instance_loaders import BaseInstanceLoader

from .caching import invalidate_client_list
from .exports import HEADER as CLIENT_COLUMNS
from .formatting import escape_formula, format_money, unescape_formula
from .models import Client, Order

BOM = "\ufeff"
MAX_LISTED_ROW_ERRORS = 20


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing of it was."""


class ImportRefused(ImportFileError):
    """Some rows were invalid, so nothing was imported (their errors say why)."""


EMAIL_FIELD = Client._meta.get_field("email")


def email_key(value):
    """Return the email as the model stores it (stripped, lowercased), or ''."""
    return EMAIL_FIELD.to_python(value) or ""


def clients_by_email(keys):
    """Return {email: client} for the given stored-form emails, in few queries."""
    # A key with NUL cannot exist (PostgreSQL refuses it); its row gets an error.
    keys = sorted({key for key in keys if key and "\x00" not in key})
    # SQLite caps a query's parameters; other backends get big IN lists.
    chunk = connections[Client.objects.db].features.max_query_params or 20_000
    found = {}
    for start in range(0, len(keys), chunk):
        # Lower("email") is what the unique index is built on.
        clients = (
            Client.objects.alias(email_key=Lower("email"))
            .filter(email_key__in=keys[start : start + chunk])
            .order_by()
        )
        found.update((client.email.lower(), client) for client in clients)
    return found


SEMICOLON_FILE = (
    "The file separates its columns with “;”. Save it as “CSV UTF-8 (Comma "
    "delimited)” in Excel, or with “,” as the field delimiter in LibreOffice."
)


def unreadable_file_message(error):
    """Say why a file could not be read as a table, in the user's terms."""
    if isinstance(error, UnicodeError):
        return (
            "The file is not UTF-8 text. In Excel use Save As → “CSV UTF-8 "
            "(Comma delimited)”; in LibreOffice choose the UTF-8 character set."
        )
    return (
        "The file could not be read as CSV: every row needs the same number of "
        "columns as the header, separated by “,” (save it as “CSV UTF-8”)."
    )


def check_text(value):
    """Refuse NUL characters, as Django's form fields do."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Null characters are not allowed.")
    return value


def row_error_lines(result):
    """Return one 'row N: field: reason' line per problem of an import result."""
    lines = [
        str(error.error)
        for error in result.base_errors
        if not isinstance(error.error, ImportRefused)
    ]
    for number, errors in result.row_errors():
        lines.extend(f"row {number}: {error.error}" for error in errors)
    for row in result.invalid_rows:
        for field, messages in row.field_specific_errors.items():
            lines.extend(f"row {row.number}: {field}: {m}" for m in messages)
        lines.extend(f"row {row.number}: {m}" for m in row.non_field_specific_errors)
    return lines


def _list_numbers(numbers):
    numbers = [str(n) for n in numbers]
    return f"{', '.join(numbers[:-1])} and {numbers[-1]}"


class TextWidget(widgets.CharWidget):
    """Text cell: surrounding spaces dropped, line breaks stored as ``\\n``.

    Whether a quoted cell's CRLF reaches us as CRLF depends on where the upload
    waited between preview and confirm (a temp file reads it as LF, the shared
    cache keeps it), so store one form either way.
    """

    def clean(self, value, row=None, **kwargs):
        value = unescape_formula(check_text(super().clean(value, row, **kwargs)))
        return value.replace("\r\n", "\n").replace("\r", "\n").strip()


class YesNoWidget(widgets.BooleanWidget):
    """Boolean cell: 1/0, true/false, yes/no in any case; blank keeps the value."""

    TRUE_WORDS = {"1", "true", "yes", "y"}
    FALSE_WORDS = {"0", "false", "no", "n"}

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool) or value is None:
            return value
        word = str(value).strip().lower()
        if word in {"", "none", "null"}:
            return None
        if word in self.TRUE_WORDS:
            return True
        if word in self.FALSE_WORDS:
            return False
        raise ValueError(f"“{value}” is not yes/no (use 1 or 0).")


class MoneyWidget(widgets.DecimalWidget):
    """Amount cell; exported with two decimals (``30.50``)."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except (InvalidOperation, ValueError, TypeError):
            raise ValueError(f"“{value}” is not a number.") from None

    def render(self, value, obj=None, **kwargs):
        if isinstance(value, Decimal | int) and not kwargs.get("force_native_type"):
            return format_money(value)
        return super().render(value, obj, **kwargs)


class StatusWidget(widgets.CharWidget):
    """Status cell: ``DONE``, ``done`` and ``In progress`` all work; blank is NEW."""

    def clean(self, value, row=None, **kwargs):
        value = super().clean(value, row, **kwargs).strip()
        return value.upper().replace(" ", "_") or None


class ClientEmailWidget(widgets.ForeignKeyWidget):
    """A client referenced by email, case-insensitively."""

    def __init__(self, **kwargs):
        super().__init__(Client, field="email", **kwargs)
        self.clients = None

    def prefetch(self, values):
        """Load every client the column names in one go."""
        self.clients = clients_by_email(email_key(value) for value in values)

    def clean(self, value, row=None, **kwargs):
        key = email_key(check_text(value))
        if not key:
            raise ValueError("Enter the client's email.")
        if self.clients is None:
            self.clients = clients_by_email([key])
        try:
            return self.clients[key]
        except KeyError:
            raise ValueError(f"No client with email “{value}”.") from None


class EmailInstanceLoader(BaseInstanceLoader):
    """Find the clients a file updates, by email, in one query per few thousand."""

    def __init__(self, resource, dataset=None):
        super().__init__(resource, dataset)
        self.column = resource.fields["email"].column_name
        values = dataset[self.column] if self.column in (dataset.headers or ()) else []
        self.clients = clients_by_email(email_key(value) for value in values)

    def get_instance(self, row):
        return self.clients.get(email_key(row.get(self.column)))


class CrmResource(resources.ModelResource):
    """A resource that imports whole files or nothing, fast, and exports safely."""

    # Exported for reference, never imported: ids do not match rows.
    id = fields.Field(
        attribute="id", column_name="id", readonly=True, widget=widgets.IntegerWidget()
    )
    created_at = fields.Field(
        attribute="created_at",
        column_name="created_at",
        readonly=True,
        widget=widgets.DateTimeWidget(),
    )

    #: Model fields that ``full_clean`` leaves alone on import.
    clean_exclude = ()
    #: Columns a file must have.
    required_columns = ()

    class Meta:
        use_bulk = True
        batch_size = 1000
        skip_diff = True
        use_transactions = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._import_fields = None
        self._columns = []
        self._preview_fields = []
        self._preview = None

    # Import -----------------------------------------------------------------

    def import_data(self, dataset, *args, **kwargs):
        # A file is imported whole or not at all, whoever calls us.
        kwargs.update(use_transactions=True, rollback_on_validation_errors=True)
        return super().import_data(dataset, *args, **kwargs)

    def get_import_fields(self):
        if self._import_fields is None:
            self._import_fields = [
                field for field in super().get_import_fields() if not field.readonly
            ]
        return self._import_fields

    def before_import(self, dataset, **kwargs):
        """Tidy the header (Excel's BOM, spaces, case) and drop unknown columns."""
        super().before_import(dataset, **kwargs)
        if not dataset.headers:
            raise ImportFileError("The file is empty: it needs a header row.")
        dataset.headers = [
            str(header or "").replace(BOM, "").strip().lower()
            for header in dataset.headers
        ]
        if len(dataset.headers) == 1 and ";" in dataset.headers[0]:
            raise ImportFileError(SEMICOLON_FILE)
        while len(dataset) and not any(str(cell or "").strip() for cell in dataset[-1]):
            del dataset[-1]  # spreadsheets often leave empty rows at the end
        twice = sorted({h for h in dataset.headers if dataset.headers.count(h) > 1})
        if twice:
            raise ImportFileError(f"The file has the {', '.join(twice)} column twice.")
        missing = [c for c in self.required_columns if c not in dataset.headers]
        if missing:
            raise ImportFileError(f"The file has no {', '.join(missing)} column.")
        wanted = {field.column_name for field in self.get_import_fields()}
        for header in list(dataset.headers):
            if header not in wanted:
                del dataset[header]  # e.g. ``id``: never used to match rows
        self._columns = list(dataset.headers)
        by_column = {field.column_name: field for field in self.get_import_fields()}
        self._preview_fields = [by_column[column] for column in self._columns]

    def validate_instance(
        self, instance, import_validation_errors=None, validate_unique=True
    ):
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
        if self._is_dry_run(kwargs):
            self._preview = [field.export(instance) for field in self._preview_fields]

    def after_import_row(self, row, row_result, **kwargs):
        # skip_diff leaves the admin preview empty: show the values instead.
        super().after_import_row(row, row_result, **kwargs)
        if self._preview is not None and row_result.diff is None:
            row_result.diff = self._preview
        self._preview = None

    def bulk_create(self, *args, result=None, **kwargs):
        if self._import_fails(result):
            self.create_instances.clear()
            return
        super().bulk_create(*args, result=result, **kwargs)

    def bulk_update(
        self, using_transactions, dry_run, raise_errors, batch_size=None, result=None
    ):
        # QuerySet.bulk_update() builds a CASE expression per row and field
        # (~1k rows/s); one parametrised UPDATE run for every row is far faster.
        if self._import_fails(result) or (dry_run and not using_transactions):
            self.update_instances.clear()
            return
        if not self.update_instances:
            return
        try:
            self._execute_updates(self.update_instances)
        except Exception as error:
            self.handle_import_error(result, error, raise_errors)
        finally:
            self.update_instances.clear()

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

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        result.diff_headers = list(dataset.headers or ())
        if not self._is_dry_run(kwargs):
            invalidate_client_list()  # bulk writes send no signals
        if result.has_validation_errors() and not self._is_dry_run(kwargs):
            # Callers that only look at errors (the library's ``import``
            # command) must not report a refused file as imported.
            lines = row_error_lines(result)
            more = len(lines) - MAX_LISTED_ROW_ERRORS
            message = "Nothing was imported: " + "; ".join(
                lines[:MAX_LISTED_ROW_ERRORS]
            )
            if more > 0:
                message += f"; and {more} more"
            result.append_base_error(
                self.get_error_result_class()(ImportRefused(message))
            )

    def _import_fails(self, result):
        # The whole file is rolled back anyway: do not write what is thrown away.
        return result is not None and (
            result.has_validation_errors() or bool(result.base_errors)
        )

    # Export -----------------------------------------------------------------

    def export_field(self, field, instance, **kwargs):
        return escape_formula(super().export_field(field, instance, **kwargs))


class ClientResource(CrmResource):
    """Clients keyed by email: a known email updates that client."""

    name = fields.Field(attribute="name", column_name="name", widget=TextWidget())
    email = fields.Field(attribute="email", column_name="email", widget=TextWidget())
    phone = fields.Field(attribute="phone", column_name="phone", widget=TextWidget())
    vip = fields.Field(
        attribute="vip",
        column_name="vip",
        widget=YesNoWidget(),
        saves_null_values=False,
    )
    order_count = fields.Field(column_name="order_count", readonly=True)
    total_amount = fields.Field(column_name="total_amount", readonly=True)

    clean_exclude = ("avatar",)
    required_columns = ("email",)

    class Meta:
        model = Client
        fields = CLIENT_COLUMNS  # the same columns as /clients/export.csv
        import_id_fields = ("email",)
        instance_loader_class = EmailInstanceLoader

    def before_import(self, dataset, **kwargs):
        self._rows_sharing_email = {}
        super().before_import(dataset, **kwargs)
        rows_by_email = defaultdict(list)
        if "email" in self._columns:
            for number, value in enumerate(dataset["email"], 1):
                if key := email_key(value):
                    rows_by_email[key].append(number)
        self._rows_sharing_email = {
            number: rows
            for rows in rows_by_email.values()
            if len(rows) > 1
            for number in rows
        }

    def import_instance(self, instance, row, **kwargs):
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        rows = self._rows_sharing_email.get(kwargs.get("row_number"))
        if rows:
            errors.setdefault("email", []).append(
                ValidationError(
                    "“%(email)s” appears more than once in the file (rows %(rows)s).",
                    code="duplicate_in_file",
                    params={
                        "email": email_key(row["email"]),
                        "rows": _list_numbers(rows),
                    },
                )
            )
        if errors:
            raise ValidationError(errors)

    def before_save_instance(self, instance, row, **kwargs):
        # Bulk writes skip save(): run what save() and auto_now would do.
        super().before_save_instance(instance, row, **kwargs)
        if instance._state.adding:
            instance.apply_create_rules()
        else:
            instance.updated_at = timezone.now()

    def get_bulk_update_fields(self):
        keys = set(self.get_import_id_fields())
        columns = [
            f.attribute for f in self.get_import_fields() if f.attribute not in keys
        ]
        return [*columns, "updated_at"]

    def filter_export(self, queryset, **kwargs):
        queryset = super().filter_export(queryset, **kwargs)
        if "total_amount" not in queryset.query.annotations:
            queryset = queryset.with_order_totals()
        return queryset

    def dehydrate_order_count(self, client):
        return client.order_count

    def dehydrate_total_amount(self, client):
        return format_money(client.total_amount)


class OrderResource(CrmResource):
    """Orders, each naming its client by email in the ``client`` column."""

    client = fields.Field(
        attribute="client", column_name="client", widget=ClientEmailWidget()
    )
    title = fields.Field(attribute="title", column_name="title", widget=TextWidget())
    amount = fields.Field(
        attribute="amount", column_name="amount", widget=MoneyWidget()
    )
    status = fields.Field(
        attribute="status",
        column_name="status",
        widget=StatusWidget(),
        saves_null_values=False,
    )

    # The widget found the client in the database already.
    clean_exclude = ("client",)
    required_columns = ("client", "title", "amount")

    class Meta:
        model = Order
        fields = ("id", "client", "title", "amount", "status", "created_at")
        import_id_fields = ()
        force_init_instance = True  # an order file adds orders

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        self.fields["client"].widget.prefetch(dataset["client"])

    def filter_export(self, queryset, **kwargs):
        return super().filter_export(queryset, **kwargs).select_related("client")
