"""Webhooks (issue 6): messages from decisions, delivered to a receiver on 127.0.0.1 that fails
for a while, retried on the back-off schedule with the injected clock (never sleeping), and seen
exactly once per webhook-id; Standard Webhooks signatures checked by the independent
`standardwebhooks` package; SSRF refusals; dead deliveries and re-delivery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from perkflow.service.core import Service
from perkflow.service.problems import Problem
from perkflow.service.webhooks import RETRY_AFTER, Webhooks, parse_allow
from perkflow.storage import tables as t

from ..databases import Clock, publish


class Receiver:
    """A tiny HTTP server that answers 500 to the first `failures` requests (or a redirect)."""

    def __init__(self, failures: int = 0, status: int = 500) -> None:
        self.failures, self.status = failures, status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.seen: dict[str, int] = {}  # webhook-id -> times received with a 2xx answer
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(receiver.status)
                    if receiver.status in (301, 302, 307):
                        self.send_header("location", "http://127.0.0.1:1/elsewhere")
                    self.end_headers()
                    return
                receiver.seen[self.headers["webhook-id"]] = receiver.seen.get(self.headers["webhook-id"], 0) + 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _hooks(service: Service, clock: Clock) -> Webhooks:
    service.webhooks = Webhooks(service.engine, clock, allow=parse_allow("127.0.0.1"))
    return service.webhooks


def _purchases(service: Service, clock: Clock, n: int) -> None:
    for i in range(n):
        result = service.events.post({
            "id": f"pos-{i}", "type": "purchase", "member_id": "m1", "occurred_at": clock.now.isoformat(),
            "store": "S1", "channel": "pos", "attributes": {"amount": 60000},
        })
        assert not isinstance(result, Problem), result


def _ready(service: Service, clock: Clock) -> None:
    clock.set("2026-11-20T12:00:00+00:00")
    publish(service, "examples/coffee/scheme.yaml")
    service.members.put("m1", {"phone": "13800000000"}, actor="test")


def test_failed_deliveries_are_retried_on_schedule_and_each_message_arrives_once(service: Service, clock: Clock, receiver: Receiver):
    _ready(service, clock)
    hooks = _hooks(service, clock)
    sub = hooks.create({"url": receiver.url})
    assert not isinstance(sub, Problem) and sub["secret"].startswith("whsec_")
    _purchases(service, clock, 3)  # points and growth change; the second purchase reaches silver and a coupon
    with service.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(t.outbox.c.kind).order_by(t.outbox.c.id))]
    assert {"points_changed", "tier_changed", "coupon_issued"} <= set(kinds)
    receiver.failures = 3 * len(kinds)  # down for the first three rounds
    first = hooks.run()
    assert (first.dispatched, first.delivered, first.failed) == (len(kinds), 0, len(kinds))
    clock.now += RETRY_AFTER[0] - timedelta(seconds=1)
    assert hooks.run().failed == 0  # not due yet
    for wait in (timedelta(seconds=1), RETRY_AFTER[1], RETRY_AFTER[2]):
        clock.now += wait
        hooks.run()
    assert receiver.failures == 0
    assert set(receiver.seen) == {f"msg_{i}" for i in range(1, len(kinds) + 1)}  # none missing
    assert all(count == 1 for count in receiver.seen.values())  # each id once after it succeeded
    assert hooks.run().delivered == 0  # nothing left
    log = hooks.deliveries(sub["id"])
    assert not isinstance(log, Problem)
    assert {d["status"] for d in log} == {"delivered"} and {d["attempts"] for d in log} == {4}
    # every try of a message carried the same webhook-id
    ids = [h["webhook-id"] for h, _ in receiver.requests]
    assert len(ids) == 4 * len(kinds) and all(ids.count(i) == 4 for i in set(ids))


def test_a_delivery_is_dead_after_the_last_try_and_can_be_sent_again(service: Service, clock: Clock, receiver: Receiver):
    _ready(service, clock)
    hooks = _hooks(service, clock)
    sub = hooks.create({"url": receiver.url, "kinds": ["tier_changed"]})
    assert not isinstance(sub, Problem)
    _purchases(service, clock, 2)
    receiver.failures = 100
    hooks.run()
    waits = []
    for _ in range(len(RETRY_AFTER)):
        (delivery,) = hooks.deliveries(sub["id"])  # type: ignore[misc]
        due = datetime.fromisoformat(delivery["next_attempt_at"])
        waits.append(due - clock.now)
        clock.now = due
        hooks.run()
    assert waits == list(RETRY_AFTER) and sum(waits, timedelta()) > timedelta(days=1)
    (delivery,) = hooks.deliveries(sub["id"])  # type: ignore[misc]
    assert delivery["status"] == "dead" and delivery["attempts"] == len(RETRY_AFTER) + 1 and delivery["last_status"] == 500
    assert receiver.seen == {}
    receiver.failures = 0
    again = hooks.redeliver(delivery["id"])
    assert not isinstance(again, Problem) and again["status"] == "pending"
    assert hooks.run().delivered == 1
    assert receiver.seen == {delivery["message_id"]: 1}


def test_redirects_are_not_followed(service: Service, clock: Clock):
    redirecting = Receiver(failures=1, status=302)
    try:
        _ready(service, clock)
        hooks = _hooks(service, clock)
        sub = hooks.create({"url": redirecting.url, "kinds": ["tier_changed"]})
        assert not isinstance(sub, Problem)
        _purchases(service, clock, 2)
        assert hooks.run().failed == 1
        (delivery,) = hooks.deliveries(sub["id"])  # type: ignore[misc]
        assert delivery["last_status"] == 302 and delivery["status"] == "pending"
        assert len(redirecting.requests) == 1  # nothing went to the Location
    finally:
        redirecting.close()


def test_signatures_verify_with_the_standard_webhooks_package(service: Service, receiver: Receiver):
    # the package checks the timestamp against the real time, so this test runs at the real time
    clock = Clock(datetime.fromtimestamp(time.time(), UTC).isoformat())  # noqa: TID251
    service.clock = clock
    service.events.clock = clock
    service.versions.clock = clock
    publish(service, "examples/coffee/scheme.yaml")
    service.members.put("m1", {"phone": "13800000000"}, actor="test")
    hooks = _hooks(service, clock)
    sub = hooks.create({"url": receiver.url, "kinds": ["points_changed"]})
    assert not isinstance(sub, Problem)
    _purchases(service, clock, 1)
    assert hooks.run().delivered == 2
    verifier = Webhook(sub["secret"])
    for headers, body in receiver.requests:
        message = verifier.verify(body, headers)
        assert message["type"] == "points_changed" and message["data"]["member_id"] == "m1"
        assert "phone" not in json.dumps(message)  # no personal data
        with pytest.raises(WebhookVerificationError):
            verifier.verify(body.replace(b'"change":', b'"change":1'), headers)
        with pytest.raises(WebhookVerificationError):
            verifier.verify(body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)})


def test_urls_that_reach_private_addresses_are_refused_unless_allowed(service: Service, clock: Clock):
    strict = Webhooks(service.engine, clock, allow=())
    for url in ("http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x", "ftp://example.com/x", "http://"):
        refused = strict.create({"url": url})
        assert isinstance(refused, Problem) and refused.code == "url_not_allowed", url
    public = Webhooks(service.engine, clock, allow=(), resolver=lambda host: ["93.184.216.34"])
    assert not isinstance(public.create({"url": "https://hooks.example.com/perkflow"}), Problem)
    rebinding = Webhooks(service.engine, clock, allow=(), resolver=lambda host: ["93.184.216.34", "192.168.1.5"])
    assert isinstance(rebinding.create({"url": "https://mixed.example.com/"}), Problem)
    allowed = Webhooks(service.engine, clock, allow=parse_allow("127.0.0.1"))
    assert not isinstance(allowed.create({"url": "http://127.0.0.1:9/x"}), Problem)
    bad_kind = allowed.create({"url": "http://127.0.0.1:9/x", "kinds": ["everything"]})
    assert isinstance(bad_kind, Problem) and bad_kind.code == "unknown_kind"


def test_without_a_subscription_no_webhook_message_is_kept(service: Service, clock: Clock):
    _ready(service, clock)
    _purchases(service, clock, 1)
    with service.engine.connect() as conn:
        assert conn.execute(select(t.outbox.c.kind)).all() == []


NOTIFYING = """
perkflow: 1
id: n
name: N
balances:
  points: {expiry: {kind: rolling, after: 30d}, remind_before: 7d}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
  - id: remind
    on: points_expiring
    then:
      - notify: {template: expiring}
      - notify: {template: expiring, channel: webhook}
      - notify: {template: expiring, channel: sms}
