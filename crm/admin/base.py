"""The base of our ModelAdmins: request guards shared by every model."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from rangefilter.filters import DateRangeFilterBuilder

from ..counting import CountingPaginator
from .spreadsheets import SpreadsheetAdmin

#: The "created" date range filter, with the admin's calendar, on every list.
CREATED_RANGE_FILTER = ("created_at", DateRangeFilterBuilder(title="created"))


def is_valid_pk(value):
    """Tell whether ``value`` can be a primary key (a positive 64-bit integer).

    ASCII digits only: ``str.isdigit()`` and ``int()`` also take other
    scripts' digits (``"١"`` is 1), which a page never sends.
    """
    return value.isascii() and value.isdigit() and 0 < int(value) < 2**63


class CrmChangeList(ChangeList):
    """A changelist that treats impossible dates in the URL as bad parameters.

    ``?created_at__year__gte=10000``, ``__iso_year=0`` and the like only fail
    when the query is compiled (Python's dates end at year 9999), after
    Django's own parameter checks: they get Django's "bad parameters" answer
    instead of a 500.
    """

    def get_filters(self, request):
        # The date hierarchy turns ?created_at__year=9999&..__month=12 into a
        # date past the calendar's end.
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as error:
            raise IncorrectLookupParameters(error) from error

    def get_results(self, request):
        try:
            return super().get_results(request)
        except (ValueError, OverflowError) as error:
            raise IncorrectLookupParameters(error) from error


class LenientAutocompleteSelect(AutocompleteSelect):
    """Re-show a form whose client value is garbage instead of failing on it."""

    def optgroups(self, name, value, attr=None):
        value = [v for v in value if v in ("", None) or is_valid_pk(str(v))]
        return super().optgroups(name, value, attr)


class CrmModelAdmin(SpreadsheetAdmin):
    """CSV import/export plus guards against hand-made URLs and forms.

    Lists count at most ``EXACT_LIMIT`` rows and show an estimate past that
    (``crm.counting``); the full count next to a search ("N total") would be a
    second count of the whole table, so "Show all" links there instead.
    """

    paginator = CountingPaginator
    show_full_result_count = False

    def get_changelist(self, request, **kwargs):
        return CrmChangeList

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(is_valid_pk(pk) for pk in selected):
            self.message_user(
                request, "The selection is not valid; nothing was done.", messages.ERROR
            )
            return None
        return super().response_action(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = LenientAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
