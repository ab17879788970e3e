"""Clients and their orders, with every rule that guards them."""

from decimal import Decimal

from django.conf import settings
from django.core import validators
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connections, models
from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import IsNull
from django.urls import reverse
from simple_history.models import HistoricalRecords

from . import avatars
from .fields import AvatarField, KeyField, LowercaseEmailField, PhoneField
from .history import history_user
from .rules import (
    email_key,
    is_vip_email,
    name_key,
    normalize_email,
    normalize_phone,
    phone_key,
    validate_avatar,
    validate_email_domain_allowed,
    validate_no_hidden_characters,
    validate_visible,
)
from .search import AnyOf, clean_search_query, contains_any_case

EMAIL_TAKEN = "email_taken"
EMAIL_TAKEN_MESSAGE = "A client with this email already exists."
CLIENT_HAS_ORDERS = (
    "%(client)s has orders and cannot be deleted. "
    "Merge the client into another one in the admin instead."
)
CENT = Decimal("0.01")


class MoneyOutput(DecimalField):
    """The output of a money expression: exactly two decimals on every database.

    SQLite hands back computed decimals as floats with up to 15 digits
    (``30.5000000000000``), which Django rounds only for plain columns.
    """

    def from_db_value(self, value, expression, connection):
        return None if value is None else Decimal(value).quantize(CENT)


MONEY = MoneyOutput(max_digits=12, decimal_places=2)


class CentsToAmount(Func):
    """A whole number of cents as an amount with two decimals, exactly."""

    # ``100.0``: SQLite would divide two integers as integers. Its decimals are
    # floats, which the field's converter rounds back to two places.
    template = "CAST(%(expressions)s / 100.0 AS NUMERIC(14, 2))"
    output_field = MONEY


class ClientQuerySet(models.QuerySet):
    def active(self):
        """Return clients with at least one order that is not done."""
        open_orders = Order.objects.filter(client=OuterRef("pk")).exclude(
            status=Order.Status.DONE
        )
        return self.filter(models.Exists(open_orders))

    def with_order_totals(self):
        """Annotate ``order_count`` and ``total_amount`` (0 when no orders).

        Both come from the client's trigger-kept ``ClientTotals`` row, the
        numbers the admin sorts by. A primary-key subquery rather than a join:
        the numbers stay right next to other joins and filters, and a count of
        the rows does not read the totals at all.
        """
        # No ordering: ClientTotals orders by client, which would join and sort.
        totals = ClientTotals.objects.filter(client=OuterRef("pk")).order_by()
        return self.annotate(
            order_count=Coalesce(Subquery(totals.values("order_count")), 0),
            total_amount=Coalesce(
                Subquery(totals.values(amount=CentsToAmount("total_cents"))),
                Value(Decimal("0.00")),
                output_field=MONEY,
            ),
        )

    def by_email(self, emails):
        """Return ``{normalized email: client}`` for ``emails``, in few queries."""
        # A key with NUL cannot exist (PostgreSQL refuses it in a parameter).
        keys = sorted({normalize_email(e) for e in emails} - {""})
        keys = [key for key in keys if "\x00" not in key]
        # SQLite caps a query's parameters; other backends get big IN lists.
        chunk = connections[self.db].features.max_query_params or 20_000
        found = {}
        for start in range(0, len(keys), chunk):
            # Stored emails are normalized: the plain email index answers.
            clients = self.filter(email__in=keys[start : start + chunk]).order_by()
            found.update((client.email, client) for client in clients)
        return found

    def duplicate_groups(self, key):
        """Return ``{key: value, "size": n}`` rows for keys two or more clients share.

        ``key`` is one of ``KEY_FIELDS``; blank keys are not duplicates. Read
        off the key's index, in key order.
        """
        if key not in KEY_FIELDS:
            raise ValueError(f"Not a duplicate key: {key}")
        return (
            self.exclude(**{key: ""})
            .order_by()
            .values(key)
            .annotate(size=models.Count("pk"))
            .filter(size__gt=1)
            .order_by(key)
        )

    def search(self, query, *, phone=False):
        """Filter by name OR email containing ``query`` in any letter case.

        ``%`` and ``_`` match literally. With ``phone=True`` the phone number
        matches too, separators ignored (``555-0101`` finds ``5550101``).
        """
        query = clean_search_query(query)
        if not query:
            return self
        vendor = connections[self.db].vendor
        condition = contains_any_case("name", query, vendor) | contains_any_case(
            "email", query, vendor
        )
        digits = normalize_phone(query)
        if phone and digits:
            condition |= Q(phone__contains=digits)
        return self.filter(condition)


KEY_FIELDS = ("email_key", "name_key", "phone_key")


