"""The OpenAPI description of the public (widget's) API, served at /api/v1/openapi.json.

Its schemas are made from the classes the API validates requests with and encodes answers from
(server/schema.py), so they cannot drift from what the API does; only the paths, their parameters and
the errors each may answer are written here. tests/server/test_abuse_input.py checks it against the
running API, and the fuzz test generates its requests from it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import schema
from server.decode import MAX_BODY

_REF = "#/components/schemas/{name}"


def _flatten_nullable(node: Any) -> Any:
    """`anyOf: [{type: string, …}, {type: null}]` as `type: [string, null]`: the same schema, easier to read
    (and to generate values from). A reference or null stays an `anyOf`."""
    if isinstance(node, list):
        return [_flatten_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _flatten_nullable(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        (other,) = [option for option in options if option != {"type": "null"}]
        if isinstance(other.get("type"), str) and "$ref" not in other:
            del node["anyOf"]
            node = {**other, **node, "type": [other["type"], "null"]}
    return node


def _schemas() -> dict[str, Any]:
    _, components = msgspec.json.schema_components([*schema.REQUESTS, *schema.ANSWERS], ref_template=_REF)
    return {name: _flatten_nullable(body) for name, body in components.items()}


SCHEMAS: dict[str, Any] = _schemas()
CALLBACK_REQUEST: dict[str, Any] = SCHEMAS["CallbackRequest"]


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name="Error")}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return response


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_TOKEN = {"name": "token", "in": "query", "required": True, "schema": {"type": "string"},
          "description": "The `token` the request was created with."}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Ringback widget API",
        "version": "1",
        "description": "What the widget calls. The site key is public; abuse protection (README, "
        "'Abuse protection') decides what is accepted. Live status: WebSocket "
        "/api/v1/callbacks/{lead_id}/live?token=… pushes LeadStatus objects. Every endpoint answers "
        "cross-origin requests (CORS).",
    },
    "paths": {
        "/api/v1/sites/{site_key}/config": {
            "get": {
                "summary": "Texts, colours, whether a call is possible now, and the bot-check token",
                "parameters": [
                    _path("site_key"),
                    {"name": "timezone", "in": "query", "schema": {"type": "string"},
                     "description": "The visitor's IANA time zone: times are offered in it."},
                    {"name": "lang", "in": "query", "schema": {"type": "string"},
                     "description": "The visitor's language (the browser's), e.g. pl-PL."},
                ],
                "responses": {
                    "200": _json("SiteConfig", "The site's widget configuration"),
                    "404": _error("No site with this key"),
                },
            }
        },
        "/api/v1/callbacks": {
            "post": {
                "summary": "Ask for a call back (or leave a message)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(name="CallbackRequest")}}},
                },
                "responses": {
                    "201": _json("CreatedLead", "Accepted (past a daily cap: as a message or scheduled for the "
                                 "next day)"),
                    "400": _error("The body is not a JSON object"),
                    "403": _error("The page's Origin is not one of the site's"),
                    "404": _error("No site with this key"),
                    "413": _error(f"The body is larger than {MAX_BODY} bytes"),
                    "422": _error("A field is wrong, missing, or the bot checks failed; `field` names it"),
                    "429": _error("A rate limit was reached, or the number is already being handled",
                                  retry_after=True),
                    "503": _error("The site's CAPTCHA provider could not be asked", retry_after=True),
                },
            }
        },
        "/api/v1/callbacks/{lead_id}": {
            "get": {
                "summary": "A callback request's status",
                "parameters": [_path("lead_id"), _TOKEN],
                "responses": {
                    "200": _json("LeadStatus", "Its status"),
                    "404": _error("No such request, or the token does not match"),
                },
            },
            "delete": {
                "summary": "Cancel a callback request that is waiting or being called",
                "description": "Calls in progress for it are hung up and nobody is rung for it again.",
                "parameters": [_path("lead_id"), _TOKEN],
                "responses": {
                    "200": _json("LeadStatus", "Cancelled: its status, now `cancelled`"),
                    "404": _error("No such request, or the token does not match"),
                    "409": _error("The request is already over (or is a message): there is nothing to cancel"),
                },
            },
        },
        "/api/v1/openapi.json": {
            "get": {"summary": "This description", "responses": {"200": {"description": "OpenAPI 3.1"}}}
        },
    },
    "components": {"schemas": SCHEMAS},
}


async def openapi_json(request: Request) -> Response:
    return JSONResponse(SPEC, headers={"Access-Control-Allow-Origin": "*"})


routes = [Route("/api/v1/openapi.json", openapi_json, methods=["GET"])]
