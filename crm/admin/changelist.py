"""Speed-ups for the client changelist at 100k clients, hooked into Django's admin."""

# Each hook has a test in crm/tests/admin/test_changelist.py that fails when
# Django stops calling it.

import datetime

from django.db.models import Max, Min
from django.utils import timezone

from ..models import ClientQuerySet
from .base import CrmChangeList

# Sorting by a total reads these indexed columns of crm_clienttotals (kept by
# database triggers) instead of computing every client's total.
TOTALS_ORDERING = ("totals__order_count", "totals__total_cents")


class ChangelistQuerySet(ClientQuerySet):
    """The client changelist's rows: the date hierarchy is answered from the index.

    Django's ``date_hierarchy`` tag asks ``aggregate(first=Min(f), last=Max(f))``
    (a full scan) and then ``datetimes(f, "year")`` (on SQLite a Python function
    per row: ~1 s at 100k clients). Here both ends come from the index, and
    each year that has clients is found by one indexed seek from the year
    before.
    """

    date_field = "created_at"
    #: Years the date hierarchy finds one indexed query each.
    max_years_sought = 30
    #: A filtered list of at most this many rows has its dates read from its
    #: rows (see ``_date_rows``).
    few_rows = 1_000
    #: What ``count()`` counts instead, when cheaper (see ``sorted_by_totals``).
    count_source = None

    def _is_date_range(self, args, kwargs):
        return (
            not args
            and set(kwargs) == {"first", "last"}
            and isinstance(kwargs["first"], Min)
            and isinstance(kwargs["last"], Max)
            and all(
                getattr(kwargs[k].source_expressions[0], "name", None)
                == self.date_field
                for k in ("first", "last")
            )
        )

    def _date_rows(self):
        """Return the rows whose dates the hierarchy reads, unordered.

        Reading the date index in order finds the first and last match of a
        common search at once, but walks the whole index for a search that
        matches nothing (seconds at a million clients on PostgreSQL). So a
        filtered list is first read without order, up to ``few_rows`` + 1 of
        its keys (the search's own indexes answer that); if that is all of
        them, the dates are read from those rows alone.
        """
        if self.count_source is not None:  # the same rows, without the join
            return self.count_source._date_rows()
        if not self.query.has_filters():
            return self.order_by()
        if not hasattr(self, "_few_keys"):
            keys = self.order_by().values_list("pk", flat=True)[: self.few_rows + 1]
            keys = list(keys)
            self._few_keys = keys if len(keys) <= self.few_rows else None
        if self._few_keys is None:
            return self.order_by()
        return self.model._base_manager.using(self.db).filter(pk__in=self._few_keys)

    def aggregate(self, *args, **kwargs):
        if not self._is_date_range(args, kwargs):
            return super().aggregate(*args, **kwargs)
        # The tag asks for the range, then datetimes() needs it again: ask once.
        if not hasattr(self, "_date_range"):
            values = self._date_rows().values_list(self.date_field, flat=True)
            self._date_range = {
                "first": values.order_by(self.date_field).first(),
                "last": values.order_by(f"-{self.date_field}").first(),
            }
        return dict(self._date_range)

    def datetimes(self, field_name, kind, *args, **kwargs):
        if kind != "year" or field_name != self.date_field:
            return super().datetimes(field_name, kind, *args, **kwargs)
        ends = self.aggregate(first=Min(field_name), last=Max(field_name))
        if ends["first"] is None:
            return []
        values = self._date_rows().values_list(field_name, flat=True)
        moment, last = (timezone.localtime(ends[k]) for k in ("first", "last"))
        years = []
        # Seek from year to year with data: one indexed query per year that
        # has clients, however far apart (a client dated 9999 costs one).
        while len(years) < self.max_years_sought:
            start = moment.replace(month=1, day=1, hour=0, minute=0, second=0)
            years.append(start.replace(microsecond=0))
            if moment.year >= last.year or moment.year == datetime.MAXYEAR:
                return years
            following = start.replace(year=moment.year + 1, microsecond=0)
            found = (
                values.filter(**{f"{field_name}__gte": following})
                .order_by(field_name)
                .first()
            )
            if found is None:
                return years
            moment = timezone.localtime(found)
        # Clients in that many different years: one DISTINCT query instead.
        return super().datetimes(field_name, kind, *args, **kwargs)

    def sorted_by_totals(self):
        """Return the rows joined to their totals row, counted without the join.

        An inner join (every client has a totals row) lets the database start
        from the totals index; the LEFT JOIN of ``with_order_totals()`` would
        read and sort every client. The rows are the same either way, so the
        paginator's count skips the join.
        """
        joined = self.filter(totals__isnull=False)
        joined.count_source = self
        return joined

    def count(self):
        if self.count_source is not None:
            return self.count_source.count()
        return super().count()


def changelist_queryset(queryset):
    """Return ``queryset`` as a ``ChangelistQuerySet``."""
    return ChangelistQuerySet(
        model=queryset.model, query=queryset.query.chain(), using=queryset._db
    )


class ClientChangeList(CrmChangeList):
    """Sort by order count or total through the clienttotals indexes."""

    def get_ordering(self, request, queryset):
        ordering = []
        for part in super().get_ordering(request, queryset):
            ordering.append(part)
            if isinstance(part, str) and part.lstrip("-") in TOTALS_ORDERING:
                # A tie-breaker in the same direction on the same table lets
                # the page read straight off the unique (total, client) index.
                direction = "-" if part.startswith("-") else ""
                ordering.append(f"{direction}totals__client_id")
        return ordering

    def get_queryset(self, request, exclude_parameters=None):
        queryset = changelist_queryset(
            super().get_queryset(request, exclude_parameters)
        )
        if any(
            isinstance(part, str) and part.lstrip("-") in TOTALS_ORDERING
            for part in queryset.query.order_by
        ):
            queryset = queryset.sorted_by_totals()
        return queryset