class ClientHistory(models.Model):
    """What a client's history rows carry besides the client's fields."""

    #: The import that wrote this row (its undo finds the rows by it).
    history_import = models.ForeignKey(
        "crm.ImportRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    #: For a row an import updated: the imported fields' values before it.
    history_before = models.JSONField(null=True, blank=True)

    class Meta:
        abstract = True


class Client(models.Model):
    name = models.CharField(
        max_length=100, validators=[validate_no_hidden_characters, validate_visible]
    )
    email = LowercaseEmailField(validators=[validate_email_domain_allowed])
    phone = PhoneField(max_length=15, blank=True)
    avatar = AvatarField(upload_to="avatars/", blank=True, validators=[validate_avatar])
    vip = models.BooleanField(
        "VIP",
        default=False,
        help_text="Set automatically for emails at a VIP domain.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # What "Possible duplicates" groups by (see KeyField).
    email_key = KeyField(source="email", function=email_key)
    name_key = KeyField(source="name", function=name_key)
    phone_key = KeyField(source="phone", function=phone_key)

    objects = ClientQuerySet.as_manager()
    history = HistoricalRecords(
        excluded_fields=KEY_FIELDS,
        get_user=history_user,
        bases=[ClientHistory],
        # Fewer indexes to keep up to date on a bulk import's history rows.
        no_db_index=["created_at"],
    )

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = (
            models.UniqueConstraint(
                Lower("email"),
                name="crm_client_email_ci_unique",
                violation_error_code=EMAIL_TAKEN,
                violation_error_message=EMAIL_TAKEN_MESSAGE,
            ),
        )
        # Emails are stored normalized, so an exact lookup (``email=``,
        # ``email__in``) finds them here; the unique index above is on
        # LOWER(email), which only a LOWER(...) lookup can use.
        indexes = (models.Index(fields=("email",), name="crm_client_email_idx"),)
        permissions = (
            ("import_client", "Can import clients"),
            ("export_client", "Can export clients"),
        )

    def __str__(self):
        return f"{self.name} <{self.email}>"

    def save(self, *args, **kwargs):
        if self._state.adding:
            self.apply_create_rules()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            # A key follows its field: saved whenever the field is.
            keys = [
                key
                for key in KEY_FIELDS
                if self._meta.get_field(key).source in update_fields
            ]
            update_fields = kwargs["update_fields"] = [*update_fields, *keys]
        tracks_avatar = not self._state.adding and (
            update_fields is None or "avatar" in update_fields
        )
        before = self._avatar_in_database() if tracks_avatar else None
        super().save(*args, **kwargs)
        self._stored_avatar = self.avatar.name or ""
        if before and before != self._stored_avatar:
            avatars.delete_when_unused(before, model=Client)

    def get_absolute_url(self):
        return reverse("clients:edit", args=(self.pk,))

    def refresh_keys(self):
        """Set the duplicate keys from the fields (for writes that skip ``save``)."""
        for name in KEY_FIELDS:
            field = self._meta.get_field(name)
            setattr(self, name, field.function(getattr(self, field.source)))

    @classmethod
    def from_db(cls, db, field_names, values):
        client = super().from_db(db, field_names, values)
        if "avatar" in field_names:
            # What is stored, to delete the file when it is replaced or cleared.
            client._stored_avatar = values[field_names.index("avatar")]
        return client

    def _avatar_in_database(self):
        if hasattr(self, "_stored_avatar"):
            return self._stored_avatar
        return (
            Client.objects.filter(pk=self.pk).values_list("avatar", flat=True).first()
        )

    def apply_create_rules(self):
        """Apply the rules every new client gets, whichever path creates it."""
        if is_vip_email(self.email):
            self.vip = True

    def validate_constraints(self, exclude=None):
        # The case-insensitive unique constraint is on an expression, so Django
        # reports it as a form-wide error; users should see it on the field.
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict({})
            general = errors.pop(NON_FIELD_ERRORS, [])
            for item in general:
                key = "email" if item.code == EMAIL_TAKEN else NON_FIELD_ERRORS
                errors.setdefault(key, []).append(item)
            raise ValidationError(errors) from None


class OrderQuerySet(models.QuerySet):
    #: Up to this many clients matching a search, the order search looks their
    #: orders up by client id (see ``search``).
    search_client_ids = 5_000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # (the WHERE clause search() left, one queryset per matching branch)
        self._search_branches = None

    def _clone(self):
        clone = super()._clone()
        clone._search_branches = self._search_branches
        return clone

    def search(self, query):
        """Filter by title, client name OR client email containing ``query``.

        Any letter case, ``%`` and ``_`` literal, like ``ClientQuerySet.search``
        (no phone numbers). On PostgreSQL the matching clients are found
        first, through their trigram indexes; up to ``search_client_ids`` of
        them go in as a list of ids, and a slice of the orders (a page, the
        first rows a count reads) is read from the title's trigram index and
        from ``crm_order_client_created`` separately (``_first_of_branches``).
        A term that many clients match is common: there each order is checked
        against its client (by primary key) as the orders are read in the
        list's order, and a page fills within the first few hundred. (A plain
        ``client IN (subquery)`` next to an ``OR`` reads every order.) The
        matching clients are read when ``search`` is called.
        """
        query = clean_search_query(query)
        if not query:
            return self
        vendor = connections[self.db].vendor
        clients = Client.objects.using(self.db).search(query).order_by()
        condition = contains_any_case("title", query, vendor)
        if vendor != "postgresql":
            return self.filter(condition | Q(client__in=clients))
        limit = self.search_client_ids
        ids = list(clients.values_list("pk", flat=True)[: limit + 1])
        if not ids:
            return self.filter(condition)
        if len(ids) <= limit:
            by_client = Q(AnyOf(F("client_id"), ids))
            found = self.filter(condition | by_client)
            branches = (self.filter(condition), self.filter(by_client))
            found._search_branches = (found.query.where, *branches)
            return found
        # A scalar subquery, looked up per order by primary key as the orders
        # are read: PostgreSQL would hash an EXISTS or IN, reading every
        # matching client first (118,000 for "gmail" at a million clients).
        matches = clients.filter(pk=OuterRef("client_id")).values(hit=Value(1))
        return self.filter(condition | Q(IsNull(Subquery(matches), False)))

    def __getitem__(self, k):
        """Slice a search branch by branch wherever that gives the same rows."""
        if self._result_cache is None and self._search_branches is not None:
            stop = k + 1 if isinstance(k, int) else getattr(k, "stop", None)
            first = self._first_of_branches(stop)
            if first is not None:
                return first[k]
        return super().__getitem__(k)

    def _first_of_branches(self, stop):
        """Return the search's orders among the first ``stop`` of each branch.

        None where those might not hold the list's first ``stop`` rows. The
        ``OR`` of the title and the client ids has no index to be read in
        order: PostgreSQL reads the orders newest first and checks each, some
        40,000 rows for a page of a term in 2,500 clients (one order in 400),
        seconds for a few hundred clients whose orders are not spread evenly
        over time. A branch alone is read from its own index, and the first
        ``stop`` rows of the list are among the first ``stop`` of its
        branches; each row still has to match the whole search.
        """
        where, by_title, by_client = self._search_branches
        query = self.query
        if (
            not isinstance(stop, int)
            or stop <= 0
            # Filtered again since: a branch's first rows may not pass.
            or query.where != where
            or query.is_sliced
            or query.combinator
            or query.distinct
            or query.annotations
            or query.extra
            or query.extra_order_by
            or not query.standard_ordering
        ):
            return None
        if query.order_by:
            ordering = tuple(query.order_by)
        elif query.default_ordering:
            ordering = tuple(self.model._meta.ordering)
        else:
            ordering = ()
        # With ties in the order a branch's first rows may be other ones.
        pk_names = {"pk", self.model._meta.pk.name}
        if ordering and (
            "?" in ordering
            or not any(
                isinstance(part, str) and part.lstrip("-") in pk_names
                for part in ordering
            )
        ):
            return None
        by_title = by_title.order_by(*ordering)
        by_client = by_client.order_by(*ordering)
        if ordering:
            # The same first sort key for every row, and no index has it: the
            # clients' orders are read off crm_order_client_created and sorted,
            # rather than found by walking another index in the list's order.
            same_for_all = ExpressionWrapper(F("client_id") * 0, IntegerField())
            by_client = by_client.order_by(same_for_all, *ordering)
        firsts = (by_title.values("pk")[:stop], by_client.values("pk")[:stop])
        first = self.filter(pk__in=firsts[0].union(firsts[1], all=True))
        first._search_branches = None
        return first


class Order(models.Model):
    class Status(models.TextChoices):
        NEW = "NEW", "New"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        DONE = "DONE", "Done"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="orders")
    title = models.CharField(max_length=200)
    amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[validators.MinValueValidator(Decimal("0"))],
    )
    status = models.CharField(
        max_length=20, choices=Status, default=Status.NEW, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrderQuerySet.as_manager()
    history = HistoricalRecords(get_user=history_user, no_db_index=["created_at"])

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = (
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="crm_order_amount_non_negative"
            ),
        )
        indexes = (
            models.Index(fields=("client", "amount"), name="crm_order_client_amount"),
        )
        permissions = (
            ("import_order", "Can import orders"),
            ("export_order", "Can export orders"),
        )

    def __str__(self):
        return self.title


