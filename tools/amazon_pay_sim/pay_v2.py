"""Amazon Pay API v2 in the simulator: Create Refund, Get Refund, Get Charge, as strictly as the v1 endpoint.

What it checks, in order (each refusal is Amazon's JSON error ``{"reasonCode", "message"}`` with an
``x-amz-pay-request-id`` header):

1. The path: ``/v2/...`` for a key id with a ``SANDBOX-``/``LIVE-`` prefix, or ``/sandbox/v2/...`` for
   another key id; a trailing slash is accepted (the docs write one, .NET sends one).
2. Authentication from the request alone: the ``Authorization`` header (``MissingHeader``,
   ``InvalidHeaderValue``), a registered public key id (``UnauthorizedAccess`` 401), the canonical request
   rebuilt from the request's own ``SignedHeaders`` list and verified with RSASSA-PSS, salt 20 for
   ``AMZN-PAY-RSASSA-PSS`` and 32 for ``-V2`` (``InvalidRequestSignature`` 401). Identical replays pass: the
   SDKs retry with the same date and signature.
3. ``x-amz-pay-date`` signed, ``YYYYMMDDTHHMMSSZ``, within 15 minutes of the simulator's clock.
4. Quotas per merchant and operation → 429 ``TooManyRequests``.
5. The operation's rules (Create Refund: idempotency key, body, charge, currency, state, caps).

CONSERVATIVE CHOICES where Amazon is silent (amazon-pay-v2.md, "Open questions"), all the simulator's own:
- Statuses of non-400 errors: 401 for key and signature errors, 404 ``ResourceNotFound``, 422
  ``InvalidChargeStatus``, 429 ``TooManyRequests``; over-refund and count caps are 400
  ``TransactionAmountExceeded``/``TransactionCountExceeded``. Create Refund answers 201.
- Required signed headers: ``x-amz-pay-date`` always and ``x-amz-pay-idempotency-key`` on Create Refund
  (the smallest set every SDK and Amazon's Python sample sign); the clock skew allowed is 15 minutes.
- The simulator is a sandbox: a ``LIVE-`` key id or a ``/live/`` path is refused (401
  ``UnauthorizedAccess``), so a live key can never look as if it worked.
- At most 10 refunds per charge (the v1 limit; v2 documents none); quotas as the v1 sandbox's Refund and
  GetRefundDetails.
- Idempotency keys are kept per merchant for the simulator's life (Amazon: indefinitely). A key's answer
  is saved only when a refund was created; the same key with the same chargeId, amount, currency,
  softDescriptor and simulation code gets the saved answer (201, the body as first sent), with other
  values ``DuplicateIdempotencyKey`` 400. A refused request saves nothing, so it can be corrected.
- Refund simulation codes (``x-amz-pay-simulation-code`` on Create Refund; Amazon documents none for
  refunds): ``AmazonRejected`` and ``ProcessingFailure`` decline the refund with that reason when it settles;
  ``ProcessingFailure;Times=N`` (N from 1 to 9999) declines only the first N refunds created on that charge
  with this exact header value, and later ones settle ``Refunded`` (v1's ``"Times": N``, for a retry's
  success path: each attempt has its own idempotency key, so attempt 2 is a new refund and counts again).
  Only a Create Refund that creates a refund counts: an identical replay of a key gets the saved answer and
  uses nothing up, and a refused request counts nothing. Any other value is
  ``InvalidSandboxSimulationSpecified``. All of this is the simulator's own extension.
- Chargebacks (``PayV2.chargeback``, control ``POST /simulator/charges/{id}/chargeback``) are the
  simulator's own extension too: a ``CHARGEBACK`` IPN (documented) naming a new chargeback id and the
  charge's ChargePermissionId, optionally after an external Refunded refund of the disputed amount.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from amazon_pay_refunds.adapters.pay_v2 import signing
from amazon_pay_refunds.adapters.pay_v2.endpoints import key_environment
from amazon_pay_refunds.money import (
    MINOR_UNITS,
    InvalidAmount,
    format_amount,
    over_refund_allowance,
    parse_amount,
)

from .throttle import Quota, Throttle

DATE_TOLERANCE = timedelta(minutes=15)
MAX_REFUNDS_PER_CHARGE = 10
MAX_SOFT_DESCRIPTOR = 16
# Amazon's maximum for one refund (amazon-pay-v2.md §3).
MAX_REFUND: dict[str, Decimal] = {
    "USD": Decimal(150000), "GBP": Decimal(150000), "EUR": Decimal(150000), "JPY": Decimal(10000000),
}  # fmt: skip
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
CHARGE_STATES = ("Captured", "Authorized", "Canceled", "Declined")
REFUND_SIMULATION_CODES = ("AmazonRejected", "ProcessingFailure")
# OUR EXTENSION: "ProcessingFailure;Times=N" declines the first N refunds on the charge carrying it.
_PROCESSING_FAILURE_TIMES = re.compile(r"ProcessingFailure;Times=([1-9][0-9]{0,3})")  # fullmatch
REASON_DESCRIPTIONS = {
    "AmazonRejected": "Amazon has rejected the refund. Issue a refund to the buyer in another way.",
    "ProcessingFailure": "Amazon could not process the transaction due to an internal processing error.",
}
OPERATIONS = ("CreateRefund", "GetRefund", "GetCharge")
QUOTAS: dict[str, Quota] = {
    "CreateRefund": Quota(2, 2.0),
    "GetRefund": Quota(5, 1.0),
    "GetCharge": Quota(5, 1.0),
}
_PATH = re.compile(r"^(?:/(?P<env>sandbox|live))?/v2/(?P<resource>refunds|charges)(?:/(?P<id>[^/]+))?/?$")
_DATE = "%Y%m%dT%H%M%SZ"
_ISO_DATE = "%Y-%m-%dT%H:%M:%SZ"


class V2Error(Exception):
    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.http_status, self.code, self.message = http_status, code, message


@dataclass(frozen=True)
class V2Answer:
    """What to send back. With `hold_seconds`, send nothing: hold the connection that long, then drop it."""

    status: int
    body: str
    request_id: str
    hold_seconds: float | None = None


@dataclass(frozen=True)
class Fault:
    """A fault taken from the simulator's `POST /simulator/faults` queue for one v2 operation."""

    kind: str
    hold_seconds: float


