"""Amazon Pay `PaymentRefund` IPNs as Amazon SNS posts them: rendering, signing, and delivery with retries.

Shape: the real sandbox IPN in `tests/fixtures/sns/amazon-pay-refund-completed-eu-2017.json`. The Amazon
Pay `Message` is compact JSON with the `/` of each `</` escaped as `\\/` (as Amazon's serialiser does); the
SNS envelope is signed over `string_to_sign` of the library's verifier, never a copy of it.

Delivery runs on one background worker, off the simulator's lock: the observer only enqueues. IPNs of one
refund are posted in order (the next waits until the previous one is delivered or given up); a non-2xx
answer or a connection error is redelivered with exponential backoff up to `max_attempts`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from amazon_pay_refunds.adapters.sns.message import MessageType, SnsMessage, string_to_sign

from .authority import LocalAuthority

AMAZON_PAY_IPN_ACCOUNT = "291180941288"
SIGNATURE_VERSIONS = ("1", "2", "alternate")
IPN_FAULT_KINDS = ("drop", "duplicate", "delay")
CONTENT_TYPE = "text/plain; charset=UTF-8"
USER_AGENT = "Amazon Simple Notification Service Agent"


@dataclass(frozen=True)
class IpnRegion:
    """Where Amazon Pay's IPN topics live: AWS region, topic-name prefix and MarketplaceID.

    Values observed in real IPNs (fixtures/sns): US 2015 and EU 2017 sandbox notifications.
    """

    aws_region: str
    topic_prefix: str
    marketplace_id: str


IPN_REGIONS = {
    "us": IpnRegion("us-east-1", "A3BXB0YN3XH17H", "A3BXB0YN3XH17H"),
    "eu": IpnRegion("eu-west-1", "A1G8446IYHA4MR", "136311"),
}


def topic_arn(region: IpnRegion, seller_id: str) -> str:
    """`arn:aws:sns:{region}:291180941288:{marketplace prefix}{SellerId}`, the observed topic naming."""
    return f"arn:aws:sns:{region.aws_region}:{AMAZON_PAY_IPN_ACCOUNT}:{region.topic_prefix}{seller_id}"


def amazon_pay_message(
    *,
    region: IpnRegion,
    seller_id: str,
    notification_reference_id: str,
    timestamp: str,
    notification_data: str,
    notification_type: str = "PaymentRefund",
) -> str:
    """The Amazon Pay JSON carried in the SNS `Message`, fields in the order of the real IPN."""
    document = {
        "ReleaseEnvironment": "Sandbox",
        "MarketplaceID": region.marketplace_id,
        "Version": "2013-01-01",
        "NotificationType": notification_type,
        "SellerId": seller_id,
        "NotificationReferenceId": notification_reference_id,
        "Timestamp": timestamp,
        "NotificationData": notification_data,
    }
    # Amazon escapes the "/" of every "</" as "\/" (the real IPN: `<\/AmazonRefundId>`, but an unescaped
    # `xmlns="https://..."`). "<" only occurs inside JSON strings, where "\/" is a valid escape of "/".
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")


@dataclass(frozen=True)
class IpnNotification:
    """One IPN, fixed when the refund changed; signed (once) when first posted."""

    message_id: str
    notification_reference_id: str
    topic_arn: str
    message: str
    timestamp: str
    signature_version: str
    seller_id: str
    amazon_refund_id: str
    refund_reference_id: str
    state: str
    reason_code: str | None


def sns_envelope(
    notification: IpnNotification, *, authority: LocalAuthority, base_url: str, subscription_id: str
) -> str:
    """The signed SNS HTTP body, key order and layout as in the real IPN."""
    certificate_url = f"{base_url}/{authority.certificate_name}"
    unsubscribe_url = (
        f"{base_url}/?Action=Unsubscribe&SubscriptionArn={notification.topic_arn}:{subscription_id}"
    )
    unsigned = SnsMessage(
        type=MessageType.NOTIFICATION,
        message_id=notification.message_id,
        topic_arn=notification.topic_arn,
        message=notification.message,
        timestamp=datetime.fromisoformat(notification.timestamp),
        timestamp_text=notification.timestamp,
        signature_version=notification.signature_version,
        signature=b"",
        signing_cert_url=certificate_url,
    )
    envelope = {
        "Type": "Notification",
        "MessageId": notification.message_id,
        "TopicArn": notification.topic_arn,
        "Message": notification.message,
        "Timestamp": notification.timestamp,
        "SignatureVersion": notification.signature_version,
        "Signature": authority.sign(string_to_sign(unsigned), notification.signature_version),
        "SigningCertURL": certificate_url,
        "UnsubscribeURL": unsubscribe_url,
    }
    return json.dumps(envelope, indent=2, separators=(",", " : "), ensure_ascii=False)


def sns_headers(notification: IpnNotification, subscription_id: str) -> dict[str, str]:
    return {
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": notification.message_id,
        "x-amz-sns-topic-arn": notification.topic_arn,
        "x-amz-sns-subscription-arn": f"{notification.topic_arn}:{subscription_id}",
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
    }


@dataclass(frozen=True)
class RetryPolicy:
    """SNS-like redelivery, shortened for local use: attempt n+1 after first_delay * multiplier**(n-1)."""

    max_attempts: int = 5
    first_delay: float = 0.2
    multiplier: float = 2.0
    max_delay: float = 5.0
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise ValueError("max_attempts must be a positive integer")
        for name in ("first_delay", "multiplier", "max_delay", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def delay_after(self, attempts: int) -> float:
        return float(min(self.max_delay, self.first_delay * self.multiplier ** (attempts - 1)))


class Undeliverable(Exception):
    """The IPN cannot be built at all (e.g. the simulator is not served): no point retrying."""


@dataclass
class _Payload:
    """One IPN and, once first posted, its signed body: shared by the deliveries of a duplicate."""

    notification: IpnNotification
    body: str | None = None
    headers: dict[str, str] | None = None


@dataclass
class _Delivery:
    payload: _Payload
    url: str
    entry: dict[str, Any]
    due_at: float
    sequence: int


@dataclass
class _IpnFault:
    kind: str
    remaining: int
    seconds: float


Renderer = Callable[[IpnNotification], tuple[str, dict[str, str]]]


@dataclass
class IpnDispatcher:
    """The queue of IPNs to post, the worker that posts them, the delivery log and the IPN faults."""

    render: Renderer
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._condition = threading.Condition()
        # Queues keyed by refund (a delayed IPN gets a queue of its own, so that later ones overtake it).
        self._queues: dict[str, deque[_Delivery]] = {}
        self._in_flight: _Delivery | None = None
        self._log: list[dict[str, Any]] = []
        self._faults: list[_IpnFault] = []
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._session = requests.Session()
        self._session.trust_env = False  # never through a proxy: the receiver is local

    # -- producer side (called under the simulator's lock: never blocks on I/O) --

    def enqueue(self, notification: IpnNotification, url: str) -> None:
        with self._condition:
            fault = self._take_fault()
            entry = self._entry(notification, url, fault.kind if fault else None)
            if fault is not None and fault.kind == "drop":
                entry["outcome"] = "dropped"
                return
            now = self.monotonic()
            payload = _Payload(notification)
            key = notification.amazon_refund_id
            if fault is not None and fault.kind == "delay":
                key = f"{key}#delayed#{self._sequence}"
                self._put(key, payload, url, entry, now + fault.seconds)
            else:
                self._put(key, payload, url, entry, now)
            if fault is not None and fault.kind == "duplicate":
                copy = self._entry(notification, url, "duplicate")
                copy["duplicate"] = True
                self._put(key, payload, url, copy, now)
            self._ensure_worker()
            self._condition.notify_all()

    def add_fault(self, kind: str, count: int, seconds: float) -> None:
        with self._condition:
            self._faults.append(_IpnFault(kind, count, seconds))

    def deliveries(self) -> list[dict[str, Any]]:
        with self._condition:
            return [dict(entry) for entry in self._log]

    def clear(self) -> None:
        """Forget queued IPNs, the log and the faults (an IPN being posted right now still completes)."""
        with self._condition:
            self._queues.clear()
            self._log = []
            self._faults.clear()
            self._condition.notify_all()

    def pending(self) -> int:
        with self._condition:
            return self._pending_count()

    def wait_idle(self, timeout: float) -> None:
        deadline = self.monotonic() + timeout
        with self._condition:
            while self._pending_count():
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self._pending_count()} IPN deliveries still pending after {timeout} s"
                    )
                self._condition.wait(remaining)

    def stop(self, timeout: float = 5.0) -> None:
        with self._condition:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._condition.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- internals --

    def _pending_count(self) -> int:
        return sum(len(queue) for queue in self._queues.values()) + (self._in_flight is not None)

    def _take_fault(self) -> _IpnFault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        return fault

    def _entry(self, notification: IpnNotification, url: str, fault: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "message_id": notification.message_id,
            "notification_reference_id": notification.notification_reference_id,
            "amazon_refund_id": notification.amazon_refund_id,
            "refund_reference_id": notification.refund_reference_id,
            "seller_id": notification.seller_id,
            "state": notification.state,
            "reason_code": notification.reason_code,
            "signature_version": notification.signature_version,
            "url": url,
            "outcome": "pending",
            "status": None,
            "attempts": 0,
            "error": None,
            "fault": fault,
            "duplicate": False,
        }
        self._log.append(entry)
        return entry

    def _put(self, key: str, payload: _Payload, url: str, entry: dict[str, Any], due: float) -> None:
        self._sequence += 1
        self._queues.setdefault(key, deque()).append(_Delivery(payload, url, entry, due, self._sequence))

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="amazon-pay-sim-ipn", daemon=True)
            self._thread.start()

    def _next(self) -> _Delivery | None:
        """Under the condition: the earliest due head of a queue, waiting for one; None when stopping."""
        while not self._stopping and self._thread is threading.current_thread():
            now = self.monotonic()
            heads = [queue[0] for queue in self._queues.values() if queue]
            due = [delivery for delivery in heads if delivery.due_at <= now]
            if due:
                return min(due, key=lambda delivery: (delivery.due_at, delivery.sequence))
            wake = min((delivery.due_at for delivery in heads), default=None)
            self._condition.wait(None if wake is None else max(wake - now, 0.001))
        return None

    def _run(self) -> None:
        while True:
            with self._condition:
                delivery = self._next()
                if delivery is None:
                    return
                self._in_flight = delivery
            try:
                status, error, final = self._attempt(delivery)
            except Exception as failure:  # the worker must survive anything
                status, error, final = None, f"{type(failure).__name__}: {failure}", True
            with self._condition:
                self._in_flight = None
                self._record(delivery, status, error, final)
                self._condition.notify_all()

    def _attempt(self, delivery: _Delivery) -> tuple[int | None, str | None, bool]:
        """(HTTP status, error, final): final when delivered or not worth retrying."""
        payload = delivery.payload  # only this worker thread writes it
        if payload.body is None or payload.headers is None:
            try:
                payload.body, payload.headers = self.render(payload.notification)
            except Undeliverable as error:
                return None, str(error), True
        try:
            response = self._session.post(
                delivery.url,
                data=payload.body.encode("utf-8"),
                headers=payload.headers,
                timeout=self.policy.timeout,
                allow_redirects=False,
            )
            response.close()
        except requests.RequestException as error:
            return None, f"{type(error).__name__}", False
        return response.status_code, None, 200 <= response.status_code < 300

    def _record(self, delivery: _Delivery, status: int | None, error: str | None, final: bool) -> None:
        entry = delivery.entry
        entry["attempts"] += 1
        entry["status"], entry["error"] = status, error
        delivered = status is not None and 200 <= status < 300
        queue = next((q for q in self._queues.values() if q and q[0] is delivery), None)
        if queue is None:
            return  # cleared (reset) while it was being posted
        if delivered or final or entry["attempts"] >= self.policy.max_attempts:
            entry["outcome"] = "delivered" if delivered else "failed"
            queue.popleft()
            self._queues = {key: q for key, q in self._queues.items() if q}
        else:
            delivery.due_at = self.monotonic() + self.policy.delay_after(entry["attempts"])


def new_id() -> str:
    return str(uuid.uuid4())
