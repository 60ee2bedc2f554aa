"""The abuse policy as plain objects, with a hand-moved clock (the real servers are tested in
tests/web/test_abuse_limits.py)."""

from __future__ import annotations

import pytest

from widget_server.abuse import Limits, RateLimited
from widget_server.config import ConfigError, Settings

IP = "192.0.2.1"


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_a_burst_then_an_even_refill_and_the_wait_in_whole_seconds() -> None:
    clock = Ticker()
    limits = Limits(Settings(messages_per_visitor_minute=3), clock)
    assert [await limits.send("v_1", new_request=False, address=IP) for _ in range(3)] == [0.0] * 3
    assert await limits.send("v_1", new_request=False, address=IP) == 20.0  # one every 60 / 3 s
    # another visitor's bucket
    assert await limits.send("v_2", new_request=False, address=IP) == 0.0
    clock.now = 20.0
    assert await limits.send("v_1", new_request=False, address=IP) == 0.0
    assert RateLimited(0.2).retry_after == "1" and RateLimited(19.01).seconds == 20


@pytest.mark.anyio
async def test_a_new_request_counts_as_a_message_and_as_a_request() -> None:
    limits = Limits(Settings(messages_per_visitor_minute=3, requests_per_visitor_hour=1),
                    Ticker())
    assert await limits.send("v_1", new_request=True, address=IP) == 0.0
    assert await limits.send("v_1", new_request=True, address=IP) == 3600.0
    assert await limits.send("v_1", new_request=False, address=IP) == 0.0  # the minute's third
    assert await limits.send("v_1", new_request=False, address=IP) > 0


@pytest.mark.anyio
async def test_new_requests_from_fresh_visitors_count_against_their_address() -> None:
    limits = Limits(Settings(requests_per_ip_hour=3), Ticker())
    assert [await limits.send(f"v_{n}", new_request=True, address=IP)
            for n in range(3)] == [0.0] * 3
    # 3 an hour: 1 per 20 min
    assert await limits.send("v_9", new_request=True, address=IP) == 1200.0
    # a follow-up is no ticket
    assert await limits.send("v_9", new_request=False, address=IP) == 0.0
    assert await limits.send("v_9", new_request=True, address="192.0.2.2") == 0.0  # another address


def test_a_visitors_typing_goes_on_once_per_conversation_per_period() -> None:
    clock = Ticker()
    limits = Limits(Settings(), clock)
    assert [limits.typing("v_1", "c_1") for _ in range(1000)].count(True) == 1
    assert limits.typing("v_1", "c_2") and limits.typing("v_2", "c_1")
    clock.now = 2.0
    assert limits.typing("v_1", "c_1")


@pytest.mark.anyio
async def test_zero_turns_a_limit_off() -> None:
    limits = Limits(Settings(sessions_per_ip_hour=0, ws_connects_per_ip_minute=0,
                             ws_open_per_ip=0, ws_frames_per_minute=0), Ticker())
    assert all([await limits.session("192.0.2.1") == 0.0 for _ in range(10_000)])
    assert all([(await limits.connect("192.0.2.1")).wait == 0.0 for _ in range(10_000)])
    frames = limits.frame_budget()
    assert all(frames() == 0.0 for _ in range(10_000))


@pytest.mark.anyio
async def test_open_sockets_per_address_are_freed_on_release_and_refusals_cost_nothing() -> None:
    limits = Limits(Settings(ws_open_per_ip=2, ws_connects_per_ip_minute=3), Ticker())
    first, second = await limits.connect("192.0.2.1"), await limits.connect("192.0.2.1")
    assert first.wait == second.wait == 0.0
    busy = await limits.connect("192.0.2.1")
    assert busy.wait == 30.0 and "open" in busy.message
    assert (await limits.connect("192.0.2.2")).wait == 0.0  # another address
    first.release()
    assert (await limits.connect("192.0.2.1")).wait == 0.0  # the third token: busy spent none
    second.release()
    refused = await limits.connect("192.0.2.1")
    assert refused.wait == 20.0 and "new connections" in refused.message


def test_each_connection_has_its_own_frame_budget() -> None:
    limits = Limits(Settings(ws_frames_per_minute=2), Ticker())
    one, two = limits.frame_budget(), limits.frame_budget()
    assert [one(), one(), one()] == [0.0, 0.0, 30.0]
    assert two() == 0.0


def test_the_settings_take_zero_and_refuse_negatives() -> None:
    env = {"WIDGET_SESSIONS_PER_IP_HOUR": "0", "WIDGET_WS_IDLE_TIMEOUT": "0",
           "WIDGET_LOGIN_FREE_FAILURES": "0", "WIDGET_WS_PING_INTERVAL": "2.5"}
    settings = Settings.from_env(env)
    assert (settings.sessions_per_ip_hour, settings.ws_idle_timeout) == (0, 0.0)
    assert (settings.login_free_failures, settings.ws_ping_interval) == (0, 2.5)
    for name, value in [("WIDGET_MESSAGES_PER_VISITOR_MINUTE", "-1"),
                        ("WIDGET_WS_IDLE_TIMEOUT", "-5"), ("WIDGET_WS_SEND_QUEUE", "0"),
                        ("WIDGET_LOGIN_MAX_LOCKOUT", "0"), ("WIDGET_WS_OPEN_PER_IP", "many")]:
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})
