"""The storefront API's bodies (CONTRACT §3) as pydantic models: validated requests, documented responses.

The request models refuse unknown fields and take amounts only as decimal strings, checked against the
currency's minor units (money.parse_amount). Response models document what `Refund.to_resource()` and
`CaptureLedger.to_resource()` produce; the OpenAPI document is generated from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from amazon_pay_refunds.core.models import PaymentApi
from amazon_pay_refunds.core.references import AMAZON_CAPTURE_ID_PATTERN, REFUND_ID_PATTERN
from amazon_pay_refunds.money import InvalidAmount, amount_example, parse_amount
from amazon_pay_refunds.use_cases.refund_requests import RefundRequest

CurrencyCode = Literal["USD", "EUR", "GBP", "JPY", "AUD", "CHF", "DKK", "HKD", "NOK", "NZD", "SEK", "ZAR"]
ResolutionMethod = Literal["gift_card", "store_credit", "bank_transfer", "other"]

MAX_METADATA_ENTRIES = 20
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 256
SELLER_ID_PATTERN = r"^[A-Z0-9]{1,32}$"

REFUND_ID_DESCRIPTION = (
    "The client's key for this logical refund, and its idempotency key: 1 to 28 characters of "
    "A-Z a-z 0-9 and '-' (no underscore). Amazon's RefundReferenceId of attempt n is derived from it as "
    "'{refund_id}_{n}'."
)
AMOUNT_DESCRIPTION = (
    "A positive decimal string (never a number) with at most the currency's minor units: '12.50' for USD, "
    "'1000' for JPY (no decimals)."
)
CAPTURE_ID_DESCRIPTION = (
    "Amazon Pay v1 (MWS): the capture id, e.g. S01-1234567-1234567-C000001. Exactly one of "
    "amazon_capture_id and amazon_charge_id."
)
EXACTLY_ONE_PAYMENT = (
    "exactly one of amazon_capture_id (Amazon Pay v1) and amazon_charge_id (API v2) is required"
)
CHARGE_ID_DESCRIPTION = (
    "Amazon Pay API v2 (Checkout v2): the charge id, e.g. S01-1234567-1234567-C000001. Exactly one of "
    "amazon_capture_id and amazon_charge_id."
)

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE)]


class RefundRequestBody(BaseModel):
    """POST /refunds."""

    model_config = ConfigDict(extra="forbid")

    refund_id: str = Field(pattern=REFUND_ID_PATTERN.pattern, description=REFUND_ID_DESCRIPTION)
    amazon_capture_id: str | None = Field(
        default=None, pattern=AMAZON_CAPTURE_ID_PATTERN.pattern, description=CAPTURE_ID_DESCRIPTION
    )
    amazon_charge_id: str | None = Field(
        default=None, pattern=AMAZON_CAPTURE_ID_PATTERN.pattern, description=CHARGE_ID_DESCRIPTION
    )
    # Declared before `amount`, so that the amount's check can read it.
    currency_code: CurrencyCode = Field(description="ISO 4217 code; must be the capture's currency.")
    amount: str = Field(description=AMOUNT_DESCRIPTION, examples=["12.50"])
    seller_refund_note: str | None = Field(
        default=None, max_length=255, description="Shown in the buyer's email and the settlement report."
    )
    soft_descriptor: str | None = Field(
        default=None, max_length=16, description="The buyer's statement shows 'AMZ* {soft_descriptor}'."
    )
    seller_id: str | None = Field(
        default=None,
        pattern=SELLER_ID_PATTERN,
        description="Amazon Pay SellerId; the configured default seller when left out.",
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ENTRIES,
        description=f"Up to {MAX_METADATA_ENTRIES} string values, kept with the refund and echoed back.",
    )

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_a_string(cls, amount: object, info: ValidationInfo) -> object:
        """A number gets the amount's own message, not pydantic's "Input should be a valid string"."""
        if isinstance(amount, int | float):
            currency = info.data.get("currency_code")
            raise ValueError(
                f'amount must be a decimal string such as "{amount_example(str(currency))}", not a number'
            )
        return amount

    @field_validator("amount")
    @classmethod
    def _amount_fits_the_currency(cls, amount: str, info: ValidationInfo) -> str:
        currency = info.data.get("currency_code")
        try:
            parse_amount(amount, currency if isinstance(currency, str) else "USD")
        except InvalidAmount as error:
            raise ValueError(str(error)) from None
        return amount

    @model_validator(mode="wrap")
    @classmethod
    def _exactly_one_payment(cls, data: Any, handler: ModelWrapValidatorHandler[RefundRequestBody]) -> Any:
        """Exactly one of the two ids, named with every other invalid field (not only once they are valid)."""
        named = [
            n
            for n in ("amazon_capture_id", "amazon_charge_id")
            if isinstance(data, dict) and data.get(n) is not None
        ]
        problem: InitErrorDetails | None = None
        if isinstance(data, dict) and len(named) != 1:
            problem = {
                "type": PydanticCustomError("value_error", EXACTLY_ONE_PAYMENT),
                "loc": ("amazon_capture_id",) if not named else ("amazon_charge_id",),
                "input": None if not named else data["amazon_charge_id"],
            }
        try:
            model = handler(data)
        except ValidationError as error:
            if problem is None:
                raise
            raise ValidationError.from_exception_data(
                error.title, [*_as_init_errors(error), problem]
            ) from None
        if problem is not None:
            raise ValidationError.from_exception_data(cls.__name__, [problem])
        return model


def _as_init_errors(error: ValidationError) -> list[InitErrorDetails]:
    """A ValidationError's errors as they are given to `ValidationError.from_exception_data` again."""
    return [
        {"type": PydanticCustomError(e["type"], e["msg"]), "loc": e["loc"], "input": e["input"]}
        for e in error.errors()
    ]