class ClientTotals(models.Model):
    """Each client's order count and total, kept by database triggers.

    See ``crm/totals.py``: the triggers update it on every write to orders,
    including ``bulk_create``, ``QuerySet.update()`` and raw SQL, which Python
    signals would miss. The total is kept in cents so that it stays exact on
    SQLite, which sums decimals as floats.
    """

    client = models.OneToOneField(
        Client,
        on_delete=models.DO_NOTHING,  # the delete trigger removes the row
        primary_key=True,
        related_name="totals",
    )
    order_count = models.PositiveIntegerField(default=0)
    total_cents = models.BigIntegerField(default=0)

    class Meta:
        ordering = ("client",)
        verbose_name_plural = "client totals"
        # Unique only to tell the query planner so: with the client column as
        # tie-breaker a page sorted by a total reads straight off the index,
        # without sorting (and computing the page's columns for) every client.
        constraints = (
            models.UniqueConstraint(
                fields=("order_count", "client"), name="crm_totals_count_uniq"
            ),
            models.UniqueConstraint(
                fields=("total_cents", "client"), name="crm_totals_cents_uniq"
            ),
        )

    def __str__(self):
        total = Decimal(self.total_cents).scaleb(-2)
        return f"{self.client_id}: {self.order_count} orders, {total}"


