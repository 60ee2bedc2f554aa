"""The webhooks part of the OpenAPI description (web/openapi.py): the routes of
``/api/v1/webhooks``, the events POSTed to endpoints (OpenAPI's ``webhooks``) and their
payloads, version 1 (docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

from widget_server.tickets import STAGES, STATUSES
from widget_server.webhooks import EVENTS, TEST_EVENT, URL_MAX

_JSON = "application/json"


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


_401 = _error("Missing or invalid bearer token.")
_403 = _error("`admins_only`: the token's agent is not an admin.")
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}


def webhook_paths(ref: str) -> dict[str, Any]:
    body = {"type": "object", "required": ["url", "events"], "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "minLength": 9, "maxLength": URL_MAX,
                        "pattern": "^https://[^\\s/?#@]+", "description":
                        "https:// (http:// too with WIDGET_WEBHOOK_ALLOW_PRIVATE); no user "
                        "name or password; never a private, loopback, link-local, multicast "
                        "or reserved address unless WIDGET_WEBHOOK_ALLOW_PRIVATE."},
                "events": {"type": "array", "minItems": 1, "uniqueItems": True,
                           "items": {"enum": list(EVENTS)}},
                "include_notes": {"type": "boolean", "default": False, "description":
                                  "message.created also for internal notes."}}}
    return {
        "/api/v1/webhooks": {
            "post": {
                "operationId": "createWebhook",
                "summary": "Register an endpoint of the token's site (admins only); the "
                           "answer holds its signing secret, shown this once.",
                "requestBody": {"required": True, "content": {_JSON: {"schema": body}}},
                "responses": {
                    "201": _ok("Registered.", {"type": "object", "required": [
                        "webhook", "secret"], "properties": {
                        "webhook": {"$ref": ref + "WebhookEndpoint"},
                        "secret": {"type": "string", "pattern": "^whsec_",
                                   "description": "whsec_ + base64 of 24 random bytes."}}}),
                    "401": _401, "403": _403,
                    "409": _error("`too_many_webhooks`: the site has 20 endpoints."),
                    "422": _error("`invalid_url`, `webhook_url_refused`, `invalid_events`, "
                                  "`invalid_include_notes` or `unknown_field`."),
                    "400": _error("`invalid_json`: the body is not JSON, or not a JSON "
                                  "object."),
                    "413": _error("`payload_too_large`: the body is larger than 64 KiB.")},
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "The endpoints of the token's site (admins only), without secrets.",
                "responses": {"200": _ok("The endpoints.", {"type": "object", "properties": {
                    "webhooks": {"type": "array",
                                 "items": {"$ref": ref + "WebhookEndpoint"}}}}),
                    "401": _401, "403": _403},
            },
        },
        "/api/v1/webhooks/{webhook_id}": {"delete": {
            "operationId": "deleteWebhook",
            "summary": "Delete an endpoint with its deliveries and their log (admins only).",
            "parameters": [{"name": "webhook_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1,
                                       "maximum": 2**63 - 1}}],
            "responses": {"204": {"description": "Deleted."}, "401": _401, "403": _403,
                          "404": _error("`webhook_not_found`: no such endpoint on the "
                                        "token's site.")},
        }},
    }


def _payload(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["type", "version", "timestamp", "data"],
            "properties": {"type": {"const": event}, "version": {"const": 1},
                           "timestamp": {**_TIME, "description": "When the event happened."},
                           "data": {"type": "object", "required": list(data),
                                    "properties": data}}}


def webhook_events(ref: str) -> dict[str, Any]:
    """What endpoints receive: one POST per event, signed by the Standard Webhooks
    specification (webhook-id, webhook-timestamp, webhook-signature)."""
    site = {"type": "string", "description": "The site's key."}
    ticket = {"$ref": ref + "WebhookTicket"}
    change = {"type": "object", "properties": {"from": {}, "to": {}}}
    grant = {"grant": {"$ref": ref + "Grant"}, "event": {"$ref": ref + "GrantEvent"},
             "site": site}
    payloads: dict[str, dict[str, Any]] = {
        "ticket.created": {"site": site, "ticket": ticket},
        "ticket.updated": {"site": site, "ticket": ticket, "changes": {
            "type": "object", "description": "Each changed field: its value before and after "
            "(from is null when not known, as for a merge).",
            "properties": {name: change for name in (
                "status", "stage", "severity", "assignee", "tier", "merged_into")}}},
        "message.created": {"site": site, "ticket": {"type": "object", "properties": {
            "number": {"type": "integer"}, "reference": {"type": "string"}}},
            "message": {"$ref": ref + "Message"}},
        "ticket.sla_at_risk": {"site": site, "ticket": ticket, "due": _MAYBE_TIME},
        "ticket.sla_breached": {"site": site, "ticket": ticket, "due": _MAYBE_TIME},
        "access_grant.created": grant, "access_grant.revoked": grant,
        "access_grant.expired": grant, "access_grant.used": grant,
        **{event: {"site": site, "ticket": ticket, "rating": {"type": "object", "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "from": {"type": ["integer", "null"], "description": "The score before a change."},
            "channel": {"enum": ["widget", "email"]},
            "comment": {"type": ["string", "null"]}}}}
           for event in ("rating.created", "rating.updated")},
        TEST_EVENT: {"site": site, "webhook": {"type": "integer"},
                     "text": {"type": "string"}},
    }
    headers = {name: {"required": True, "schema": {"type": "string"}, "description": text}
               for name, text in (
                   ("webhook-id", "msg_...: the same on every attempt of one delivery."),
                   ("webhook-timestamp", "Seconds since the epoch of this attempt."),
                   ("webhook-signature", "v1, + base64 HMAC-SHA256 with the secret's bytes "
                                         "over {webhook-id}.{webhook-timestamp}.{body}."))}
    return {event: {"post": {
        "operationId": f"webhook_{event.replace('.', '_')}",
        "summary": f"The {event} event, POSTed to each endpoint subscribed to it.",
        "parameters": [{"name": name, "in": "header", **spec}
                       for name, spec in headers.items()],
        "requestBody": {"required": True, "content": {_JSON: {"schema": _payload(event, data)}}},
        "responses": {"2XX": {"description": "Delivered. Anything else (a 3xx too: redirects "
                                             "are not followed) is retried."}},
    }} for event, data in payloads.items()}


def webhook_schemas(ref: str) -> dict[str, Any]:
    return {
        "WebhookEndpoint": {"type": "object", "properties": {
            "id": {"type": "integer"}, "url": {"type": "string"},
            "events": {"type": "array", "items": {"enum": list(EVENTS)}},
            "include_notes": {"type": "boolean"}, "enabled": {"type": "boolean"},
            "created_at": _TIME, "disabled_at": _MAYBE_TIME,
            "disabled_reason": {"type": ["string", "null"]}}},
        "WebhookTicket": {"type": "object", "properties": {
            "number": {"type": "integer"}, "reference": {"type": "string"},
            "subject": {"type": "string"}, "status": {"enum": list(STATUSES)},
            "stage": {"enum": [*STAGES, None]}, "severity": {"type": "string"},
            "tier": {"type": "integer"},
            "channel": {"enum": ["widget", "form", "api", "email"]},
            "assignee_id": {"type": ["integer", "null"]},
            "conversation": {"type": "string"}, "created_at": _TIME, "updated_at": _TIME,
            "first_response_due": _TIME, "first_response_at": _MAYBE_TIME,
            "sla_due": _MAYBE_TIME, "at_risk": {"type": "boolean"},
            "breached": {"type": "boolean"}}},
    }
