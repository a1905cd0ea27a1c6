"""The service's request fields as data, and the OpenAPI they make.

Each endpoint's fields are declared once, as :class:`FieldDoc` rows (remove.bg's in
:data:`operations.service.removebg.PARAMETERS`, ours in
:data:`operations.service.swap_api.FIELD_DOCS`, their choices and defaults taken from the
stages' own constants); the request's parsing checks the same names, docs/service.md's table
is made from the first, and :func:`request_body` turns them into the OpenAPI request body (a
multipart form and its JSON twin), so ``/docs`` can send a request and a generated client gets
every parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FILE = "file"


@dataclass(frozen=True)
class FieldDoc:
    """One request field: its name, JSON type (or ``file``), what it does, its choices and
    default, and (for remove.bg's) what this server does of it and how."""

    name: str
    type: str
    description: str
    enum: tuple[str, ...] | None = None
    default: Any = None
    support: str = "supported"
    how: str = ""

    def schema(self, *, json: bool) -> tuple[str, dict[str, Any]]:
        """The field's (name, JSON schema) in a form, or in a JSON body (a file as base64)."""
        if self.type == FILE:
            if json:
                return f"{self.name}_b64", {
                    "type": "string",
                    "format": "byte",
                    "description": f"{self.description} (base64)",
                }
            return self.name, {
                "type": "string",
                "format": "binary",
                "description": self.description,
            }
        schema: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.default is not None:
            schema["default"] = self.default
        return self.name, schema


def request_body(fields: list[FieldDoc], required: str = "image_file") -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of an endpoint that takes ``fields``: a multipart form and
    the same fields as a JSON object."""
    content = {}
    for kind, json in (("multipart/form-data", False), ("application/json", True)):
        properties = dict(field.schema(json=json) for field in fields)
        content[kind] = {
            "schema": {
                "type": "object",
                "properties": properties,
                "description": f"the photo: {required}, {required}_b64 or image_url",
            }
        }
    return {"required": True, "content": content}


ERROR = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                },
                "required": ["title", "code"],
            },
        }
    },
}

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {"application/json": {"schema": ERROR}}}
    for status, what in (
        (400, "a bad parameter or image (the title names the field)"),
        (403, "no valid API key"),
        (408, "the request's headers or body did not arrive in time"),
        (413, "the upload is over the server's limit"),
        (503, "the queue is full or the model is loading (with Retry-After)"),
        (504, "the image took longer than the server's time-out"),
    )
}