class ResolveRequestBody(BaseModel):
    """POST /refunds/{refund_id}/resolve: how the buyer was refunded instead."""

    model_config = ConfigDict(extra="forbid")

    method: ResolutionMethod
    note: str = Field(min_length=1, max_length=1000, description="What was done, for the audit trail.")


class AttemptResource(BaseModel):
    attempt: int
    refund_reference_id: str
    amazon_refund_id: str | None
    state: Literal["Requested", "Pending", "Completed", "Declined"]
    reason_code: str | None
    requested_at: str
    updated_at: str


class HistoryResource(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: str
    from_: str | None = Field(alias="from")
    to: str
    cause: str
    # Who made an API transition: the signer's IAM ARN, or api-key:{API key id}. Absent otherwise.
    caller: str | None = None


class RefundResource(BaseModel):
    """A logical refund, its Amazon attempts and its audit trail."""

    refund_id: str
    seller_id: str
    amazon_capture_id: str | None = Field(default=None, description="A v1 refund's capture.")
    amazon_charge_id: str | None = Field(default=None, description="An API v2 refund's charge.")
    amount: str
    currency_code: str
    status: Literal[
        "Requested", "Pending", "RetryScheduled", "ManualActionRequired", "Completed", "Failed",
        "ResolvedOutOfBand",
    ]  # fmt: skip
    reason_code: str | None
    attempts: list[AttemptResource]
    history: list[HistoryResource]
    metadata: dict[str, str]
    created_at: str
    updated_at: str


class LedgerRefundResource(BaseModel):
    refund_id: str
    amount: str
    status: str


class ExternalRefundResource(BaseModel):
    amazon_refund_id: str
    amount: str | None = Field(
        description="None only for refunds of ledgers opened before opening read them (type Opening)."
    )
    refund_type: str = Field(description="AmazonA-ZRefund, BuyerCanceled, SellerInitiated, ...")
    state: str | None = Field(
        default=None, description="Pending, Completed or Declined when recorded; Declined ones count nothing."
    )
    recorded_at: str


class ChargebackResource(BaseModel):
    chargeback_id: str = Field(description="Amazon's chargeback id, as its CHARGEBACK IPN named it.")
    notified_at: str = Field(description="When its first CHARGEBACK IPN was recorded.")


class CaptureLedgerResource(BaseModel):
    """What has been refunded, or is being refunded, on one Amazon capture (v1) or charge (API v2)."""

    amazon_capture_id: str | None = Field(default=None, description="GET /captures/{id}: the capture.")
    amazon_charge_id: str | None = Field(default=None, description="GET /charges/{id}: the charge.")
    seller_id: str
    currency_code: str
    captured: str
    completed: str
    in_flight: str
    external: str = Field(
        description="Refunds this service did not issue (A-to-z, chargeback, Seller Central)."
    )
    available: str
    over_refund_allowed: bool
    refunds: list[LedgerRefundResource]
    external_refunds: list[ExternalRefundResource]
    charge_permission_id: str | None = Field(
        default=None,
        description="GET /charges/{id}: the charge's charge permission (Get Charge's chargePermissionId).",
    )
    chargebacks: list[ChargebackResource] | None = Field(
        default=None,
        description="GET /charges/{id}: the chargebacks Amazon notified (CHARGEBACK IPNs) on the charge's "
        "permission. Any one forbids the ProcessingFailure retry of refunds on the charge; new refunds go "
        "on within what is available.",
    )


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable, machine-readable code, e.g. RefundExceedsCapture.")
    message: str
    details: Any = Field(default=None, description="Structured context: the fields in error, amounts, ...")


class ErrorBody(BaseModel):
    error: ErrorDetail


def to_refund_request(body: RefundRequestBody, caller: str | None = None) -> RefundRequest:
    """The service's request from a validated body (the amount, already checked, as a Decimal)."""
    charge_id = body.amazon_charge_id
    return RefundRequest(
        caller=caller,
        refund_id=body.refund_id,
        amazon_capture_id=charge_id if charge_id is not None else str(body.amazon_capture_id),
        api=PaymentApi.V2 if charge_id is not None else PaymentApi.V1,
        amount=parse_amount(body.amount, body.currency_code),
        currency_code=body.currency_code,
        seller_refund_note=body.seller_refund_note,
        soft_descriptor=body.soft_descriptor,
        seller_id=body.seller_id,
        metadata=dict(body.metadata),
    )