templates:
  expiring: {text: {en: "{amount} points expire on {expires_at}; {points} in all. {points.__class__}"}}
"""


def test_notifications_are_rendered_and_sent_on_their_channel_without_personal_data(
    service: Service, clock: Clock, receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    clock.set("2026-11-20T12:00:00+00:00")
    publish(service, NOTIFYING)
    service.members.put("m1", {"phone": "13800000000", "name": "Wang"}, actor="test")
    hooks = _hooks(service, clock)
    sub = hooks.create({"url": receiver.url, "kinds": ["member_notification"]})
    assert not isinstance(sub, Problem)
    _purchases(service, clock, 1)
    clock.set("2026-12-20T12:00:00+00:00")
    assert service.scheduler.tick().events == 1  # the reminder (expiry comes later)
    with caplog.at_level("INFO", logger="perkflow.notifications"):
        assert service.notifications.run() == (2, 1)  # log and webhook sent; sms: no such channel here
    (line,) = [r.getMessage() for r in caplog.records if r.name == "perkflow.notifications"]
    assert "600 points expire on 2026-12-21; 600 in all. {points.__class__}" in line
    assert "m1" not in line and "1380" not in line and "Wang" not in line
    assert hooks.run().delivered == 1
    (headers, body) = receiver.requests[-1]
    message = json.loads(body)
    assert message["type"] == "member_notification" and message["data"]["member_id"] == "m1"
    assert message["data"]["text"].startswith("600 points expire on 2026-12-21")