class Job(models.Model):
    """Work done in the background for someone: a big import or export."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Running"
        PREVIEWED = "previewed", "Previewed: waiting for confirmation"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Phase(models.TextChoices):
        PREVIEW = "preview", "Preview"
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"

    kind = models.CharField(max_length=10, choices=Kind)
    #: What it imports or exports: "client" or "order".
    model_name = models.CharField(max_length=20)
    phase = models.CharField(max_length=10, choices=Phase)
    state = models.CharField(
        max_length=10, choices=State, default=State.QUEUED, db_index=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="crm_jobs",
        verbose_name="started by",
    )
    file_name = models.CharField(max_length=255, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    #: Counts, the preview's first rows, messages, the errors file's token.
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    #: For an export: the list's filtered query, pickled, and the columns.
    query = models.BinaryField(null=True, blank=True, editable=False)
    columns = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")

    def __str__(self):
        what = {"client": "clients", "order": "orders"}.get(
            self.model_name, self.model_name
        )
        name = f" ({self.file_name})" if self.file_name else ""
        return f"{self.get_kind_display()} of {what}{name} #{self.pk}"

    @property
    def finished(self):
        return self.state in (self.State.DONE, self.State.FAILED)


class SentReport(models.Model):
    """A monthly order report that went out: a retried task does not send it twice."""

    month = models.DateField(unique=True, help_text="The first day of the month.")
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.TextField(blank=True)
    orders = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-month",)

    def __str__(self):
        return f"Order report for {self.month:%Y-%m}"


# Undo ----------------------------------------------------------------------------


class MergeRecord(models.Model):
    """A merge, with what its undo needs: the merged clients and the survivor before."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name="merged by",
    )
    survivor_id = models.BigIntegerField(db_index=True)
    survivor_repr = models.CharField("survivor", max_length=400)
    #: The merged clients as they were: ``{field: value as text}`` each.
    merged = models.JSONField(default=list)
    merged_repr = models.TextField("merged clients")
    #: The survivor's values before and after the merge, for the fields it set.
    survivor_before = models.JSONField(default=dict)
    survivor_after = models.JSONField(default=dict)
    orders_moved = models.PositiveIntegerField(default=0)
    #: Avatar files of the merged clients, kept while the merge can be undone.
    files = models.TextField(blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name = "merge"

    def __str__(self):
        return f"Merge into {self.survivor_repr} #{self.pk}"


class MergedOrder(models.Model):
    """An order a merge moved, and the client it belonged to."""

    record = models.ForeignKey(
        MergeRecord, on_delete=models.CASCADE, related_name="orders"
    )
    order_id = models.BigIntegerField()
    client_id = models.BigIntegerField()

    class Meta:
        ordering = ("record", "order_id")
        # The undo's UPDATE finds each order's first client through it.
        constraints = (
            models.UniqueConstraint(
                fields=("record", "order_id"), name="crm_mergedorder_record_order"
            ),
        )

    def __str__(self):
        return f"Order {self.order_id} from client {self.client_id}"


class ImportRecord(models.Model):
    """A client import; its history rows say what it created and updated."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name="imported by",
    )
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    file_name = models.CharField(max_length=255, blank=True)
    created = models.PositiveIntegerField("clients created", default=0)
    updated = models.PositiveIntegerField("clients updated", default=0)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name = "client import"

    def __str__(self):
        name = f" of {self.file_name}" if self.file_name else ""
        return f"Import{name} #{self.pk}"
