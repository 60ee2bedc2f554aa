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
_SEVERITY = ("A severity key of the site's support policy (by default critical, high, normal "
             "or low).")
# At least one character that is neither white space nor a control character (those are
# dropped from every string a body carries, text.py).
_NOT_BLANK = "[^\\s\\x00-\\x1f\\x7f-\\x9f]"
MAX_INT = 2**63 - 1  # SQLite's integers: a larger number names no row
_ERASED = ("A tombstone left by data retention or an erasure request: number, status, "
           "severity and dates only; no subject, messages or visitor (docs/privacy.md).")
_ERRORS = {"401": _error("Missing or invalid bearer token."),
           "404": _error("No such ticket on the token's site."),
           "422": _error("Invalid input.")}
# what any operation with a JSON body may answer (web/errors.py, read_json_object)
_BODY_ERRORS = {"400": _error("`invalid_json`: the body is not JSON, or not a JSON object."),
                "413": _error("`payload_too_large`: the body is larger than 64 KiB.")}
_ERASED_409 = {"409": _error("`ticket_erased`: the ticket is a tombstone; nothing changes it.")}


_NO_CONTROL = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"  # what a URL may hold once decoded
_URL_400 = "`invalid_url`: the decoded path or query holds a control character."


def openapi_json() -> dict[str, Any]:
    spec = _spec()
    for operations in spec["paths"].values():  # web/url_check.py answers before any route
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                schema = parameter.get("schema", {})
                if schema.get("type") == "string" and "pattern" not in schema:
                    schema["pattern"] = _NO_CONTROL
            answers = operation["responses"]
            if "400" in answers:
                answers["400"] = _error(f"{answers['400']['description']} {_URL_400}")
            else:
                answers["400"] = _error(_URL_400)
    return spec


