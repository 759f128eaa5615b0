"""The ports: what the use cases need of the outside world, one Protocol per role, each method once.

Adapters implement them structurally (`adapters/dynamodb.RefundStore`, `adapters/mws.AmazonPayClient`, the
boto3 Step Functions client); so do the test doubles in `tests/support/`, and mypy checks both against the
Protocols here. The values that cross a port (the store's errors and read models; Amazon Pay's typed
answers and `AmazonPayError`) are named here too. The IPN use case also reads the SNS adapter's value
types (a verified message, the verifier's refusals) and the parse of an IPN's RefundDetails directly:
re-exported here, they would load `cryptography` into every function's cold start.

Both Amazon Pay APIs sit behind the one `AmazonPayPort` (composition.AmazonPayRouter: the MWS client for v1,
`adapters/pay_v2/port.PayV2AmazonPay` for v2). An Amazon id crossing a port carries its API
(`core/models.qualified_id`: a v1 id as is, `v2:{id}` for v2); so does the ledger id the store methods take
as `amazon_capture_id` (a v1 capture, or `v2:{charge id}`).

Roles, narrowest first (a use case asks for the narrowest it needs):

| Protocol | who implements it | used by |
|---|---|---|
| `RefundReader`, `ChargebackReader` ⊂ `CaptureRefundsStore` | the refund store | a capture's refunds |
| `RefundTransitions` | the refund store | every use case that records an observation |
| `RefundStorePort` | the refund store | request/read/resolve, submission, retries |
| `ReconcilerStorePort` | the refund store | reconciliation |
| `NotificationStore` | the refund store | the IPN use case |
| `RefundDetailsSource` ⊂ `AmazonPayReader` ⊂ `AmazonPayPort` | the Amazon Pay client | reads; Refund |
| `TaskTokenPort`, `TaskCallbackPort`, `WorkflowStarter` | DynamoDB task tokens; Step Functions | retries |
| `IpnAuthenticity`, `SubscribeUrlFetcher` | the SNS verifier; a GET of the SubscribeURL | the IPN use case |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from amazon_pay_refunds.adapters.mws.credentials import (
    NoCredentialsForSeller,
    PayV2Credentials,
    SellerCredentials,
)
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import CaptureDetails, ProviderCreditReversal, RefundDetails
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import AttemptOutcome, Transition
from amazon_pay_refunds.core.models import CaptureLedger, Chargeback, ExternalRefund, Refund, RefundStatus
from amazon_pay_refunds.core.reconciliation import OpenRefund

if TYPE_CHECKING:  # the SNS adapter (cryptography) is loaded only by the functions that verify IPNs
    from amazon_pay_refunds.adapters.sns import SnsMessage, VerifiedIpn

__all__ = [
    "AmazonErrorObserver",
    "AmazonPayError",
    "AmazonPayPort",
    "AmazonPayReader",
    "AttemptOutcomeListener",
    "CaptureDetails",
    "CaptureDetailsSource",
    "CaptureRefundsStore",
    "ChargebackReader",
    "IpnAuthenticity",
    "KnownRefunds",
    "LedgerNotFound",
    "NoCredentialsForSeller",
    "NotificationStore",
    "OpenRefund",
    "PayV2Credentials",
    "ProviderCreditReversal",
    "ReconcilerStorePort",
    "RefundAlreadyExists",
    "RefundDetails",
    "RefundDetailsSource",
    "RefundNotStored",
    "RefundReader",
    "RefundStoreAdapter",
    "RefundStorePort",
    "RefundTransitions",
    "SellerCredentials",
    "StoreBusy",
    "StoreError",
    "SubscribeUrlFetcher",
    "SubscriptionNotConfirmed",
    "TaskCallbackPort",
    "TaskTokenPort",
    "VersionConflict",
    "WorkflowStarter",
    "ignore_amazon_error",
    "ignore_attempt_outcome",
]


# --- what crosses the store port ------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownRefunds:
    """A capture's refunds as the ledger knows them (see RefundStore.known_refunds): ours (by refund_id),
    the external ones recorded, and what is still available."""

    refunds: Mapping[str, Refund]
    externals: tuple[ExternalRefund, ...]
    available: Decimal
    charge_permission_id: str | None = None  # API v2 charges: when the ledger knows it

    @property
    def refund_ids(self) -> frozenset[str]:
        return frozenset(self.refunds)

    @property
    def amazon_refund_ids(self) -> frozenset[str]:
        """Every AmazonRefundId the ledger accounts for: our attempts' and the recorded external ones."""
        ours = {a.amazon_refund_id for r in self.refunds.values() for a in r.attempts if a.amazon_refund_id}
        return frozenset(ours | {e.amazon_refund_id for e in self.externals})


