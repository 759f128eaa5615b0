"""Doubles for the retry steps: a ProcessingFailure decline, Amazon Pay, task tokens, Step Functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import CaptureDetails, CaptureStatus, RefundDetails
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    AttemptOutcome,
    Observation,
    apply_observation,
    request_refund,
)
from amazon_pay_refunds.core.models import AttemptState, PaymentApi, Refund, RefundStatus
from amazon_pay_refunds.use_cases.retries import RetrySteps
from tests.support.doubles import CAPTURE_ID, NOW, MemoryStore, capture_details, refund_details

__all__ = ["CAPTURE_ID", "NOW", "MemoryStore"]

REFUND_ID = "ord-1001-r1"
FIRST_AMAZON_ID = "S01-1234567-1234567-R000001"
RETRY_AMAZON_ID = "S01-1234567-1234567-R000002"
SELLER_ID = "A1EXAMPLE"


def store_with_declined_refund(
    *, reason_code: str = "ProcessingFailure", max_retries: int = 1, api: PaymentApi = PaymentApi.V1
) -> tuple[MemoryStore, Refund]:
    """A refund whose attempt 1 Amazon accepted and then declined with `reason_code`."""
    store = MemoryStore()
    refund = request_refund(
        refund_id=REFUND_ID,
        seller_id=SELLER_ID,
        amazon_capture_id=CAPTURE_ID,
        amount=Decimal("12.50"),
        currency_code="USD",
        seller_refund_note=None,
        soft_descriptor=None,
        metadata={},
        request_fingerprint="f",
        at=NOW,
        api=api,
    ).refund
    seed = LedgerSeed(refund.ledger_id, SELLER_ID, "USD", Decimal("100.00"))
    store.create_refund_with_reservation(refund, seed)
    observe(store, AttemptAccepted(1, FIRST_AMAZON_ID), max_retries=max_retries)
    declined = AttemptOutcome(AttemptState.DECLINED, "ipn:n1", reason_code, FIRST_AMAZON_ID)
    stored = observe(store, declined, max_retries=max_retries)
    return store, stored


def observe(store: MemoryStore, observation: Observation, *, max_retries: int = 1) -> Refund:
    return store.transition(
        REFUND_ID,
        lambda current: apply_observation(
            current, observation, at=NOW + timedelta(seconds=1), max_processing_failure_retries=max_retries
        ),
    ).refund


def capture(state: str = "Completed", id_list: Sequence[str] = ()) -> CaptureDetails:
    details = capture_details(state=state)
    return replace(details, capture_status=CaptureStatus(state, None, NOW), id_list=tuple(id_list))


def details(
    amazon_refund_id: str = RETRY_AMAZON_ID,
    state: str = "Pending",
    *,
    refund_type: str = "SellerInitiated",
    reason_code: str | None = None,
    reference: str = f"{REFUND_ID}_2",
) -> RefundDetails:
    answer = refund_details(amazon_refund_id, state)
    return replace(
        answer,
        refund_type=refund_type,
        refund_reference_id=reference,
        refund_status=replace(answer.refund_status, reason_code=reason_code),
    )


@dataclass
class RetryAmazonPay:
    """Amazon Pay as the retry steps use it; every call recorded."""

    capture: CaptureDetails | AmazonPayError = field(default_factory=capture)
    refund_answers: list[RefundDetails | AmazonPayError] = field(default_factory=lambda: [details()])
    refunds_by_id: dict[str, RefundDetails | AmazonPayError] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def refund(
        self,
        amazon_capture_id: str,
        refund_reference_id: str,
        amount: Decimal,
        currency_code: str,
        **options: Any,
    ) -> RefundDetails:
        """`AmazonPayPort.refund`; the options are not checked."""
        self.calls.append(("Refund", refund_reference_id))
        answer = self.refund_answers.pop(0) if len(self.refund_answers) > 1 else self.refund_answers[0]
        if isinstance(answer, AmazonPayError):
            raise answer
        return answer

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        self.calls.append(("GetCaptureDetails", amazon_capture_id))
        if isinstance(self.capture, AmazonPayError):
            raise self.capture
        return self.capture

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        self.calls.append(("GetRefundDetails", amazon_refund_id))
        answer = self.refunds_by_id[amazon_refund_id]
        if isinstance(answer, AmazonPayError):
            raise answer
        return answer

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


@dataclass
class MemoryTokens:
    tokens: dict[tuple[str, int], str] = field(default_factory=dict)

    def put(self, refund_id: str, attempt: int, task_token: str) -> None:
        self.tokens[refund_id, attempt] = task_token

    def get(self, refund_id: str, attempt: int) -> str | None:
        return self.tokens.get((refund_id, attempt))


@dataclass
class RecordingStepFunctions:
    """SendTaskSuccess/SendTaskFailure/StartExecution recorded; `error_code` makes them fail that way."""

    error_code: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    def _maybe_fail(self, operation: str) -> None:
        if self.error_code is not None:
            raise ClientError({"Error": {"Code": self.error_code, "Message": "x"}}, operation)

    def send_task_success(self, *, taskToken: str, output: str) -> Any:
        self._maybe_fail("SendTaskSuccess")
        self.sent.append({"operation": "SendTaskSuccess", "taskToken": taskToken, "output": output})
        return {}

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> Any:
        self._maybe_fail("SendTaskFailure")
        self.sent.append(
            {"operation": "SendTaskFailure", "taskToken": taskToken, "error": error, "cause": cause}
        )
        return {}

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> Any:
        self._maybe_fail("StartExecution")
        self.sent.append({"operation": "StartExecution", "stateMachineArn": stateMachineArn, "name": name,
                          "input": input})  # fmt: skip
        return {"executionArn": f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:{name}"}


def steps(store: MemoryStore, amazon: RetryAmazonPay, tokens: MemoryTokens | None = None) -> RetrySteps:
    return RetrySteps(
        store,
        amazon,
        tokens or MemoryTokens(),
        max_processing_failure_retries=1,
        now=lambda: NOW + timedelta(minutes=2),
    )


def status(store: MemoryStore) -> RefundStatus:
    refund = store.get_refund(REFUND_ID)
    assert refund is not None
    return refund.status