def _spec() -> dict[str, Any]:
    ref = "#/components/schemas/"
    return {
        "openapi": "3.1.0",
        "info": {"title": "widget-server REST API", "version": __version__,
                 "description": "Tickets of the site the bearer token belongs to. "
                 "Errors are {\"error\": {\"code\", \"message\"}}."},
        "servers": [{"url": "/", "description": "The server this description came from."}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/tickets": {"get": {
                "operationId": "listTickets",
                "summary": "List tickets, newest first.",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                    {"name": "severity", "in": "query", "description": _SEVERITY
                     + " A key no ticket has gives an empty page.",
                     "schema": {"type": "string", "minLength": 1, "maxLength": 40}},
                    {"name": "limit", "in": "query", "description":
                     "Tickets per page; a value above 200 gives 200.",
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT,
                                "default": 50}},
                    {"name": "before", "in": "query", "description":
                     "Only tickets numbered below this (the previous page's next_before).",
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT}},
                ],
                "responses": {"200": _ok("A page of tickets.", {
                    "type": "object", "properties": {
                        "tickets": {"type": "array", "items": {"$ref": ref + "Ticket"}},
                        "next_before": {"type": ["integer", "null"]}}}),
                    **_ERRORS},
            }},
            "/api/v1/tickets/{number}": {
                "get": {
                    "operationId": "getTicket",
                    "summary": "One ticket with its whole thread (internal notes included) "
                               "and its event timeline.",
                    "parameters": [_NUMBER],
                    "responses": {"200": _ok("The ticket.", {
                        "type": "object", "properties": {
                            "ticket": {"$ref": ref + "Ticket"},
                            "messages": {"type": "array", "items": {"$ref": ref + "Message"}},
                            "events": {"type": "array", "items": {"$ref": ref + "Event"}}}}),
                        **_ERRORS},
                },
                "patch": {
                    "operationId": "updateTicket",
                    "summary": "Change status, stage, severity (recomputes the due time) "
                               "or assignee.",
                    "parameters": [_NUMBER],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "additionalProperties": False,
                                   "properties": {
                                       "status": {"enum": list(STATUSES)},
                                       "stage": {"enum": list(STAGES)},
                                       "severity": {"type": "string", "minLength": 1,
                                                    "description": _SEVERITY},
                                       "assignee": {
                                           "description": "Agent id or email; null unassigns.",
                                           "oneOf": [
                                               {"type": "integer", "minimum": 1,
                                                "maximum": MAX_INT},
                                               {"type": "string"}, {"type": "null"}]}}}}}},
                    "responses": {"200": _ok("The updated ticket.", {
                        "type": "object", "required": ["ticket"],
                        "properties": {"ticket": {"$ref": ref + "Ticket"}}}),
                        **_ERRORS, **_BODY_ERRORS, **_ERASED_409},
                },
            },
            "/api/v1/reports/sla": {"get": {
                "operationId": "getSlaReport",
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
                "operationId": "postMessage",
                "summary": "Reply as the token's agent; public replies reach the widget live.",
                "parameters": [_NUMBER],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["body"], "properties": {
                        "body": {"type": "string", "minLength": 1, "pattern": _NOT_BLANK,
                                 "description": "At most WIDGET_MAX_BODY_CHARS characters "
                                                "(5000 by default); longer: 413 "
                                                "`body_too_long`."},
                        "internal": {"type": "boolean", "default": False,
                                     "description": "An internal note: never sent to the "
                                                    "visitor."},
                        "attachments": {"type": "array", "maxItems": 100, "default": [],
                                        "items": {"type": "string", "minLength": 1,
                                                  "maxLength": 64},
                                        "description": "Ids of the token agent's uploads "
                                        "(POST /api/v1/attachments) not sent yet; at most "
                                        "the site's files per message (10 by default). With "
                                        "attachments the body may be empty."}}}}}},
                "responses": {"201": _ok("Stored.", {
                    "type": "object", "required": ["message", "ticket"], "properties": {
                        "message": {"$ref": ref + "Message"},
                        "ticket": {"$ref": ref + "Ticket"}}}),
                    **_ERRORS, **_BODY_ERRORS, **_ERASED_409,
                    "413": _error("`payload_too_large`: the body is larger than 64 KiB; "
                                  "`body_too_long`: the message is longer than "
                                  "WIDGET_MAX_BODY_CHARS."),
                    "409": _error("`ticket_erased`: the ticket is a tombstone; "
                                  "`attachment_already_sent`: an upload belongs to another "
                                  "message."),
                    "422": _error("Invalid input; `attachment_not_found`, "
                                  "`too_many_attachments`, `invalid_attachments`.")},
            }},
            **_attachment_paths(ref),
            "/api/v1/inbound-email": {"post": {
                "operationId": "inboundEmail",
                "summary": "Store an answer mail forwarded by HTTP (docs/email.md).",
                "description": "The conversation is the one the signed `r+` recipient (To, "
                               "Cc, Delivered-To or X-Original-To) names, else the one of our "
                               "mail that In-Reply-To or References names; it must be of the "
                               "token's site, and the From address the one its mails go to.",
                "requestBody": {"required": True, "content": {"text/plain": {
                    "schema": {"type": "string", "description": "The raw mail (any "
                               "Content-Type: text/plain, message/rfc822), at most "
                               "WIDGET_MAIL_MAX_BYTES (10 MB) and WIDGET_MAX_REQUEST_BYTES."}}}},
                "responses": {"202": _ok("Taken: what happened to it.", {
                    "type": "object", "required": ["outcome", "ticket", "detail"],
                    "properties": {
                        "outcome": {"enum": ["answer", "follow_up", "request", "bounce",
                                             "ignored"]},
                        "ticket": {"type": ["integer", "null"]},
                        "detail": {"type": "string"}}}),
                    "401": _ERRORS["401"],
                    "413": _error("`payload_too_large`: the mail is too large."),
                    "422": _error("`invalid_message`: not a mail; `recipient_refused`: it "
                                  "answers none of the site's conversations; "
                                  "`sender_not_verified`: its From is not the address the "
                                  "conversation's mails go to.")},
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
                "Ticket": {"type": "object", "required": _TICKET_REQUIRED, "properties": {
                    "number": {"type": "integer"}, "reference": {"type": "string"},
                    "status": {"enum": list(STATUSES)}, "status_label": {"type": "string"},
                    "stage": {"enum": [*STAGES, None]},
                    "stage_label": {"type": ["string", "null"]},
                    "severity": {"type": "string", "description": _SEVERITY},
                    "subject": {"type": "string"},
                    "first_response_due": {"type": "string", "format": "date-time"},
                    "first_response_at": {"type": ["string", "null"], "format": "date-time"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "specialists": {"type": "boolean", "description":
                                    "Escalated beyond first-level support."},
                    "response_due": {"type": ["string", "null"], "format": "date-time",
                                     "description": "When the running response clock is "
                                     "due; null while none runs."},
                    "response_kind": {"enum": ["first_response", "next_response"]},
                    "sla_paused": {"type": "boolean"},
                    "breached": {"type": "boolean"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "conversation": {"type": ["string", "null"]},
                    "channel": {"enum": ["widget", "form", "api", "email"]},
                    "assignee_id": {"type": ["integer", "null"]},
                    "visitor_id": {"type": ["string", "null"], "description":
                                   "Only in GET /api/v1/tickets/{number}."},
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
                "Event": {"type": "object", "required": ["type", "actor", "data", "created_at"],
                          "properties": {
                              "type": {"type": "string"},
                              "actor": {"type": "object", "properties": {
                                  "type": {"type": "string"},
                                  "id": {"type": ["string", "null"]}}},
                              "data": {"type": "object"},
                              "created_at": {"type": "string", "format": "date-time"}}},
                "Message": {"type": "object", "required": [
                    "id", "seq", "author", "body", "internal", "created_at"], "properties": {
                    "id": {"type": "integer"}, "seq": {"type": ["integer", "null"]},
                    "author": {"type": "object", "properties": {
                        "type": {"enum": ["visitor", "agent", "system"]},
                        "name": {"type": ["string", "null"]},
                        "id": {"type": ["string", "null"]}}},
                    "body": {"type": "string"}, "internal": {"type": "boolean"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "attachments": {"type": "array", "items": {"$ref": ref + "Attachment"}}}},
                "Attachment": {"type": "object", "required": [
                    "id", "name", "size", "content_type", "url"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0},
                    "content_type": {"type": "string", "description": "Detected from the "
                                     "bytes: image/png, image/jpeg, image/gif, image/webp, "
                                     "application/pdf, text/plain or application/zip."},
                    "url": {"type": "string", "description": "GET /attachments/{id}, "
                            "relative to the server, with a credential that may see the "
                            "message (docs/api.md#get-attachmentsid)."}}},
            },
        },
    }


_GRANT_ID = {"name": "grant_id", "in": "path", "required": True,
             "schema": {"type": "string", "maxLength": 64}}
_TICKET_REQUIRED = [
    "number", "reference", "status", "status_label", "stage", "stage_label", "severity",
    "subject", "first_response_due", "first_response_at", "created_at", "specialists",
    "response_due", "response_kind", "sla_paused", "breached", "updated_at", "conversation",
    "channel", "assignee_id", "closed_at", "erased", "erased_at", "erased_reason"]


def _attachment_paths(ref: str) -> dict[str, Any]:
    return {
        "/api/v1/attachments": {"post": {
            "operationId": "uploadAttachment",
            "summary": "Upload a file as the token's agent; send it with a message.",
            "description": "The type is detected from the content (docs/api.md#attachments); "
                           "images lose their metadata unless the site keeps it.",
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": {"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "At most the site's size limit (10 MB by "
                                            "default)."}}}}}},
            "responses": {
                "201": _ok("Stored, not sent yet.", {
                    "type": "object", "required": ["attachment"],
                    "properties": {"attachment": {"$ref": ref + "Attachment"}}}),
                "401": _ERRORS["401"],
                "413": _error("`attachment_too_large`: past the site's size limit."),
                "415": _error("`attachment_empty`, `attachment_active_content`, "
                              "`attachment_type_not_allowed`, `attachment_invalid_image`."),
                "422": _error("`invalid_upload`: not multipart/form-data with a part "
                              "`file`.")},
        }},
    }