class StoreError(Exception):
    """Base of the store's named errors."""


class RefundAlreadyExists(StoreError):
    """A refund with this refund_id exists: compare `existing.request_fingerprint` (200 replay vs 409)."""

    def __init__(self, existing: Refund) -> None:
        super().__init__(f"refund {existing.refund_id} already exists")
        self.existing = existing


class LedgerNotFound(StoreError):
    """The capture has no ledger yet and no GetCaptureDetails seed was given to open one."""


class RefundNotStored(StoreError):
    """No refund item under this refund_id (the API answers it as `use_cases.errors.RefundNotFound`)."""


class VersionConflict(StoreError):
    """The refund changed since it was read; re-read and re-apply (see `RefundStore.transition`)."""


class StoreBusy(StoreError):
    """Gave up after repeated transaction conflicts on the same items; safe to retry later."""


# --- the refund store -----------------------------------------------------------------------------------


class RefundReader(Protocol):
    def get_refund(self, refund_id: str) -> Refund | None: ...


class ChargebackReader(Protocol):
    """The chargebacks recorded on an API v2 charge permission (CHARGEBACK IPNs), oldest first."""

    def chargebacks(self, seller_id: str, charge_permission_id: str) -> tuple[Chargeback, ...]: ...


class CaptureRefundsStore(RefundReader, ChargebackReader, Protocol):
    """Reading and recording the refunds on a capture (classification, the ledger's external entries);
    for a v2 charge also the chargebacks on its charge permission, and the permission on its ledger."""

    def note_charge_permission(self, amazon_capture_id: str, charge_permission_id: str) -> None: ...

    def known_refunds(self, amazon_capture_id: str) -> KnownRefunds | None: ...

    def record_external_refund(
        self,
        amazon_capture_id: str,
        amazon_refund_id: str,
        amount: Decimal,
        currency_code: str,
        refund_type: str,
        *,
        at: datetime,
        state: str | None = None,
        ledger_seed: LedgerSeed | None = None,
    ) -> bool: ...

    def update_external_refund_state(
        self, amazon_capture_id: str, amazon_refund_id: str, state: str, *, at: datetime
    ) -> bool:
        """Move a recorded external refund Pending → Completed or Pending → Declined (core/ledger.py
        EXTERNAL_STATE_CHANGES), atomically; what the ledger counts is unchanged. True when it changed;
        False when it was already so, is not recorded, or the change is not allowed (idempotent)."""
        ...


class RefundTransitions(Protocol):
    """Apply a pure transition to the stored refund (optimistic concurrency, ledger effect in one write)."""

    def transition(
        self, refund_id: str, fn: Callable[[Refund], Transition], *, max_attempts: int = 10
    ) -> Transition: ...


