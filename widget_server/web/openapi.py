"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

Written by hand so it says exactly what the endpoints do; a test checks that every /api/v1
route appears here.
"""

from __future__ import annotations

from typing import Any

from widget_server import __version__
from widget_server.tickets import STAGES, STATUSES


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_NUMBER = {"name": "number", "in": "path", "required": True,
           "description": "The ticket's per-site number (#1042 is 1042).",
           "schema": {"type": "integer", "minimum": 1}}
_SEVERITY = "A severity key of the site's support policy."
_ERASED = ("A tombstone left by data retention or an erasure request: number, status, "
           "severity and dates only; no subject, messages or visitor (docs/privacy.md).")
_ERRORS = {"401": _error("Missing or invalid bearer token."),
           "404": _error("No such ticket on the token's site."),
           "422": _error("Invalid input.")}


def openapi_json() -> dict[str, Any]:
    ref = "#/components/schemas/"
    return {
        "openapi": "3.1.0",
        "info": {"title": "widget-server REST API", "version": __version__,
                 "description": "Tickets of the site the bearer token belongs to. "
                 "Errors are {\"error\": {\"code\", \"message\"}}."},
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/tickets": {"get": {
                "summary": "List tickets, newest first.",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                    {"name": "severity", "in": "query", "description": _SEVERITY,
                     "schema": {"type": "string", "maxLength": 40}},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
                    {"name": "before", "in": "query", "description":
                     "Only tickets numbered below this (the previous page's next_before).",
                     "schema": {"type": "integer", "minimum": 1}},
                ],
                "responses": {"200": _ok("A page of tickets.", {
                    "type": "object", "properties": {
                        "tickets": {"type": "array", "items": {"$ref": ref + "Ticket"}},
                        "next_before": {"type": ["integer", "null"]}}}),
                    **_ERRORS},
            }},
            "/api/v1/tickets/{number}": {
                "get": {
                    "summary": "One ticket with its whole thread (internal notes included) "
                               "and its event timeline.",
                    "parameters": [_NUMBER],
                    "responses": {"200": _ok("The ticket.", {
                        "type": "object", "properties": {
                            "ticket": {"$ref": ref + "Ticket"},
                            "messages": {"type": "array", "items": {"$ref": ref + "Message"}},
                            "events": {"type": "array", "items": {"type": "object"}}}}),
                        **_ERRORS},
                },
                "patch": {
                    "summary": "Change status, stage, severity (recomputes the due time) "
                               "or assignee.",
                    "parameters": [_NUMBER],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "additionalProperties": False,
                                   "properties": {
                                       "status": {"enum": list(STATUSES)},
                                       "stage": {"enum": list(STAGES)},
                                       "severity": {"type": "string", "description": _SEVERITY},
                                       "assignee": {"type": ["integer", "string", "null"],
                                                    "description": "Agent id or email; "
                                                    "null unassigns."}}}}}},
                    "responses": {"200": _ok("The updated ticket.", {
                        "type": "object", "properties": {"ticket": {"$ref": ref + "Ticket"}}}),
                        **_ERRORS},
                },
            },
            "/api/v1/reports/sla": {"get": {
                "summary": "SLA figures of the token's site: first-response p50/p90, breach "
                           "rate per severity, opened and solved per day, backlog by status.",
                "parameters": [{"name": "days", "in": "query", "schema": {
                    "type": "integer", "minimum": 1, "maximum": 366, "default": 30}}],
                "responses": {"200": _ok("The report.", {"type": "object", "properties": {
                    "since": {"type": "string", "format": "date"},
                    "until": {"type": "string", "format": "date"},
                    "tickets": {"type": "integer"},
                    "first_response": {"type": "object", "properties": {
                        "p50_seconds": {"type": ["number", "null"]},
                        "p90_seconds": {"type": ["number", "null"]}}},
                    "breach_rate": {"type": "object", "additionalProperties": {
                        "type": ["number", "null"]}},
                    "breaches": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "opened_per_day": {"type": "object",
                                       "additionalProperties": {"type": "integer"}},
                    "solved_per_day": {"type": "object",
                                       "additionalProperties": {"type": "integer"}},
                    "backlog": {"type": "object", "additionalProperties": {"type": "integer"}},
                }}), "401": _ERRORS["401"], "422": _ERRORS["422"]},
            }},
            "/api/v1/tickets/{number}/messages": {"post": {
                "summary": "Reply as the token's agent; public replies reach the widget live.",
                "parameters": [_NUMBER],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["body"], "properties": {
                        "body": {"type": "string", "minLength": 1, "maxLength": 5000},
                        "internal": {"type": "boolean", "default": False,
                                     "description": "An internal note: never sent to the "
                                                    "visitor."}}}}}},
                "responses": {"201": _ok("Stored.", {"type": "object", "properties": {
                    "message": {"$ref": ref + "Message"}, "ticket": {"$ref": ref + "Ticket"}}}),
                    "413": _error("Body too long."), **_ERRORS},
            }},
            **_grant_paths(ref),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "From `widget-server token create`."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Ticket": {"type": "object", "properties": {
                    "number": {"type": "integer"}, "reference": {"type": "string"},
                    "status": {"enum": list(STATUSES)}, "status_label": {"type": "string"},
                    "stage": {"enum": [*STAGES, None]},
                    "stage_label": {"type": ["string", "null"]},
                    "severity": {"type": "string", "description": _SEVERITY},
                    "subject": {"type": "string"},
                    "first_response_due": {"type": "string", "format": "date-time"},
                    "first_response_at": {"type": ["string", "null"], "format": "date-time"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "conversation": {"type": ["string", "null"]},
                    "channel": {"type": "string"},
                    "assignee_id": {"type": ["integer", "null"]},
                    "visitor_id": {"type": ["string", "null"]},
                    "closed_at": {"type": ["string", "null"], "format": "date-time"},
                    "erased": {"type": "boolean", "description": _ERASED},
                    "erased_at": {"type": ["string", "null"], "format": "date-time"},
                    "erased_reason": {"enum": ["retention", "erasure", None]}}},
                "Grant": {"type": "object", "properties": {
                    "id": {"type": "string"}, "user_id": {"type": "string"},
                    "scope": {"const": "account"},
                    "state": {"enum": ["active", "revoked", "expired"]},
                    "active": {"type": "boolean"}, "hours": {"enum": [1, 24, 168]},
                    "ticket": {"type": ["integer", "null"]},
                    "reason": {"type": ["string", "null"]},
                    "created_at": {"type": "string", "format": "date-time"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "revoked_at": {"type": ["string", "null"], "format": "date-time"}}},
                "GrantEvent": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "grant": {"type": "string"},
                    "type": {"enum": ["granted", "revoked", "expired", "used"]},
                    "actor": {"type": "object", "properties": {
                        "type": {"enum": ["visitor", "agent", "api", "system"]},
                        "name": {"type": ["string", "null"]}}},
                    "action": {"type": ["string", "null"]},
                    "detail": {"type": ["string", "null"]},
                    "created_at": {"type": "string", "format": "date-time"}}},
                "Message": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "seq": {"type": ["integer", "null"]},
                    "author": {"type": "object", "properties": {
                        "type": {"enum": ["visitor", "agent", "system"]},
                        "name": {"type": ["string", "null"]},
                        "id": {"type": ["string", "null"]}}},
                    "body": {"type": "string"}, "internal": {"type": "boolean"},
                    "created_at": {"type": "string", "format": "date-time"}}},
            },
        },
    }


_GRANT_ID = {"name": "grant_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _grant_paths(ref: str) -> dict[str, Any]:
    """Support access grants (docs/access_grants.md): checked and used by host backends."""
    return {
        "/api/v1/access-grants": {"get": {
            "summary": "Whether support may act in this user's account now (a visitor granted "
                       "access in the widget and it has not ended).",
            "parameters": [{"name": "user_id", "in": "query", "required": True,
                            "description": "Your product's user id, as in identify().",
                            "schema": {"type": "string", "maxLength": 200}}],
            "responses": {"200": _ok("The user's access status.", {
                "type": "object", "properties": {
                    "user_id": {"type": "string"}, "active": {"type": "boolean"},
                    "scope": {"type": ["string", "null"]},
                    "expires_at": {"type": ["string", "null"], "format": "date-time"},
                    "grant_id": {"type": ["string", "null"]},
                    "grants": {"type": "array", "items": {"$ref": ref + "Grant"}}}}),
                "401": _ERRORS["401"], "422": _ERRORS["422"]},
        }},
        "/api/v1/access-grants/{grant_id}": {"get": {
            "summary": "One grant of the token's site with its audit trail, newest first.",
            "parameters": [_GRANT_ID],
            "responses": {"200": _ok("The grant.", {"type": "object", "properties": {
                "grant": {"$ref": ref + "Grant"},
                "events": {"type": "array", "items": {"$ref": ref + "GrantEvent"}}}}),
                "401": _ERRORS["401"], "404": _error("No such grant on the token's site.")},
        }},
        "/api/v1/access-grants/{grant_id}/events": {"post": {
            "summary": "Record what support did in the user's account under an active grant; "
                       "the visitor sees it in the widget.",
            "parameters": [_GRANT_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action"], "properties": {
                    "action": {"type": "string", "maxLength": 200,
                               "description": "What support did, in a line."},
                    "detail": {"type": "string", "maxLength": 2000},
                    "actor": {"type": "string", "maxLength": 200,
                              "description": "Who did it; default: the token's agent."}}}}}},
            "responses": {"201": _ok("Recorded.", {"type": "object", "properties": {
                "event": {"$ref": ref + "GrantEvent"}}}),
                "401": _ERRORS["401"], "404": _error("No such grant on the token's site."),
                "409": _error("The grant was revoked or has expired."),
                "422": _ERRORS["422"]},
        }},
    }