_FAULT_ERRORS = {
    "500": (500, "InternalServerError", "There was an unknown error in the service."),
    "503": (503, "ServiceUnavailable", "The service is temporarily unavailable."),
    "throttle": (429, "TooManyRequests", "The request was throttled."),
}


@dataclass(frozen=True)
class MerchantKey:
    public_key_id: str
    merchant_id: str
    public_key: rsa.RSAPublicKey


@dataclass
class Charge:
    charge_id: str
    merchant_id: str
    charge_permission_id: str
    amount: Decimal
    currency_code: str
    state: str
    created_at: datetime
    updated_at: datetime
    refund_ids: list[str] = field(default_factory=list)


@dataclass
class V2Refund:
    refund_id: str
    charge_id: str
    merchant_id: str
    amount: Decimal
    currency_code: str
    state: str
    created_at: datetime
    updated_at: datetime
    soft_descriptor: str | None = None
    idempotency_key: str | None = None  # None: a refund made outside the API (external)
    settle_at: datetime | None = None
    planned_decline: str | None = None
    reason_code: str | None = None


@dataclass(frozen=True)
class V2Change:
    """What a v2 IPN reports: which object changed (the message carries no state)."""

    merchant_id: str
    object_type: str
    object_id: str
    charge_permission_id: str
    state: str
    reason_code: str | None


@dataclass(frozen=True)
class _Saved:
    fingerprint: tuple[Any, ...]
    status: int
    body: str


