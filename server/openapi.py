"""The OpenAPI description of the public (widget's) API, kept by hand and served at /api/v1/openapi.json.

Kept by hand because the API is small and its limits (lengths, which fields, which errors) are the point;
tests/server/test_abuse_input.py checks it against the running API, and the fuzz test generates its
requests from it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialer.core.phones import MAX_INPUT
from dialer.intake.accept import LIMITS, UTM_KEYS
from server import api


def _text(max_length: int | None = None, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if max_length is not None:
        schema["maxLength"] = max_length
    if description:
        schema["description"] = description
    return schema


CALLBACK_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["site", "phone"],
    "properties": {
        "site": {"type": "string", "maxLength": 64, "description": "The site key (public)."},
        "phone": {"type": "string", "maxLength": MAX_INPUT, "description": "As typed; read with the site's country."},
        "timezone": _text(64, "The visitor's IANA time zone, e.g. Europe/Warsaw."),
        "scheduled_for": _text(None, "ISO 8601 time with an offset: call at this time rather than now."),
        "message": _text(LIMITS["message"], "A non-empty message makes the request a message: nobody is dialed."),
        "name": _text(LIMITS["name"]),
        "visitor_id": _text(LIMITS["visitor_id"]),
        "page_url": _text(LIMITS["page_url"]),
        "referrer": _text(LIMITS["referrer"]),
        "utm": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {key: {"type": "string", "maxLength": LIMITS["utm"]} for key in UTM_KEYS},
        },
        "consent": {"type": "boolean"},
        "form_token": _text(200, "The `form_token` from the config call, sent no sooner than `min_fill_seconds`."),
        "hp": _text(None, "Honeypot: the widget sends it only when its hidden input was filled. Must be empty."),
        "captcha": _text(4096, "The CAPTCHA provider's answer, where the site asks for one."),
        "visit": {
            "type": ["object", "null"],
            "description": "Visit facts the widget keeps; anything unexpected is dropped.",
            "properties": {
                "visits": {"type": "integer"},
                "first_seen": {"type": "string"},
                "landing_page": {"type": "string"},
                "language": {"type": "string"},
                "click_id": {"type": "string"},
            },
        },
    },
}

LEAD_STATUSES = [
    "scheduled", "queued", "calling_manager", "calling_visitor", "connected", "completed", "missed",
    "unreachable", "cancelled", "rejected", "failed", "received",
]

SCHEMAS: dict[str, Any] = {
    "CallbackRequest": CALLBACK_REQUEST,
    "LeadStatus": {
        "type": "object",
        "required": ["id", "status", "scheduled_for"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": LEAD_STATUSES},
            "version": {"type": "integer"},
            "attempt": {"type": "integer"},
            "step": {"type": "integer"},
            "scheduled_for": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "CreatedLead": {
        "allOf": [
            {"$ref": "#/components/schemas/LeadStatus"},
            {
                "type": "object",
                "required": ["token"],
                "properties": {"token": {"type": "string", "description": "Secret: lets the visitor follow it."}},
            },
        ]
    },
    "SiteConfig": {
        "type": "object",
        "required": ["site", "name", "call_now"],
        "properties": {
            "site": {"type": "string"},
            "name": {"type": "string"},
            "country": {"type": "string"},
            "call_now": {"type": "boolean"},
            "consent_required": {"type": "boolean"},
            "texts": {"type": "object"},
            "colors": {"type": "object"},
            "slots": {"type": "array"},
            "form_token": {"type": "string", "description": "Present where the site checks for bots."},
            "min_fill_seconds": {"type": "integer", "minimum": 0},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string", "description": "Fit to show the visitor."},
                    "field": {"type": "string", "description": "The request field to correct, if there is one."},
                },
            }
        },
    },
}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return response


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Ringback widget API",
        "version": "1",
        "description": "What the widget calls. The site key is public; abuse protection (README, "
        "'Abuse protection') decides what is accepted. Live status: WebSocket "
        "/api/v1/callbacks/{lead_id}/live?token=… pushes LeadStatus objects.",
    },
    "paths": {
        "/api/v1/sites/{site_key}/config": {
            "get": {
                "summary": "Texts, colours, whether a call is possible now, and the bot-check token",
                "parameters": [{"name": "site_key", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json("#/components/schemas/SiteConfig", "The site's widget configuration"),
                    "404": _error("No site with this key"),
                },
            }
        },
        "/api/v1/callbacks": {
            "post": {
                "summary": "Ask for a call back (or leave a message)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallbackRequest"}}},
                },
                "responses": {
                    "201": _json("#/components/schemas/CreatedLead", "Accepted (past a daily cap: as a message "
                                 "or scheduled for the next day)"),
                    "400": _error("The body is not a JSON object"),
                    "403": _error("The page's Origin is not one of the site's"),
                    "404": _error("No site with this key"),
                    "413": _error(f"The body is larger than {api.MAX_BODY} bytes"),
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
                "parameters": [
                    {"name": "lead_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("#/components/schemas/LeadStatus", "Its status"),
                    "404": _error("No such request, or the token does not match"),
                },
            }
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
