"""Clients and their orders, with every rule that guards them."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.images import get_image_dimensions
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Count, DecimalField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse

EMAIL_TAKEN = "email_taken"
EMAIL_TAKEN_MESSAGE = "A client with this email already exists."
CLIENT_HAS_ORDERS = (
    "%(client)s has orders and cannot be deleted. "
    "Merge the client into another one in the admin instead."
)
MONEY = DecimalField(max_digits=12, decimal_places=2)


def email_domain(email):
    """Return the lowercased domain of an email address ('' if it has none)."""
    return email.rpartition("@")[2].strip().lower() if "@" in (email or "") else ""


def is_blocked_email(email):
    blocked = {d.lower() for d in settings.CRM_BLOCKED_EMAIL_DOMAINS}
    return email_domain(email) in blocked


def is_vip_email(email):
    vip = {d.lower() for d in settings.CRM_VIP_EMAIL_DOMAINS}
    return email_domain(email) in vip


def validate_email_domain_allowed(value):
    if is_blocked_email(value):
        raise ValidationError(
            "Email addresses at %(domain)s are not accepted.",
            code="blocked_domain",
            params={"domain": email_domain(value)},
        )


def validate_avatar(value):
    """Reject uploads over the size or pixel limits before they are stored."""
    if getattr(value, "_committed", True):
        return  # already stored: it was checked when it was uploaded
    if value.size > settings.CRM_AVATAR_MAX_BYTES:
        raise ValidationError(
            "The image is larger than %(limit)d MB.",
            code="avatar_too_large",
            params={"limit": settings.CRM_AVATAR_MAX_BYTES // (1024 * 1024)},
        )
    width, height = get_image_dimensions(value)
    if width is None or height is None:
        raise ValidationError("Upload a valid image.", code="invalid_image")
    if width * height > settings.CRM_AVATAR_MAX_PIXELS:
        raise ValidationError(
            "The image has more than %(limit)d megapixels.",
            code="avatar_too_many_pixels",
            params={"limit": settings.CRM_AVATAR_MAX_PIXELS // 1_000_000},
        )


class LowercaseEmailField(models.EmailField):
    """An EmailField that stores its value lowercased on every write path.

    Lowercasing in ``to_python`` covers forms and ``full_clean``, ``pre_save``
    covers ``save()`` and ``bulk_create``, and ``get_prep_value`` covers
    ``update()``, ``bulk_update`` and exact lookups.
    """

    def to_python(self, value):
        value = super().to_python(value)
        return value.strip().lower() if isinstance(value, str) else value

    def pre_save(self, model_instance, add):
        value = self.to_python(getattr(model_instance, self.attname))
        setattr(model_instance, self.attname, value)
        return value

    def get_prep_value(self, value):
        return self.to_python(super().get_prep_value(value))


class ClientQuerySet(models.QuerySet):
    def active(self):
        """Return clients with at least one order that is not done."""
        open_orders = Order.objects.filter(client=OuterRef("pk")).exclude(
            status=Order.Status.DONE
        )
        return self.filter(models.Exists(open_orders))

    def with_order_totals(self):
        """Annotate ``order_count`` and ``total_amount`` (0 when no orders).

        Correlated subqueries instead of JOIN + GROUP BY, so the numbers stay
        right next to other annotations and filters that join other rows.
        """
        orders = Order.objects.filter(client=OuterRef("pk")).order_by().values("client")
        return self.annotate(
            order_count=Coalesce(
                Subquery(orders.annotate(n=Count("pk")).values("n")), 0
            ),
            total_amount=Coalesce(
                Subquery(orders.annotate(s=Sum("amount")).values("s")),
                Value(Decimal("0.00")),
                output_field=MONEY,
            ),
        )

    def search(self, query):
        """Filter by name OR email containing ``query`` (``%`` and ``_`` literal)."""
        # PostgreSQL refuses NUL in a parameter, and no stored text contains one.
        query = (query or "").replace("\x00", "").strip()
        if not query:
            return self
        return self.filter(Q(name__icontains=query) | Q(email__icontains=query))


class Client(models.Model):
    name = models.CharField(max_length=100)
    email = LowercaseEmailField(validators=[validate_email_domain_allowed])
    phone = models.CharField(max_length=15, blank=True)
    avatar = models.ImageField(
        upload_to="avatars/", blank=True, validators=[validate_avatar]
    )
    vip = models.BooleanField(
        "VIP",
        default=False,
        help_text="Set automatically for emails at a VIP domain.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClientQuerySet.as_manager()

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
        permissions = (
            ("import_client", "Can import clients"),
            ("export_client", "Can export clients"),
        )

    def __str__(self):
        return f"{self.name} <{self.email}>"

    def save(self, *args, **kwargs):
        if self._state.adding:
            self.apply_create_rules()
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("clients:edit", args=(self.pk,))

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


class Order(models.Model):
    class Status(models.TextChoices):
        NEW = "NEW", "New"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        DONE = "DONE", "Done"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="orders")
    title = models.CharField(max_length=200)
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    status = models.CharField(
        max_length=20, choices=Status, default=Status.NEW, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

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

    It exists so that the admin can sort clients by these numbers through an
    index; the displayed numbers still come from ``with_order_totals()``. The
    triggers (migration 0002) update it on every write to orders, including
    ``bulk_create``, ``QuerySet.update()``, raw SQL and the merge's single
    UPDATE, which Python signals would miss. The total is kept in cents so
    that it stays exact on SQLite, which sums decimals as floats.
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
        return f"{self.client_id}: {self.order_count} orders, {self.total_amount}"

    @property
    def total_amount(self):
        return (Decimal(self.total_cents) / 100).quantize(Decimal("0.01"))