def amz_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_DATE)


def _simulation_times(simulation: str | None) -> int | None:
    """N of ``ProcessingFailure;Times=N`` (OUR EXTENSION), None for a plain code or none; any other value is
    InvalidSandboxSimulationSpecified."""
    if simulation is None or simulation in REFUND_SIMULATION_CODES:
        return None
    times = _PROCESSING_FAILURE_TIMES.fullmatch(simulation)
    if times is None:
        raise V2Error(
            400, "InvalidSandboxSimulationSpecified",
            f"Supported refund simulation codes: {', '.join(REFUND_SIMULATION_CODES)} "
            "(and, the simulator's extension, ProcessingFailure;Times=N).",
        )  # fmt: skip
    return int(times.group(1))


def ipn_message(change: V2Change, notification_id: str) -> str:
    """The v2 IPN ``Message`` (documented schema: tests/fixtures/v2/ipn-v2-message-schema-doc.json)."""
    return json.dumps(
        {
            "MerchantID": change.merchant_id,
            "ObjectType": change.object_type,
            "ObjectId": change.object_id,
            "ChargePermissionId": change.charge_permission_id,
            "NotificationType": "STATE_CHANGE",
            "NotificationId": notification_id,
            "NotificationVersion": "V2",
        },
        separators=(",", ":"),
    )


