"""Pages of the API's lists: 50 rows, ``?page_size=`` up to 200, bad values refused."""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError


def _whole_number(text, low, high):
    """Return ``text`` as an int within ``[low, high]``, or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    number = int(text)
    return number if low <= number <= high else None


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's ``{"count", "next", "previous", "results"}`` pages.

    DRF quietly falls back to the default size for a bad ``?page_size=``; here
    it is a 400 naming the parameter, as for every other bad query value.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()

    def get_page_size(self, request):
        text = request.query_params.get(self.page_size_query_param, "")
        if text == "":
            return self.page_size
        size = _whole_number(text, 1, self.max_page_size)
        if size is None:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"Enter a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return size

    def paginate_queryset(self, queryset, request, view=None):
        text = request.query_params.get(self.page_query_param, "")
        if text != "" and _whole_number(text, 1, 2**63 - 1) is None:
            raise ValidationError(
                {self.page_query_param: ["Enter a page number: 1, 2, 3…"]}
            )
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters
