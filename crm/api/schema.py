"""The OpenAPI schema: drf-spectacular's, with the errors each operation can answer."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


#: Field errors: ``{"field": ["message", ...]}`` (a list's item errors are keyed
#: by position), or ``{"detail": "..."}`` for a body that is not JSON.
VALIDATION_ERROR = {
    "type": "object",
    "additionalProperties": {},
    "example": {"email": ["A client with this email already exists."]},
}


def _error(description):
    return OpenApiResponse(ErrorSerializer, description=description)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, documenting 4xx answers too."""

    def _errors(self):
        errors = {
            "401": _error("Not logged in: no session or token, or a wrong token."),
            "403": _error("Logged in without the permission this needs."),
            "429": _error("Too many requests: try again after Retry-After seconds."),
        }
        if self.method == "GET" and self._is_list_view():
            errors["400"] = OpenApiResponse(VALIDATION_ERROR, "A bad query value.")
            errors["404"] = _error("No such page.")
        if "{" in self.path:
            errors["404"] = _error("Not found.")
        if self.method in ("POST", "PUT", "PATCH"):
            errors["400"] = OpenApiResponse(VALIDATION_ERROR, "Invalid data.")
            errors["415"] = _error("The body is not JSON.")
        if self.method == "DELETE" and getattr(self.view, "conflict_on_delete", False):
            errors["409"] = _error("It has orders: merge it into another client.")
        return errors

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction == "response":
            for code, response in self._errors().items():
                if code not in responses:
                    responses[code] = self._get_response_for_code(
                        response, code, direction=direction
                    )
        return responses
