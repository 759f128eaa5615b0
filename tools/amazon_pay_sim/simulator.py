"""The simulator: MWS request authentication and validation as Amazon does it, faults, throttling, control.

One `threading.RLock` guards all state. `handle_mws` turns one HTTP request into one `MwsAnswer`; the HTTP
shell (`server.py`) only moves bytes. Refund observers run synchronously under the lock: an observer that
does slow work (posting an IPN) must hand it to another thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from amazon_pay_refunds.adapters.mws import signing
from amazon_pay_refunds.adapters.mws.endpoints import SANDBOX_SECTION
from amazon_pay_refunds.money import MINOR_UNITS, InvalidAmount, format_amount, parse_amount

from . import responses
from .authority import LocalAuthority
from .ipn import (
    IPN_FAULT_KINDS,
    IPN_REGIONS,
    SIGNATURE_VERSIONS,
    IpnDispatcher,
    IpnNotification,
    RetryPolicy,
    Undeliverable,
    amazon_pay_message,
    new_id,
    sns_envelope,
    sns_headers,
    topic_arn,
)
from .pay_v2 import CHARGE_STATES, REFUND_SIMULATION_CODES, PayV2, V2Answer, V2Change, ipn_message
from .pay_v2 import OPERATIONS as V2_OPERATIONS
from .pay_v2 import Fault as V2Fault
from .state import (
    CAPTURE_STATES,
    EXTERNAL_REFUND_STATES,
    EXTERNAL_REFUND_TYPES,
    MAX_SELLER_REFUND_NOTE,
    MAX_SOFT_DESCRIPTOR,
    REFUND_REFERENCE_ID,
    Capture,
    Marketplace,
    MwsError,
    Refund,
    RefundChange,
    RefundObserver,
    RefundRequest,
    invalid_parameter,
    missing_parameter,
)
from .throttle import Throttle

if TYPE_CHECKING:
    from .server import ServerHandle

DEFAULT_SELLER_ID = "A1LOCALSELLER"
DEFAULT_ACCESS_KEY = "LOCALACCESSKEY"
DEFAULT_SECRET_KEY = "local-secret-key-not-real"  # noqa: S105 - an obviously fake local value
DEFAULT_SETTLE_SECONDS = 5.0
DEFAULT_FAULT_HOLD_SECONDS = 60.0

MWS_PATH = f"/{SANDBOX_SECTION}/{signing.API_VERSION}"
TIMESTAMP_TOLERANCE = timedelta(minutes=15)
OPERATIONS = ("Refund", "GetRefundDetails", "GetCaptureDetails", "GetServiceStatus")
FAULT_KINDS = ("503", "500", "timeout", "throttle", "accept-then-timeout", "accept-then-unreadable")
# The XML declaration an `accept-then-unreadable` answer carries: an encoding Python's XML parsers refuse.
UNREADABLE_DECLARATION = '<?xml version="1.0" encoding="UTF-7"?>'

_COMMON_PARAMS = frozenset(
    {"AWSAccessKeyId", "Action", "SellerId", "SignatureMethod", "SignatureVersion", "Timestamp", "Version"}
)
_OPTIONAL_COMMON = frozenset({"Signature", "MWSAuthToken"})
_OPERATION_PARAMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Refund": (
        frozenset(
            {"AmazonCaptureId", "RefundReferenceId", "RefundAmount.Amount", "RefundAmount.CurrencyCode"}
        ),
        frozenset({"SellerRefundNote", "SoftDescriptor"}),
    ),
    "GetRefundDetails": (frozenset({"AmazonRefundId"}), frozenset()),
    "GetCaptureDetails": (frozenset({"AmazonCaptureId"}), frozenset()),
    "GetServiceStatus": (frozenset(), frozenset()),
}
# What the call log keeps of a request: never the signature, the access key or the MWSAuthToken.
_LOGGED_PARAMS = (
    "AmazonCaptureId",
    "AmazonRefundId",
    "RefundReferenceId",
    "RefundAmount.Amount",
    "RefundAmount.CurrencyCode",
    "SellerRefundNote",
    "SoftDescriptor",
)

Clock = Callable[[], datetime]


def _system_clock() -> datetime:
    return datetime.now(UTC)


class ControlError(Exception):
    """Bad input to the control API: answered as JSON {"error": {"code", "message"}}."""

    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Seller:
    seller_id: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class MwsAnswer:
    """What to send back. With `hold_seconds`, send nothing: hold the connection that long, then drop it."""

    status: int
    body: str
    hold_seconds: float | None = None


@dataclass
class _Fault:
    kind: str
    remaining: int
    hold_seconds: float


class Simulator:
    """The Amazon Pay v1 sandbox, in process. `serve()` puts it on HTTP."""

    def __init__(
        self,
        *,
        seller_id: str = DEFAULT_SELLER_ID,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        clock: Clock | None = None,
        throttling: bool = True,
        fault_hold_seconds: float = DEFAULT_FAULT_HOLD_SECONDS,
        seed: int | None = None,
        ipn_url: str | None = None,
        ipn_signature_version: str = "alternate",
        ipn_region: str = "us",
        ipn_retry: RetryPolicy | None = None,
        authority: LocalAuthority | None = None,
        ca_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """`authority` (tests sharing one) or `ca_dir` (persisted, shared with other processes); without
        either, an in-memory CA is created when first needed (at the latest by `serve()`)."""
        if authority is not None and ca_dir is not None:
            raise ValueError("give authority or ca_dir, not both")
        if ipn_region not in IPN_REGIONS:
            raise ValueError(f"ipn_region must be one of {', '.join(IPN_REGIONS)}")
        self._lock = threading.RLock()
        self._wall_clock = clock or _system_clock
        self._offset = timedelta(0)
        self._seed = seed
        self.settle_seconds = settle_seconds
        self.fault_hold_seconds = fault_hold_seconds
        self.default_seller_id = seller_id
        self._sellers: dict[str, Seller] = {}
        self._keys: dict[str, Seller] = {}
        self._observers: list[RefundObserver] = []
        self._v2_observers: list[Callable[[V2Change], None]] = []
        self._throttle = Throttle(enabled=throttling)
        self._faults: dict[str, list[_Fault]] = {}
        self._calls: list[dict[str, Any]] = []
        self._authority = authority if ca_dir is None else LocalAuthority.load_or_create(ca_dir)
        self._base_url: str | None = None
        self._ipn_url: str | None = None
        self._ipn_versions = self._check_signature_version(ipn_signature_version)
        self._ipn_sent = 0
        self._ipn_region = IPN_REGIONS[ipn_region]
        self._subscription_id = new_id()
        self._ipn = IpnDispatcher(self._render_ipn, ipn_retry or RetryPolicy())
        self.market = self._new_market()
        # API v2 (pay_v2.py): its own charges and refunds; the same lock, clocks, quota switch and IPNs.
        self.pay_v2 = PayV2(
            lock=self._lock,
            now=self.now,
            wall_clock=lambda: self._wall_clock(),
            settle_seconds=settle_seconds,
            throttling=lambda: self._throttle.enabled,
            notify=self._post_v2_ipn,
            take_fault=self._take_v2_fault,
            seed=seed,
        )
        self.add_seller(seller_id, access_key, secret_key)
        if ipn_url is not None:
            self.set_ipn_url(ipn_url)

    # -- configuration --

    def add_seller(self, seller_id: str, access_key: str, secret_key: str) -> None:
        with self._lock:
            if access_key in self._keys and self._keys[access_key].seller_id != seller_id:
                raise ValueError(f"access key {access_key!r} already belongs to another seller")
            seller = Seller(seller_id, access_key, secret_key)
            self._sellers[seller_id] = seller
            self._keys[access_key] = seller

    def add_v2_key(
        self, public_key_id: str, public_key_pem: str | bytes, merchant_id: str | None = None
    ) -> None:
        """Register a merchant's API v2 public key (its seller id: the default seller unless named)."""
        self.pay_v2.register_key(public_key_id, public_key_pem, merchant_id or self.default_seller_id)

    def set_throttling(self, enabled: bool) -> None:
        with self._lock:
            self._throttle.enabled = enabled
            self._throttle.reset()

    @property
    def throttling(self) -> bool:
        return self._throttle.enabled

    def on_refund_change(self, observer: RefundObserver) -> None:
        """Call `observer` with every refund state change (creation included), in order."""
        with self._lock:
            self._observers.append(observer)

    def on_v2_change(self, observer: Callable[[V2Change], None]) -> None:
        """Call `observer` with every API v2 refund change (creation included), in order, whether or not
        an IPN URL is set (the simulation test signs and delivers its own IPNs)."""
        with self._lock:
            self._v2_observers.append(observer)

    def now(self) -> datetime:
        """The simulated time: the clock plus every `advance_clock`."""
        return self._wall_clock() + self._offset

    def serve(self, host: str = "127.0.0.1", port: int = 0, *, tls: bool = False) -> ServerHandle:
        """Serve over HTTP, or HTTPS with a fresh self-signed certificate when ``tls``."""
        from .server import serve

        return serve(self, host=host, port=port, tls=tls)

    # -- SNS signing and IPNs --

    @property
    def authority(self) -> LocalAuthority:
        """The local CA and signing certificate (created in memory on first use unless given)."""
        with self._lock:
            if self._authority is None:
                self._authority = LocalAuthority.create()
            return self._authority

    @property
    def ca_certificate_pem(self) -> str:
        return self.authority.ca_certificate_pem

    @property
    def certificate_name(self) -> str:
        return self.authority.certificate_name

    @property
    def certificate_url_prefix(self) -> str:
        """`<base url>/`: what `LocalAuthorityTrust(sim.ca_certificate_pem, prefix)` should be given."""
        with self._lock:
            if self._base_url is None:
                raise RuntimeError("the simulator is not served: no certificate URL yet (call serve())")
            return self._base_url + "/"

    @property
    def signing_certificate_url(self) -> str:
        return self.certificate_url_prefix + self.certificate_name

    def attach_base_url(self, base_url: str) -> None:
        """Called by the HTTP server: the base that SigningCertURL and UnsubscribeURL are built on."""
        parts = urlsplit(base_url)
        if parts.hostname in ("0.0.0.0", "::"):  # noqa: S104 - listening everywhere, reachable here
            base_url = f"{parts.scheme}://127.0.0.1:{parts.port}"
        with self._lock:
            self._base_url = base_url.rstrip("/")
            self.authority  # noqa: B018 - "on start the simulator creates its CA"

    def detach_base_url(self) -> None:
        """Called when the server stops: IPNs wait no more, the worker ends."""
        self._ipn.stop()

    @property
    def ipn_url(self) -> str | None:
        return self._ipn_url

    def set_ipn_url(self, url: str | None) -> None:
        """Post an IPN for every later refund state change to `url` (None: stop posting new ones)."""
        if url is not None:
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                raise ControlError(400, "InvalidUrl", "url must be an http(s) URL")
        with self._lock:
            self._ipn_url = url

    def set_ipn_options(
        self,
        *,
        signature_version: str | None = None,
        max_attempts: int | None = None,
        retry_delay_seconds: float | None = None,
    ) -> None:
        """SignatureVersion "1", "2" or "alternate"; redelivery attempts and the first retry delay."""
        with self._lock:
            if signature_version is not None:
                self._ipn_versions = self._check_signature_version(signature_version)
            policy = self._ipn.policy
            try:
                if max_attempts is not None:
                    policy = replace(policy, max_attempts=max_attempts)
                if retry_delay_seconds is not None:
                    policy = replace(policy, first_delay=retry_delay_seconds)
            except (TypeError, ValueError) as error:
                raise ControlError(400, "InvalidIpnOption", str(error)) from None
            self._ipn.policy = policy

    def ipn_settings(self) -> dict[str, Any]:
        with self._lock:
            policy = self._ipn.policy
            return {
                "url": self._ipn_url,
                "signature_version": "alternate" if len(self._ipn_versions) > 1 else self._ipn_versions[0],
                "max_attempts": policy.max_attempts,
                "retry_delay_seconds": policy.first_delay,
                "region": self._ipn_region.aws_region,
                "signing_certificate_url": self.signing_certificate_url if self._base_url else None,
                "certificate_url_prefix": self.certificate_url_prefix if self._base_url else None,
            }

    def add_ipn_fault(self, fault: str, count: int = 1, seconds: float | None = None) -> None:
        """The next `count` IPNs are dropped, delivered twice, or held `seconds` (later ones overtake)."""
        if fault not in IPN_FAULT_KINDS:
            raise ControlError(400, "InvalidFault", f"fault must be one of {', '.join(IPN_FAULT_KINDS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ControlError(400, "InvalidCount", "count must be a positive integer")
        if fault == "delay" and seconds is None:
            raise ControlError(400, "MissingField", "a delay fault needs seconds")
        hold = 0.0 if seconds is None else seconds
        if isinstance(hold, bool) or not isinstance(hold, int | float) or hold < 0:
            raise ControlError(400, "InvalidSeconds", "seconds must be a non-negative number")
        self._ipn.add_fault(fault, count, float(hold))

    def ipn_deliveries(self) -> list[dict[str, Any]]:
        """Every IPN so far: message id, refund, state, outcome, last HTTP status, attempts, fault."""
        return self._ipn.deliveries()

    def wait_for_ipn_idle(self, timeout: float = 10.0) -> None:
        """Block until no IPN is queued or being posted; TimeoutError after `timeout` seconds."""
        self._ipn.wait_idle(timeout)

    @staticmethod
    def _check_signature_version(version: str) -> tuple[str, ...]:
        if version not in SIGNATURE_VERSIONS:
            raise ControlError(
                400,
                "InvalidSignatureVersion",
                f"signature_version must be one of {', '.join(SIGNATURE_VERSIONS)}",
            )
        return ("1", "2") if version == "alternate" else (version,)

    def _post_ipn(self, change: RefundChange) -> None:
        """Under the lock: fix the IPN's content now, hand the posting to the dispatcher."""
        url = self._ipn_url
        if url is None:
            return
        refund = change.refund
        version = self._ipn_versions[self._ipn_sent % len(self._ipn_versions)]
        self._ipn_sent += 1
        reference_id = new_id()
        timestamp = responses.iso_millis(self._wall_clock())
        message = amazon_pay_message(
            region=self._ipn_region,
            seller_id=refund.seller_id,
            notification_reference_id=reference_id,
            timestamp=timestamp,
            notification_data=responses.refund_notification(refund),
        )
        notification = IpnNotification(
            message_id=new_id(),
            notification_reference_id=reference_id,
            topic_arn=topic_arn(self._ipn_region, refund.seller_id),
            message=message,
            timestamp=timestamp,
            signature_version=version,
            seller_id=refund.seller_id,
            amazon_refund_id=refund.amazon_refund_id,
            refund_reference_id=refund.refund_reference_id,
            state=refund.state,
            reason_code=refund.reason_code,
        )
        self._ipn.enqueue(notification, url)

    def _post_v2_ipn(self, change: V2Change) -> None:
        """Under the lock: an API v2 IPN (no state in the message; the receiver reads the object)."""
        for observer in list(self._v2_observers):
            observer(change)
        url = self._ipn_url
        if url is None:
            return
        version = self._ipn_versions[self._ipn_sent % len(self._ipn_versions)]
        self._ipn_sent += 1
        notification_id = new_id()
        notification = IpnNotification(
            message_id=new_id(),
            notification_reference_id=notification_id,
            topic_arn=topic_arn(self._ipn_region, change.merchant_id),
            message=ipn_message(change, notification_id),
            timestamp=responses.iso_millis(self._wall_clock()),
            signature_version=version,
            seller_id=change.merchant_id,
            amazon_refund_id=change.object_id,
            refund_reference_id="",
            state=change.state,
            reason_code=change.reason_code,
        )
        self._ipn.enqueue(notification, url)

    def _render_ipn(self, notification: IpnNotification) -> tuple[str, dict[str, str]]:
        """On the IPN worker, off the lock: the signed SNS body and its headers."""
        with self._lock:
            base_url, authority = self._base_url, self.authority
        if base_url is None:
            raise Undeliverable("the simulator is not served, so there is no SigningCertURL")
        body = sns_envelope(
            notification, authority=authority, base_url=base_url, subscription_id=self._subscription_id
        )
        return body, sns_headers(notification, self._subscription_id)

    # -- control --

    def reset(self) -> None:
        """Forget captures, refunds, faults, calls, quotas, clock offset, queued IPNs, their log and faults;
        keep sellers, observers, the IPN URL and the certificate authority."""
        with self._lock:
            self._ipn.clear()
            self._offset = timedelta(0)
            self._faults.clear()
            self._calls.clear()
            self._throttle.reset()
            self.market = self._new_market()
            self.pay_v2.reset()

    def create_capture(
        self,
        amount: str,
        currency_code: str,
        *,
        state: str = "Completed",
        seller_id: str | None = None,
        capture_reference_id: str | None = None,
    ) -> str:
        with self._lock:
            seller = seller_id or self.default_seller_id
            if seller not in self._sellers:
                raise ControlError(400, "UnknownSeller", f"seller {seller!r} is not configured")
            if state not in CAPTURE_STATES:
                raise ControlError(400, "InvalidState", f"state must be one of {', '.join(CAPTURE_STATES)}")
            value = self._control_amount(amount, currency_code)
            try:
                capture = self.market.create_capture(
                    seller_id=seller,
                    amount=value,
                    currency_code=currency_code,
                    state=state,
                    capture_reference_id=capture_reference_id,
                    reason_code="AmazonClosed" if state == "Closed" else None,
                )
            except ValueError as error:
                raise ControlError(400, "InvalidCaptureReferenceId", str(error)) from None
            return capture.amazon_capture_id

    def capture_view(self, capture_id: str) -> dict[str, Any]:
        with self._lock:
            self.market.settle_due()
            capture = self._control_capture(capture_id)
            return {
                "amazon_capture_id": capture.amazon_capture_id,
                "seller_id": capture.seller_id,
                "capture_reference_id": capture.capture_reference_id,
                "amount": format_amount(capture.amount, capture.currency_code),
                "currency_code": capture.currency_code,
                "state": capture.state,
                "reason_code": capture.reason_code,
                "refunded_amount": format_amount(self.market.refunded_amount(capture), capture.currency_code),
                "refunds": [self._refund_view(self.market.refunds[i]) for i in capture.refund_ids],
            }

    def refund_view(self, amazon_refund_id: str) -> dict[str, Any]:
        with self._lock:
            self.market.settle_due()
            refund = self.market.refunds.get(amazon_refund_id)
            if refund is None:
                raise ControlError(404, "RefundNotFound", f"no refund {amazon_refund_id!r}")
            return self._refund_view(refund)

    def external_refund(
        self, capture_id: str, amount: str, refund_type: str, *, state: str = "Completed"
    ) -> dict[str, Any]:
        with self._lock:
            capture = self._control_capture(capture_id)
            if refund_type not in EXTERNAL_REFUND_TYPES:
                raise ControlError(
                    400, "InvalidRefundType", f"refund_type must be one of {', '.join(EXTERNAL_REFUND_TYPES)}"
                )
            if state not in EXTERNAL_REFUND_STATES:
                raise ControlError(
                    400, "InvalidState", f"state must be one of {', '.join(EXTERNAL_REFUND_STATES)}"
                )
            value = self._control_amount(amount, capture.currency_code)
            return self._refund_view(self.market.external_refund(capture_id, value, refund_type, state))

    def seller_refund(
        self,
        capture_id: str,
        refund_reference_id: str,
        amount: str,
        *,
        seller_refund_note: str | None = None,
        soft_descriptor: str | None = None,
    ) -> dict[str, Any]:
        """Another system of the capture's seller calls Refund directly (not through this API's call log):
        Amazon's every rule applies, MwsError when Amazon would refuse it."""
        with self._lock:
            capture = self._control_capture(capture_id)
            request = RefundRequest(
                seller_id=capture.seller_id,
                amazon_capture_id=capture_id,
                refund_reference_id=refund_reference_id,
                amount=self._control_amount(amount, capture.currency_code),
                currency_code=capture.currency_code,
                seller_refund_note=seller_refund_note,
                soft_descriptor=soft_descriptor,
            )
            return self._refund_view(self.market.refund(request))

    # -- API v2 control --

    def create_charge(
        self, amount: Any, currency_code: Any, *, state: Any = "Captured", merchant_id: str | None = None
    ) -> str:
        """A v2 Charge (Captured unless another state of CHARGE_STATES is named); its chargeId."""
        with self._lock:
            merchant = merchant_id or self.default_seller_id
            if merchant not in self._sellers and merchant not in self.pay_v2.merchant_ids():
                raise ControlError(400, "UnknownSeller", f"merchant {merchant!r} is not configured")
            if state not in CHARGE_STATES:
                raise ControlError(400, "InvalidState", f"state must be one of {', '.join(CHARGE_STATES)}")
            value = self._control_amount(amount, currency_code)
            return self.pay_v2.create_charge(merchant, value, currency_code, state)

    def charge_view(self, charge_id: str) -> dict[str, Any]:
        with self._lock:
            if charge_id not in self.pay_v2.charges:
                raise ControlError(404, "ChargeNotFound", f"no charge {charge_id!r}")
            view = self.pay_v2.charge_view(charge_id)
            view["refunds"] = [self.pay_v2.refund_view(i) for i in self.pay_v2.charges[charge_id].refund_ids]
            return view

    def charge_external_refund(
        self, charge_id: str, amount: Any, *, state: Any = "Refunded", decline_reason: Any = None
    ) -> dict[str, Any]:
        """A refund on a v2 charge made outside the API (v2 refunds carry no type); a `RefundInitiated`
        one settles `Refunded`, or `Declined` with `decline_reason` (our extension)."""
        with self._lock:
            charge = self.pay_v2.charges.get(charge_id)
            if charge is None:
                raise ControlError(404, "ChargeNotFound", f"no charge {charge_id!r}")
            if state not in ("Refunded", "RefundInitiated"):
                raise ControlError(400, "InvalidState", "state must be Refunded or RefundInitiated")
            if decline_reason is not None and (
                state != "RefundInitiated" or decline_reason not in REFUND_SIMULATION_CODES
            ):
                raise ControlError(
                    400,
                    "InvalidDeclineReason",
                    f"decline_reason ({', '.join(REFUND_SIMULATION_CODES)}) needs state RefundInitiated",
                )
            value = self._control_amount(amount, charge.currency_code)
            refund = self.pay_v2.external_refund(charge_id, value, state, decline_reason)
            return self.pay_v2.refund_view(refund.refund_id)

    def charge_chargeback(self, charge_id: str, amount: Any = None) -> dict[str, Any]:
        """A chargeback on a v2 charge's permission: a signed v2 CHARGEBACK IPN (our extension), after an
        external Refunded refund of `amount` on the charge when one is given."""
        with self._lock:
            charge = self.pay_v2.charges.get(charge_id)
            if charge is None:
                raise ControlError(404, "ChargeNotFound", f"no charge {charge_id!r}")
            value = None if amount is None else self._control_amount(amount, charge.currency_code)
            chargeback_id, permission = self.pay_v2.chargeback(charge_id, value)
            return {"chargeback_id": chargeback_id, "charge_permission_id": permission}

    def handle_v2(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> V2Answer:
        return self.pay_v2.handle(method, path, query, headers, body)

    def close_capture(self, capture_id: str) -> dict[str, Any]:
        with self._lock:
            self._control_capture(capture_id)
            self.market.close_capture(capture_id, "AmazonClosed")
            return self.capture_view(capture_id)

    def add_fault(
        self, operation: str, fault: str, count: int = 1, hold_seconds: float | None = None
    ) -> None:
        """The next `count` calls of `operation` fail as `fault` says (after authentication)."""
        if operation not in OPERATIONS + V2_OPERATIONS:
            raise ControlError(
                400, "InvalidOperation", f"operation must be one of {', '.join(OPERATIONS + V2_OPERATIONS)}"
            )
        if fault not in FAULT_KINDS:
            raise ControlError(400, "InvalidFault", f"fault must be one of {', '.join(FAULT_KINDS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ControlError(400, "InvalidCount", "count must be a positive integer")
        hold = self.fault_hold_seconds if hold_seconds is None else hold_seconds
        if isinstance(hold, bool) or not isinstance(hold, int | float) or hold < 0:
            raise ControlError(400, "InvalidHoldSeconds", "hold_seconds must be a non-negative number")
        with self._lock:
            self._faults.setdefault(operation, []).append(_Fault(fault, count, float(hold)))

    def clear_faults(self) -> None:
        """Forget the faults not yet taken: Amazon answers normally again."""
        with self._lock:
            self._faults.clear()

    def settle(self, *, everything: bool = False) -> list[str]:
        """Settle the refunds that are due now (every Pending one when `everything`); their ids."""
        with self._lock:
            v1 = [r.amazon_refund_id for r in self.market.settle_due(force_all=everything)]
            return v1 + self.pay_v2.settle_due(force_all=everything)

    def advance_clock(self, seconds: float) -> datetime:
        """Move simulated time forward (settling what falls due); request Timestamps still use the clock."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ControlError(400, "InvalidSeconds", "seconds must be a non-negative number")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            self.market.settle_due()
            self.pay_v2.settle_due()
            return self.now()

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    # -- the MWS endpoint --

    def handle_mws(self, method: str, host: str, path: str, body: bytes) -> MwsAnswer:
        with self._lock:
            request_id = responses.new_request_id()
            params: dict[str, str] = {}
            action: str | None = None
            seller_id: str | None = None
            try:
                params = self._parse_form(method, path, body)
                action, seller = self._authenticate(host, path, params)
                seller_id = seller.seller_id
                fault = self._take_fault(action)
                if fault is not None and fault.kind == "timeout":
                    self._log(action, seller_id, params, None, None, fault.kind)
                    return MwsAnswer(0, "", hold_seconds=fault.hold_seconds)
                if fault is not None and not fault.kind.startswith("accept-then-"):
                    raise self._fault_error(fault.kind)
                if not self._throttle.allow(seller_id, action, self._wall_clock()):
                    raise MwsError("RequestThrottled", 503, "Request is throttled", "")
                body_xml = self._operate(action, seller_id, params, request_id)
                if fault is not None and fault.kind == "accept-then-unreadable":  # done, answer unreadable
                    self._log(action, seller_id, params, 200, None, fault.kind)
                    return MwsAnswer(200, _unreadable(body_xml))
                if fault is not None:  # accept-then-timeout: done, but the answer never arrives
                    self._log(action, seller_id, params, 200, None, fault.kind)
                    return MwsAnswer(0, "", hold_seconds=fault.hold_seconds)
                self._log(action, seller_id, params, 200, None, None)
                return MwsAnswer(200, body_xml)
            except MwsError as error:
                self._log(
                    action or params.get("Action"), seller_id, params, error.http_status, error.code, None
                )
                return MwsAnswer(error.http_status, responses.error_response(error, request_id))

    def _parse_form(self, method: str, path: str, body: bytes) -> dict[str, str]:
        if path != MWS_PATH or method != "POST":
            raise MwsError("InvalidAddress", 404, f"{method} {path} is not an API section or operation.")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            raise invalid_parameter("The request body is not a valid form-encoded parameter list.") from None
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params:
                raise invalid_parameter(f"The parameter {name} was given more than once.")
            params[name] = value
        return params

    def _authenticate(self, host: str, path: str, params: dict[str, str]) -> tuple[str, Seller]:
        """Amazon's checks before any operation: key, signature, timestamp, version, action, seller."""
        access_key = self._required(params, "AWSAccessKeyId")
        key_owner = self._keys.get(access_key)
        if key_owner is None:
            raise MwsError("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist.")
        if self._required(params, "SignatureVersion") != signing.SIGNATURE_VERSION:
            raise invalid_parameter("SignatureVersion must be 2.")
        if self._required(params, "SignatureMethod") != signing.SIGNATURE_METHOD:
            raise invalid_parameter("SignatureMethod must be HmacSHA256.")
        claimed = params.get("Signature", "")
        if not claimed or not signing.verify(key_owner.secret_key, "POST", host, path, params, claimed):
            raise MwsError(
                "SignatureDoesNotMatch",
                403,
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
        self._check_timestamp(self._required(params, "Timestamp"))
        if self._required(params, "Version") != signing.API_VERSION:
            raise MwsError("InvalidAddress", 400, f"Version {params['Version']} is not supported.")
        action = self._required(params, "Action")
        if action not in OPERATIONS:
            raise MwsError("InvalidAddress", 404, f"The action {action} is not valid for this API section.")
        seller_id = self._required(params, "SellerId")
        if seller_id != key_owner.seller_id:
            raise MwsError("AccessDenied", 401, "Access to the requested resource is denied.")
        required, optional = _OPERATION_PARAMS[action]
        unknown = sorted(set(params) - _COMMON_PARAMS - _OPTIONAL_COMMON - required - optional)
        if unknown:
            raise invalid_parameter(f"The parameter {unknown[0]} is not valid for {action}.")
        for name in sorted(required):
            self._required(params, name)
        return action, key_owner

    @staticmethod
    def _required(params: dict[str, str], name: str) -> str:
        value = params.get(name)
        if value is None or value == "":
            raise missing_parameter(name)
        return value

    def _check_timestamp(self, text: str) -> None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise invalid_parameter(f"Timestamp {text} must be in ISO8601 format.") from None
        if moment.tzinfo is None:
            raise invalid_parameter(f"Timestamp {text} must carry a time zone (UTC: Z).")
        # MWS documents an expired request under InvalidParameterValue (400).
        if abs(self._wall_clock() - moment) > TIMESTAMP_TOLERANCE:
            raise invalid_parameter(f"Request has expired. Timestamp date is {text}.")

    def _take_fault(self, action: str) -> _Fault | None:
        queue = self._faults.get(action)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    def _take_v2_fault(self, operation: str) -> V2Fault | None:
        fault = self._take_fault(operation)
        return None if fault is None else V2Fault(fault.kind, fault.hold_seconds)

    @staticmethod
    def _fault_error(kind: str) -> MwsError:
        if kind == "500":
            return MwsError(
                "InternalServerError", 500, "There was an unknown error in the service.", "Receiver"
            )
        if kind == "503":
            return MwsError("ServiceUnavailable", 503, "The service is temporarily unavailable.", "Receiver")
        return MwsError("RequestThrottled", 503, "Request is throttled", "")

    def _operate(self, action: str, seller_id: str, params: dict[str, str], request_id: str) -> str:
        if action == "Refund":
            refund = self.market.refund(self._refund_request(seller_id, params))
            return responses.refund_response(refund, request_id)
        if action == "GetRefundDetails":
            self.market.settle_due()
            refund_id = params["AmazonRefundId"]
            found = self.market.refunds.get(refund_id)
            if found is None or found.seller_id != seller_id:
                raise invalid_parameter(f"The AmazonRefundId {refund_id} is invalid.")
            return responses.get_refund_details_response(found, request_id)
        if action == "GetCaptureDetails":
            self.market.settle_due()
            capture_id = params["AmazonCaptureId"]
            capture = self.market.captures.get(capture_id)
            if capture is None or capture.seller_id != seller_id:
                raise invalid_parameter(f"The AmazonCaptureId {capture_id} is invalid.")
            return responses.get_capture_details_response(
                capture, self.market.refunded_amount(capture), capture.refund_ids, request_id
            )
        return responses.get_service_status_response(self.now(), request_id)

    @staticmethod
    def _refund_request(seller_id: str, params: dict[str, str]) -> RefundRequest:
        reference = params["RefundReferenceId"]
        if not REFUND_REFERENCE_ID.fullmatch(reference):
            raise invalid_parameter(
                f"RefundReferenceId {reference} is invalid: at most 32 characters of A-Z a-z 0-9 - _."
            )
        currency = params["RefundAmount.CurrencyCode"]
        if currency not in MINOR_UNITS:
            raise invalid_parameter(f"RefundAmount.CurrencyCode {currency} is not a supported currency.")
        try:
            amount = parse_amount(params["RefundAmount.Amount"], currency)
        except InvalidAmount as error:
            raise invalid_parameter(f"RefundAmount.Amount is invalid: {error}.") from None
        note = params.get("SellerRefundNote")
        if note is not None and len(note) > MAX_SELLER_REFUND_NOTE:
            raise invalid_parameter(f"SellerRefundNote is longer than {MAX_SELLER_REFUND_NOTE} characters.")
        descriptor = params.get("SoftDescriptor")
        if descriptor is not None and len(descriptor) > MAX_SOFT_DESCRIPTOR:
            raise invalid_parameter(f"SoftDescriptor is longer than {MAX_SOFT_DESCRIPTOR} characters.")
        return RefundRequest(
            seller_id=seller_id,
            amazon_capture_id=params["AmazonCaptureId"],
            refund_reference_id=reference,
            amount=amount,
            currency_code=currency,
            seller_refund_note=note,
            soft_descriptor=descriptor,
        )

    def _log(
        self,
        action: str | None,
        seller_id: str | None,
        params: dict[str, str],
        status: int | None,
        code: str | None,
        fault: str | None,
    ) -> None:
        self._calls.append(
            {
                "seq": len(self._calls) + 1,
                "at": responses.iso_millis(self.now()),
                "action": action,
                "seller_id": seller_id,
                "params": {name: params[name] for name in _LOGGED_PARAMS if name in params},
                "status": status,
                "code": code,
                "fault": fault,
            }
        )

    # -- helpers --

    def _new_market(self) -> Marketplace:
        market = Marketplace(self.now, self.settle_seconds, seed=self._seed)
        market.on_refund_change(self._dispatch_change)
        return market

    def _dispatch_change(self, change: RefundChange) -> None:
        self._post_ipn(change)
        for observer in list(self._observers):
            observer(change)

    def _control_capture(self, capture_id: str) -> Capture:
        capture = self.market.captures.get(capture_id)
        if capture is None:
            raise ControlError(404, "CaptureNotFound", f"no capture {capture_id!r}")
        return capture

    @staticmethod
    def _control_amount(amount: Any, currency_code: Any) -> Decimal:
        if not isinstance(currency_code, str) or currency_code not in MINOR_UNITS:
            raise ControlError(400, "InvalidCurrency", f"currency_code must be one of {sorted(MINOR_UNITS)}")
        try:
            return parse_amount(amount, currency_code)
        except InvalidAmount as error:
            raise ControlError(400, "InvalidAmount", f"amount: {error}") from None

    @staticmethod
    def _refund_view(refund: Refund) -> dict[str, Any]:
        return {
            "amazon_refund_id": refund.amazon_refund_id,
            "amazon_capture_id": refund.amazon_capture_id,
            "refund_reference_id": refund.refund_reference_id,
            "refund_type": refund.refund_type,
            "amount": format_amount(refund.amount, refund.currency_code),
            "currency_code": refund.currency_code,
            "state": refund.state,
            "reason_code": refund.reason_code,
            "seller_refund_note": refund.seller_refund_note,
            "created_at": responses.iso_millis(refund.created_at),
            "updated_at": responses.iso_millis(refund.updated_at),
        }


def _unreadable(document: str) -> str:
    """The same answer, declared in UTF-7 (as a misconfigured proxy might): Python's XML parsers refuse it."""
    if not document.startswith(responses.XML_DECLARATION):
        raise AssertionError("every MWS answer starts with the UTF-8 XML declaration")
    return UNREADABLE_DECLARATION + document[len(responses.XML_DECLARATION) :]
