"""The API's request body parser: JSON, and nothing in it can crash the request."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; too deep nesting and unknown charsets are 400 too.

    DRF turns a ValueError into 400, but ``[[[[…]]]]`` nested past Python's
    recursion limit raises RecursionError, and ``charset=nonsense`` LookupError.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        except LookupError:
            raise ParseError("JSON parse error - unknown charset.") from None