def _grant_paths(ref: str) -> dict[str, Any]:
    """Support access grants (docs/access_grants.md): checked and used by host backends."""
    return {
        "/api/v1/access-grants": {"get": {
            "operationId": "getAccessStatus",
            "summary": "Whether support may act in this user's account now (a visitor granted "
                       "access in the widget and it has not ended).",
            "parameters": [{"name": "user_id", "in": "query", "required": True,
                            "description": "Your product's user id, as in identify().",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200}}],
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
            "operationId": "getAccessGrant",
            "summary": "One grant of the token's site with its audit trail, newest first.",
            "parameters": [_GRANT_ID],
            "responses": {"200": _ok("The grant.", {"type": "object", "properties": {
                "grant": {"$ref": ref + "Grant"},
                "events": {"type": "array", "items": {"$ref": ref + "GrantEvent"}}}}),
                "401": _ERRORS["401"], "404": _error("No such grant on the token's site.")},
        }},
        "/api/v1/access-grants/{grant_id}/events": {"post": {
            "operationId": "recordAccessGrantUse",
            "summary": "Record what support did in the user's account under an active grant; "
                       "the visitor sees it in the widget.",
            "parameters": [_GRANT_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action"], "properties": {
                    "action": {"type": "string", "maxLength": 200, "pattern": _NOT_BLANK,
                               "description": "What support did, in a line."},
                    "detail": {"type": ["string", "null"], "maxLength": 2000},
                    "actor": {"type": ["string", "null"], "maxLength": 200,
                              "description": "Who did it; default: the token's agent."}}}}}},
            "responses": {"201": _ok("Recorded.", {"type": "object", "properties": {
                "event": {"$ref": ref + "GrantEvent"}}}),
                "401": _ERRORS["401"], "404": _error("No such grant on the token's site."),
                "409": _error("The grant was revoked or has expired."),
                "422": _ERRORS["422"], **_BODY_ERRORS},
        }},
    }
