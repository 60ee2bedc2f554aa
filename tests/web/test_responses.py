"""Our JSONResponse (msgspec) writes the bytes Starlette's would, for what the API sends."""

from __future__ import annotations

import json
import math

import pytest
from starlette import responses

from widget_server.web.responses import JSONResponse

PAYLOADS = [
    {"tickets": [{"number": 1042, "subject": "Où est ma commande ? 😀", "assignee_id": None,
                  "at_risk": False, "breached": True, "tags": ["a", "b"]}],
     "next_before": 1041},
    {"body": "quotes \" and \\ backslashes, </script>, \u2028\u2029, \x00\x1f\x7f, tab\t"},
    {"error": {"code": "invalid_token", "message": "this API token is not valid"}},
    {7: "an int key", "big": 2**70, "negative": -12, "tuple": (1, 2), "nested": [[{}], []]},
    {"rates": [0.5, 0.1, 1 / 3, 12.25, -0.0, 2.0, 99.99]},
    [],
    "plain",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_bytes_and_headers_are_starlettes(payload: object) -> None:
    ours, theirs = JSONResponse(payload, status_code=201), responses.JSONResponse(
        payload, status_code=201)
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers
    assert ours.status_code == 201


def test_a_number_in_exponent_form_is_still_the_same_number() -> None:
    values = [1e16, 1e-7, 1e22, 5e-324]
    body = JSONResponse({"values": values}).body
    assert body == b'{"values":[1e16,1e-7,1e22,5e-324]}'
    assert json.loads(body)["values"] == values


def test_nan_and_infinity_are_null_not_a_failed_request() -> None:
    with pytest.raises(ValueError):  # Starlette's refuses them (allow_nan=False)
        responses.JSONResponse({"rate": math.nan})
    assert JSONResponse({"rate": math.nan, "max": math.inf}).body == b'{"rate":null,"max":null}'