class RefundStorePort(CaptureRefundsStore, RefundTransitions, Protocol):
    """Creating refunds with their reservation, the capture's ledger, transitions."""

    def create_refund_with_reservation(
        self, refund: Refund, ledger_seed: LedgerSeed | None = None
    ) -> Refund: ...

    def create_refund_without_reservation(self, refund: Refund) -> Refund: ...

    def reserve_pending_refund(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund: ...

    def get_ledger(self, amazon_capture_id: str) -> CaptureLedger | None: ...

    def ledger_exists(self, amazon_capture_id: str) -> bool: ...


class ReconcilerStorePort(RefundStorePort, Protocol):
    """The open refunds with their check records, and recording a check that learnt nothing."""

    def open_refunds(self) -> Iterator[list[OpenRefund]]: ...

    def record_poll(self, refund: Refund, polls: int, at: datetime) -> bool: ...


class NotificationStore(CaptureRefundsStore, RefundTransitions, Protocol):
    """What the IPN use case needs: transitions, open refunds (to place external refunds), IPN dedupe,
    v2 chargebacks."""

    def list_open(
        self, status: RefundStatus | None = None, older_than: datetime | None = None, limit: int = 100
    ) -> list[Refund]: ...

    def record_ipn_once(
        self, notification_reference_id: str, ttl: timedelta, *, now: datetime | None = None
    ) -> bool: ...

    def record_chargeback(
        self, seller_id: str, charge_permission_id: str, chargeback_id: str, *, at: datetime
    ) -> bool: ...


class RefundStoreAdapter(ReconcilerStorePort, NotificationStore, Protocol):
    """Everything the use cases ask of the refund store (`adapters/dynamodb.RefundStore`): what the
    composition root hands each of them."""


# --- Amazon Pay -----------------------------------------------------------------------------------------


class RefundDetailsSource(Protocol):
    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails: ...


class CaptureDetailsSource(Protocol):
    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails: ...


class AmazonPayReader(RefundDetailsSource, CaptureDetailsSource, Protocol):
    """GetCaptureDetails and GetRefundDetails."""


class AmazonPayPort(AmazonPayReader, Protocol):
    """Amazon Pay as the use cases call it: the reads and the Refund call."""

    def refund(
        self,
        amazon_capture_id: str,
        refund_reference_id: str,
        amount: Decimal,
        currency_code: str,
        *,
        seller_refund_note: str | None = None,
        soft_descriptor: str | None = None,
        provider_credit_reversals: Sequence[ProviderCreditReversal] = (),
        seller_id: str | None = None,
        deadline: float | None = None,
    ) -> RefundDetails: ...


AmazonErrorObserver = Callable[[str, AmazonPayError], None]


def ignore_amazon_error(operation: str, error: AmazonPayError) -> None:
    """The default observer of Amazon's errors (the handlers count them: observability.count_amazon_error)."""


AttemptOutcomeListener = Callable[[Transition, AttemptOutcome], None]


def ignore_attempt_outcome(transition: Transition, outcome: AttemptOutcome) -> None:
    """The default listener of attempts an IPN or a poll settled (the composition root wires
    `use_cases.retries.ResumeWaitingRetry` for the IPN handler; the RetryWorkflow does not rely on the
    reconciler: it reads a retry's outcome itself when no IPN resumes it in time)."""


# --- the retry workflow (Step Functions) and its task tokens --------------------------------------------


class WorkflowStarter(Protocol):
    """StartExecution (the boto3 Step Functions client)."""

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> Any: ...


class TaskTokenPort(Protocol):
    def put(self, refund_id: str, attempt: int, task_token: str) -> None: ...

    def get(self, refund_id: str, attempt: int) -> str | None: ...


class TaskCallbackPort(Protocol):
    """SendTaskSuccess / SendTaskFailure (the boto3 Step Functions client)."""

    def send_task_success(self, *, taskToken: str, output: str) -> Any: ...

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> Any: ...


# --- IPNs: authenticity (adapters/sns) and subscriptions ------------------------------------------------


class IpnAuthenticity(Protocol):
    """Whether an IPN post is genuine and meant for this deployment (`adapters/sns.IpnAuthenticator`)."""

    def verify(self, body: str | bytes, headers: Mapping[str, str] | None) -> VerifiedIpn:
        """The verified message; raises MalformedNotification, NotAuthentic or CertificateUnavailable."""
        ...

    def check_subscription(self, sns: SnsMessage) -> None:
        """Raises NotAuthentic unless this deployment may confirm the subscription (topic, SubscribeURL)."""
        ...


# --- IPN subscriptions ----------------------------------------------------------------------------------


class SubscriptionNotConfirmed(Exception):
    """SNS did not confirm the subscription just now (network error, non-2xx): SNS may send it again."""


class SubscribeUrlFetcher(Protocol):
    """GET a verified SubscribeURL (no redirects, a timeout); raise `SubscriptionNotConfirmed` on failure."""

    def __call__(self, url: str) -> None: ...