class PayV2:
    """The v2 side of the simulator. Shares the simulator's lock, clocks and throttling switch."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        now: Callable[[], datetime],
        wall_clock: Callable[[], datetime],
        settle_seconds: float,
        throttling: Callable[[], bool],
        notify: Callable[[V2Change], None],
        take_fault: Callable[[str], Fault | None] = lambda operation: None,
        seed: int | None = None,
    ) -> None:
        self._lock = lock
        self._now = now
        self._wall_clock = wall_clock
        self.settle_seconds = settle_seconds
        self._throttling = throttling
        self._notify = notify
        self._take_fault = take_fault
        self._keys: dict[str, MerchantKey] = {}
        self._throttle = Throttle(QUOTAS)
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget charges, refunds, idempotency keys and quotas; keep the registered keys."""
        with self._lock:
            self.charges: dict[str, Charge] = {}
            self.refunds: dict[str, V2Refund] = {}
            self._saved: dict[tuple[str, str], _Saved] = {}
            # (charge id, simulation header value) → refunds created with it (for ProcessingFailure;Times=N)
            self._simulation_uses: dict[tuple[str, str], int] = {}
            self._calls: list[dict[str, Any]] = []
            self._throttle.reset()
            self._sequence = 0
            self._chargebacks = 0
            # Charge ids from the seed when one is given, so a seeded run replays with the same ids.
            self._random = random.Random(self._seed) if self._seed is not None else random.SystemRandom()

    # -- configuration and control --

    def register_key(self, public_key_id: str, public_key_pem: str | bytes, merchant_id: str) -> None:
        """Accept requests signed with the private half of ``public_key_pem`` under ``public_key_id``."""
        if not public_key_id or not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", public_key_id):
            raise ValueError("a public key id is 1-100 characters of A-Z a-z 0-9 - _")
        data = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else public_key_pem
        try:
            key = load_pem_public_key(data)
        except ValueError:
            raise ValueError(f"the public key for {public_key_id} is not a PEM public key") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"the public key for {public_key_id} is not an RSA key")
        with self._lock:
            known = self._keys.get(public_key_id)
            if known is not None and known.merchant_id != merchant_id:
                raise ValueError(f"public key id {public_key_id!r} already belongs to another merchant")
            self._keys[public_key_id] = MerchantKey(public_key_id, merchant_id, key)

    def public_key_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)

    def merchant_ids(self) -> set[str]:
        with self._lock:
            return {key.merchant_id for key in self._keys.values()}

    def create_charge(
        self, merchant_id: str, amount: Decimal, currency_code: str, state: str = "Captured"
    ) -> str:
        if state not in CHARGE_STATES:
            raise ValueError(f"state must be one of {', '.join(CHARGE_STATES)}")
        with self._lock:
            self._sequence += 1
            permission = f"S01-{self._sequence:07d}-{self._random.randrange(10**7):07d}"
            charge_id = f"{permission}-C{self._sequence:06d}"
            moment = self._now()
            self.charges[charge_id] = Charge(
                charge_id, merchant_id, permission, amount, currency_code, state, moment, moment
            )
            return charge_id

    def external_refund(
        self, charge_id: str, amount: Decimal, state: str = "Refunded", decline: str | None = None
    ) -> V2Refund:
        """A refund not made through this API (Seller Central, an A-to-z claim, a chargeback): v2 refunds
        carry no type, so nothing tells them apart. ``Refunded``, or ``RefundInitiated`` until it settles:
        ``Refunded``, or ``Declined`` with reason ``decline`` when one is given (the simulator's own
        extension: Amazon documents no way a refund by others is declined)."""
        if state not in ("Refunded", "RefundInitiated"):
            raise ValueError("state must be Refunded or RefundInitiated")
        if decline is not None and (state != "RefundInitiated" or decline not in REFUND_SIMULATION_CODES):
            raise ValueError(
                f"a decline reason ({', '.join(REFUND_SIMULATION_CODES)}) needs state RefundInitiated"
            )
        with self._lock:
            self.settle_due()
            charge = self.charges[charge_id]
            return self._add_refund(
                charge, amount, state=state, key=None, soft_descriptor=None, decline=decline
            )

    def chargeback(self, charge_id: str, amount: Decimal | None = None) -> tuple[str, str]:
        """A chargeback on the charge's permission (the simulator's own extension: Amazon documents the
        CHARGEBACK IPN, not how a chargeback comes about): with ``amount``, the buyer's money goes back as
        an external ``Refunded`` refund on the charge first (whether and when Amazon moves it so is not
        documented); then a v2 ``CHARGEBACK`` IPN names the chargeback and the ChargePermissionId.
        Returns (chargeback id, charge permission id)."""
        with self._lock:
            self.settle_due()
            charge = self.charges[charge_id]
            if amount is not None:
                self._add_refund(
                    charge, amount, state="Refunded", key=None, soft_descriptor=None, decline=None
                )
            self._chargebacks += 1  # a counter of its own: refund and charge ids do not move
            chargeback_id = f"{charge.charge_permission_id}-B{self._chargebacks:06d}"
            permission = charge.charge_permission_id
            self._notify(V2Change(charge.merchant_id, "CHARGEBACK", chargeback_id, permission, "Open", None))
            return chargeback_id, permission

    def charge_view(self, charge_id: str) -> dict[str, Any]:
        with self._lock:
            self.settle_due()
            return self._charge_json(self.charges[charge_id])

    def refund_view(self, refund_id: str) -> dict[str, Any]:
        with self._lock:
            self.settle_due()
            return self._refund_json(self.refunds[refund_id])

    def settle_due(self, *, force_all: bool = False) -> list[str]:
        """RefundInitiated → Refunded (or Declined with the simulated reason) once due; their ids."""
        with self._lock:
            moment = self._now()
            settled = []
            for refund in sorted(self.refunds.values(), key=lambda r: (r.created_at, r.refund_id)):
                if refund.state != "RefundInitiated" or refund.settle_at is None:
                    continue
                if force_all or refund.settle_at <= moment:
                    refund.state = "Declined" if refund.planned_decline else "Refunded"
                    refund.reason_code = refund.planned_decline
                    refund.updated_at = moment
                    settled.append(refund.refund_id)
                    self._changed(refund)
            return settled

    # -- the HTTP endpoint --

    def handle(
        self, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> V2Answer:
        request_id = str(uuid.uuid4())
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            hold: list[Fault] = []
            try:
                status, document = self._handle(method, raw_path, query, lowered, body, hold)
            except V2Error as error:
                status, document = error.http_status, {"reasonCode": error.code, "message": error.message}
            text = document if isinstance(document, str) else json.dumps(document)
            self._log(method, raw_path, lowered, status, None if status < 300 else document.get("reasonCode"))
            if hold and hold[0].kind.endswith("timeout"):
                self._calls[-1]["fault"] = hold[0].kind
                return V2Answer(0, "", request_id, hold_seconds=hold[0].hold_seconds)
            if hold and hold[0].kind == "accept-then-unreadable" and status < 300:
                self._calls[-1]["fault"] = hold[0].kind
                return V2Answer(status, "<html><body>upstream answer lost</body></html>", request_id)
            return V2Answer(status, text, request_id)

    def calls(self) -> list[dict[str, Any]]:
        """Every v2 request so far: method, path, key id, algorithm, signed headers, idempotency key, status,
        reasonCode (never the signature)."""
        with self._lock:
            return [dict(call) for call in self._calls]

    def _log(self, method: str, path: str, headers: dict[str, str], status: int, reason: str | None) -> None:
        try:
            auth: signing.Authorization | None = signing.parse_authorization(headers.get("authorization", ""))
        except signing.SigningError:
            auth = None
        self._calls.append({
            "method": method, "path": path, "status": status, "reason_code": reason,
            "public_key_id": auth and auth.public_key_id, "algorithm": auth and auth.algorithm,
            "signed_headers": list(auth.signed_headers) if auth else None,
            "idempotency_key": headers.get("x-amz-pay-idempotency-key"),
            "simulation_code": headers.get("x-amz-pay-simulation-code"),
        })  # fmt: skip

    def _handle(
        self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes, hold: list[Fault]
    ) -> tuple[int, Any]:
        path = unquote(raw_path)
        match = _PATH.fullmatch(path)
        key = self._authenticate(method, path, query, headers, body)
        if match is None:
            raise V2Error(404, "ResourceNotFound", f"No API v2 resource at {path[:100]}.")
        self._check_environment(key, match.group("env"))
        resource, object_id = match.group("resource"), match.group("id")
        if method == "POST" and resource == "refunds" and object_id is None:
            operation = "CreateRefund"
        elif method == "GET" and object_id is not None:
            operation = "GetRefund" if resource == "refunds" else "GetCharge"
        else:
            raise V2Error(400, "RequestNotSupported", f"{method} {path[:100]} is not supported.")
        fault = self._take_fault(operation)
        if fault is not None and fault.kind in _FAULT_ERRORS:
            raise V2Error(*_FAULT_ERRORS[fault.kind])
        if fault is not None:
            hold.append(fault)  # timeout: nothing is done; accept-then-…: done, but the answer is lost
            if fault.kind == "timeout":
                return 0, {}
        if self._throttling() and not self._throttle.allow(key.merchant_id, operation, self._wall_clock()):
            raise V2Error(429, "TooManyRequests", "The request was throttled.")
        self.settle_due()
        if operation == "CreateRefund":
            return self._create_refund(key, headers, body)
        if operation == "GetRefund":
            refund = self.refunds.get(object_id or "")
            if refund is None or refund.merchant_id != key.merchant_id:
                raise V2Error(404, "ResourceNotFound", f"Refund {object_id} was not found.")
            return 200, self._refund_json(refund)
        charge = self.charges.get(object_id or "")
        if charge is None or charge.merchant_id != key.merchant_id:
            raise V2Error(404, "ResourceNotFound", f"Charge {object_id} was not found.")
        return 200, self._charge_json(charge)

    def _authenticate(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> MerchantKey:
        value = headers.get("authorization")
        if not value:
            raise V2Error(400, "MissingHeader", "The authorization header is missing.")
        try:
            auth = signing.parse_authorization(value)
        except signing.SigningError as error:
            raise V2Error(400, "InvalidHeaderValue", f"authorization: {error}") from None
        key = self._keys.get(auth.public_key_id)
        if key is None:
            raise V2Error(401, "UnauthorizedAccess", "The public key id is not registered.")
        signed = {name.lower() for name in auth.signed_headers}
        if "x-amz-pay-date" not in signed:
            raise V2Error(400, "InvalidHeaderValue", "x-amz-pay-date must be a signed header.")
        if (
            method == "POST"
            and "x-amz-pay-idempotency-key" in headers
            and "x-amz-pay-idempotency-key" not in signed
        ):
            raise V2Error(400, "InvalidHeaderValue", "x-amz-pay-idempotency-key must be a signed header.")
        try:
            canonical = signing.canonical_request(
                method, path, parse_qs(query, keep_blank_values=False), headers, auth.signed_headers, body
            )
        except signing.SigningError as error:
            raise V2Error(401, "InvalidRequestSignature", str(error)) from None
        text = signing.string_to_sign(auth.algorithm, canonical)
        if not signing.verify(key.public_key, auth.algorithm, text, auth.signature):
            raise V2Error(401, "InvalidRequestSignature", "The request signature does not match.")
        self._check_date(headers.get("x-amz-pay-date", ""))
        return key

    def _check_date(self, text: str) -> None:
        # The docs and the PHP, Java and .NET SDKs send YYYYMMDDTHHMMSSZ; the Node SDK sends the extended ISO
        # form YYYY-MM-DDTHH:MM:SSZ (clientHelper.js getTimestamp) and works against Amazon, so both pass.
        for form in (_DATE, _ISO_DATE):
            try:
                moment = datetime.strptime(text, form).replace(tzinfo=UTC)
                break
            except ValueError:
                continue
        else:
            raise V2Error(400, "InvalidHeaderValue", "x-amz-pay-date must be YYYYMMDDTHHMMSSZ.")
        if abs(moment - self._wall_clock()) > DATE_TOLERANCE:
            raise V2Error(400, "InvalidHeaderValue", "x-amz-pay-date is more than 15 minutes from now.")

    @staticmethod
    def _check_environment(key: MerchantKey, path_environment: str | None) -> None:
        named = key_environment(key.public_key_id)
        if named is not None and path_environment is not None:
            raise V2Error(400, "InvalidRequest", "A SANDBOX-/LIVE- key id uses the path /v2/... only.")
        if named is None and path_environment is None:
            raise V2Error(
                400, "InvalidRequest", "This key id needs the path /sandbox/v2/... or /live/v2/...."
            )
        if (named or path_environment) == "live":
            raise V2Error(
                401, "UnauthorizedAccess", "This simulator is a sandbox: live requests are refused."
            )

    # -- Create Refund --

    def _create_refund(self, key: MerchantKey, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        idempotency_key = headers.get("x-amz-pay-idempotency-key")
        if idempotency_key is None:
            raise V2Error(400, "MissingHeader", "x-amz-pay-idempotency-key is required.")
        if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise V2Error(400, "InvalidHeaderValue", "x-amz-pay-idempotency-key: 1-32 of A-Z a-z 0-9 - _.")
        charge_id, amount, currency, descriptor = self._refund_body(body)
        simulation = headers.get("x-amz-pay-simulation-code")
        times = _simulation_times(simulation)
        fingerprint = (charge_id, amount, currency, descriptor, simulation)
        saved = self._saved.get((key.merchant_id, idempotency_key))
        if saved is not None:
            if saved.fingerprint != fingerprint:
                raise V2Error(
                    400, "DuplicateIdempotencyKey",
                    "The idempotency key was already used with different request values.",
                )  # fmt: skip
            return saved.status, saved.body
        charge = self.charges.get(charge_id)
        if charge is None or charge.merchant_id != key.merchant_id:
            raise V2Error(404, "ResourceNotFound", f"Charge {charge_id} was not found.")
        if currency != charge.currency_code:
            raise V2Error(
                400, "CurrencyMismatch", f"The charge is in {charge.currency_code}, not {currency}."
            )
        if charge.state != "Captured":
            raise V2Error(
                422, "InvalidChargeStatus", f"The charge is {charge.state}; only Captured can be refunded."
            )
        if amount > MAX_REFUND.get(currency, amount):
            raise V2Error(400, "TransactionAmountExceeded", "The refund exceeds the maximum for one refund.")
        if len(charge.refund_ids) >= MAX_REFUNDS_PER_CHARGE:
            raise V2Error(
                400, "TransactionCountExceeded", f"At most {MAX_REFUNDS_PER_CHARGE} refunds per charge."
            )
        cap = charge.amount + over_refund_allowance(charge.amount, charge.currency_code)
        if self._committed(charge) + amount > cap:
            raise V2Error(
                400, "TransactionAmountExceeded",
                "The refund would exceed the captured amount plus the allowed over-refund.",
            )  # fmt: skip
        refund = self._add_refund(
            charge, amount, state="RefundInitiated", key=idempotency_key, soft_descriptor=descriptor,
            decline=self._planned_decline(charge, simulation, times),
        )  # fmt: skip
        text = json.dumps(self._refund_json(refund))
        self._saved[(key.merchant_id, idempotency_key)] = _Saved(fingerprint, 201, text)
        return 201, text

    def _planned_decline(self, charge: Charge, simulation: str | None, times: int | None) -> str | None:
        """The reason a refund being created will be declined with when it settles; None: Refunded. Called
        only when a refund is created, so replays and refused requests use no ProcessingFailure up."""
        if simulation is None:
            return None
        if times is None:
            return simulation
        uses = self._simulation_uses.get((charge.charge_id, simulation), 0) + 1
        self._simulation_uses[(charge.charge_id, simulation)] = uses
        return "ProcessingFailure" if uses <= times else None

    @staticmethod
    def _refund_body(body: bytes) -> tuple[str, Decimal, str, str | None]:
        try:
            document = json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise V2Error(400, "InvalidRequestFormat", "The body is not valid JSON.") from None
        if not isinstance(document, dict):
            raise V2Error(400, "InvalidRequestFormat", "The body must be a JSON object.")
        unknown = sorted(set(document) - {"chargeId", "refundAmount", "softDescriptor"})
        if unknown:
            raise V2Error(400, "UnrecognizedField", f"Unrecognized field(s): {', '.join(unknown)}.")
        for name in ("chargeId", "refundAmount"):
            if document.get(name) is None:
                raise V2Error(400, "MissingParameterValue", f"{name} is required.")
        charge_id, price = document["chargeId"], document["refundAmount"]
        if not isinstance(charge_id, str) or not charge_id:
            raise V2Error(400, "InvalidParameterValue", "chargeId must be a string.")
        if not isinstance(price, dict) or set(price) - {"amount", "currencyCode"}:
            raise V2Error(400, "InvalidParameterValue", "refundAmount must be {amount, currencyCode}.")
        currency = price.get("currencyCode")
        if currency is None or price.get("amount") is None:
            raise V2Error(400, "MissingParameterValue", "refundAmount.amount and currencyCode are required.")
        if not isinstance(currency, str) or currency not in MINOR_UNITS:
            raise V2Error(400, "InvalidParameterValue", f"Unsupported currencyCode {str(currency)[:10]!r}.")
        raw = price["amount"]
        # Documented as a string; the .NET SDK and Magento send a JSON number, which Amazon accepts too.
        text = format(raw, "f") if isinstance(raw, Decimal | int) and not isinstance(raw, bool) else raw
        try:
            amount = parse_amount(text, currency)
        except InvalidAmount as error:
            raise V2Error(400, "InvalidParameterValue", f"refundAmount.amount: {error}") from None
        descriptor = document.get("softDescriptor")
        if descriptor is not None and (
            not isinstance(descriptor, str) or len(descriptor.encode("utf-8")) > MAX_SOFT_DESCRIPTOR
        ):
            raise V2Error(400, "InvalidParameterValue", "softDescriptor is at most 16 bytes.")
        return charge_id, amount, currency, descriptor

    # -- the model --

    def _committed(self, charge: Charge) -> Decimal:
        """RefundInitiated and Refunded refunds (ours and external): what counts against the cap."""
        return sum(
            (self.refunds[i].amount for i in charge.refund_ids if self.refunds[i].state != "Declined"),
            Decimal(0),
        )

    def _add_refund(
        self, charge: Charge, amount: Decimal, *, state: str, key: str | None, soft_descriptor: str | None,
        decline: str | None,
    ) -> V2Refund:  # fmt: skip
        self._sequence += 1
        moment = self._now()
        refund = V2Refund(
            refund_id=f"{charge.charge_permission_id}-R{self._sequence:06d}",
            charge_id=charge.charge_id,
            merchant_id=charge.merchant_id,
            amount=amount,
            currency_code=charge.currency_code,
            state=state,
            created_at=moment,
            updated_at=moment,
            soft_descriptor=soft_descriptor,
            idempotency_key=key,
            settle_at=moment + timedelta(seconds=self.settle_seconds) if state == "RefundInitiated" else None,
            planned_decline=decline,
        )
        self.refunds[refund.refund_id] = refund
        charge.refund_ids.append(refund.refund_id)
        self._changed(refund)
        return refund

    def _changed(self, refund: V2Refund) -> None:
        charge = self.charges[refund.charge_id]
        permission = charge.charge_permission_id
        change = V2Change(
            refund.merchant_id, "REFUND", refund.refund_id, permission, refund.state, refund.reason_code
        )
        self._notify(change)

    def _refunded(self, charge: Charge) -> Decimal:
        return sum(
            (self.refunds[i].amount for i in charge.refund_ids if self.refunds[i].state == "Refunded"),
            Decimal(0),
        )

    @staticmethod
    def _price(amount: Decimal, currency_code: str) -> dict[str, str]:
        return {"amount": format_amount(amount, currency_code), "currencyCode": currency_code}

    def _refund_json(self, refund: V2Refund) -> dict[str, Any]:
        return {
            "refundId": refund.refund_id,
            "chargeId": refund.charge_id,
            "creationTimestamp": amz_date(refund.created_at),
            "refundAmount": self._price(refund.amount, refund.currency_code),
            "softDescriptor": None if refund.soft_descriptor is None else f"AMZ* {refund.soft_descriptor}",
            "statusDetails": {
                "state": refund.state,
                "reasonCode": refund.reason_code,
                "reasonDescription": REASON_DESCRIPTIONS.get(refund.reason_code or ""),
                "lastUpdatedTimestamp": amz_date(refund.updated_at),
            },
            "releaseEnvironment": "Sandbox",
        }

    def _charge_json(self, charge: Charge) -> dict[str, Any]:
        captured = charge.state == "Captured"
        return {
            "chargeId": charge.charge_id,
            "chargePermissionId": charge.charge_permission_id,
            "chargeAmount": self._price(charge.amount, charge.currency_code),
            "captureAmount": self._price(charge.amount, charge.currency_code) if captured else None,
            "refundedAmount": self._price(self._refunded(charge), charge.currency_code) if captured else None,
            "softDescriptor": None,
            "statusDetails": {
                "state": charge.state,
                "reasonCode": None,
                "reasonDescription": None,
                "lastUpdatedTimestamp": amz_date(charge.updated_at),
            },
            "creationTimestamp": amz_date(charge.created_at),
            "releaseEnvironment": "Sandbox",
        }
