"""The API's filters, search and ordering: a FilterSet per model.

django-filter validates every value with a form field, and DRF's filter
backend turns an invalid one into a 400 naming the parameter. The fields here
are stricter than the defaults where those would quietly ignore a value
(``?vip=maybe``) or let it reach the database (``?client=10**30``).
"""

import datetime

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from ..models import Client, Order

MAX_ID = 2**63 - 1
ONE_DAY = datetime.timedelta(days=1)


class StrictBooleanField(forms.Field):
    """``true``/``false`` or ``1``/``0``; anything else is an error, not "any"."""

    default_error_messages = {"invalid": "Enter true or false (or 1 or 0)."}
    values = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return self.values[str(value).strip().lower()]
        except KeyError:
            raise ValidationError(
                self.error_messages["invalid"], code="invalid"
            ) from None


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField


class DayFilter(filters.DateFilter):
    """A calendar day as ``YYYY-MM-DD``; the bound includes the whole day."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        kwargs.setdefault("method", "filter_day")
        super().__init__(*args, **kwargs)


def _day_start(day):
    """Return when ``day`` starts in the site's time zone (None: off the calendar)."""
    try:
        moment = datetime.datetime.combine(day, datetime.time.min)
        return timezone.make_aware(moment).astimezone(datetime.timezone.utc)
    except (OverflowError, ValueError):
        return None


class CreatedFilterSet(filters.FilterSet):
    """``?created_after=`` and ``?created_before=``, both days included."""

    created_after = DayFilter(
        label="Created on or after this day (YYYY-MM-DD, in the site's time zone)."
    )
    created_before = DayFilter(
        label="Created on or before this day (YYYY-MM-DD, in the site's time zone)."
    )

    def filter_day(self, queryset, name, day):
        # A bound off the calendar (year 1, year 9999) leaves nothing out.
        if name == "created_after":
            start = _day_start(day)
            return queryset if start is None else queryset.filter(created_at__gte=start)
        end = None if day == datetime.date.max else _day_start(day + ONE_DAY)
        return queryset if end is None else queryset.filter(created_at__lt=end)


class StableOrderingFilter(filters.OrderingFilter):
    """Ordering that ends on the id in the same direction: pages never overlap.

    A total sorts on the trigger-kept totals row (its indexes end on the
    client), inner-joined, as the admin's changelist does.
    """

    def filter(self, queryset, value):
        value = [part for part in value or () if part]  # ``?ordering=,``
        if not value:
            return queryset
        ordering = [self.get_ordering_value(param) for param in value]
        last = ordering[-1]
        direction = "-" if last.startswith("-") else ""
        if any(field.lstrip("-").startswith("totals__") for field in ordering):
            queryset = queryset.filter(totals__isnull=False)
            tie_breaker = f"{direction}totals__client_id"
        else:
            tie_breaker = f"{direction}pk"
        return queryset.order_by(*ordering, tie_breaker)


class IdFilter(filters.NumberFilter):
    """A positive 64-bit id (a bigger number matches nothing and is refused)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class AmountFilter(filters.NumberFilter):
    """An amount as stored: at most 12 digits, 2 of them decimals."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)


class ClientFilter(CreatedFilterSet):
    search = filters.CharFilter(
        method="filter_search", label="Name or email contains this, in any case."
    )
    vip = StrictBooleanFilter()
    active = StrictBooleanFilter(
        method="filter_active", label="Has orders that are not done."
    )
    ordering = StableOrderingFilter(
        fields=(
            ("name", "name"),
            ("created_at", "created_at"),
            ("totals__order_count", "order_count"),
            ("totals__total_cents", "total_amount"),
        )
    )

    class Meta:
        model = Client
        fields = ("search", "vip", "active", "created_after", "created_before")

    def filter_search(self, queryset, name, value):
        return queryset.search(value)

    def filter_active(self, queryset, name, value):
        if value:
            return queryset.active()
        return queryset.exclude(pk__in=Client.objects.active().values("pk"))


class OrderFilter(CreatedFilterSet):
    status = filters.ChoiceFilter(choices=Order.Status.choices)
    client = IdFilter(field_name="client_id", label="The client's id.")
    search = filters.CharFilter(
        method="filter_search",
        label="Title, client name or client email contains this, in any case.",
    )
    amount_min = AmountFilter(field_name="amount", lookup_expr="gte")
    amount_max = AmountFilter(field_name="amount", lookup_expr="lte")
    ordering = StableOrderingFilter(
        fields=(("created_at", "created_at"), ("amount", "amount"))
    )

    class Meta:
        model = Order
        fields = (
            "status",
            "client",
            "search",
            "amount_min",
            "amount_max",
            "created_after",
            "created_before",
        )

    def filter_search(self, queryset, name, value):
        return queryset.search(value)
