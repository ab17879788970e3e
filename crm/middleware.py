"""Request guards that every page needs, applied once per request."""

from django.http import QueryDict


class StripNulMiddleware:
    """Drop NUL characters from the query string's names and values.

    No stored text holds one, PostgreSQL refuses one in any parameter, and
    any lookup can come from a URL (admin filters, autocomplete, search):
    ``?term=%00`` must mean "nothing", not a database error.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            cleaned = QueryDict(mutable=True)
            for key, values in request.GET.lists():
                cleaned.setlist(
                    key.replace("\x00", ""), [v.replace("\x00", "") for v in values]
                )
            cleaned._mutable = False
            request.GET = cleaned
        return self.get_response(request)
