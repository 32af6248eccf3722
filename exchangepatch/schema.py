"""drf-spectacular extensions: the token scheme, and the error responses every operation can give."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema

from exchangepatch.api import ErrorSerializer


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "exchangepatch.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <key>"}


ERROR_DESCRIPTIONS = {
    "400": "invalid input: the fields and the reasons",
    "401": "no or an invalid token",
    "403": "not allowed (e.g. a read-only token writing)",
    "404": "no such object: the key is named",
    "405": "the method is not allowed on this path (an {id} naming a collection's action, e.g. servers/sync/)",
    "409": "conflict with what is stored",
    "412": "If-Match does not match the current version",
    "413": "request body larger than the limit",
    "429": "throttled: too many requests, or too many failed authentications from this address (see Retry-After)",
}


class AutoSchema(BaseAutoSchema):
    """Documents the API's one error shape for the status codes each kind of operation can answer with."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        method = self.method.upper()
        codes = ["400", "401", "403", "429"]
        if "{" in self.path:
            codes += ["404", "405"]
        if method in ("PUT", "PATCH", "DELETE"):
            codes.append("412")
        if method in ("POST", "PUT", "PATCH"):
            codes += ["409", "413"]
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                responses[code]["description"] = ERROR_DESCRIPTIONS[code]
        return responses
