"""The composition root: the one place that builds every service from `Settings` and the adapters.

Used by every Lambda handler (`lambda_services()`: the container's adapters from `runtime`, built lazily and
cached), the operators' CLI and the simulation (their own adapters, clocks and fault hooks), and through the
handlers by the local stack. A use case never builds its own adapters.

The use-case modules are imported inside each builder, so that a handler's cold start imports only its own
use case (RefundApi does not load the IPN verifier, nor the reconciler).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from amazon_pay_refunds.config import ConfigurationError, Settings
from amazon_pay_refunds.core.models import PaymentApi, parse_qualified_id, qualified_id
from amazon_pay_refunds.ports import (
    AmazonErrorObserver,
    AmazonPayPort,
    AmazonPayReader,
    AttemptOutcomeListener,
    RefundDetails,
    RefundStoreAdapter,
    TaskCallbackPort,
    TaskTokenPort,
    WorkflowStarter,
    ignore_amazon_error,
)

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

    from amazon_pay_refunds.adapters.mws.credentials import PayV2Credentials, SellerCredentials
    from amazon_pay_refunds.adapters.mws.models import CaptureDetails
    from amazon_pay_refunds.adapters.sns import CertificateFetcher, CertificateTrust
    from amazon_pay_refunds.events import PublishResult
    from amazon_pay_refunds.ports import SubscribeUrlFetcher
    from amazon_pay_refunds.use_cases.notifications import IpnService
    from amazon_pay_refunds.use_cases.reconciliation import Reconciler
    from amazon_pay_refunds.use_cases.refund_requests import RefundService
    from amazon_pay_refunds.use_cases.retries import RetrySteps
    from amazon_pay_refunds.use_cases.retry_starter import RetryStarter
    from amazon_pay_refunds.use_cases.submission import FaultHook


def _no_faults(point: Any, refund: Any) -> None:
    """No fault injected (tests pass a hook that raises at a named point)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Settings and the adapters (each built on first use), and the builders of every service.

    `store`, `amazon_pay`, `task_tokens`, `stepfunctions` and `events` are zero-argument factories, so
    that building a service that never calls Amazon Pay (a read, an operator's resolution) sets up no
    Amazon Pay client and reads no credentials.
    """

    settings: Settings
    store: Callable[[], RefundStoreAdapter]
    amazon_pay: Callable[[], AmazonPayPort]
    seller_credentials: Callable[[str | None], SellerCredentials]
    task_tokens: Callable[[], TaskTokenPort] | None = None
    stepfunctions: Callable[[], Any] | None = None
    events: Callable[[], EventBridgeClient] | None = None
    now: Callable[[], datetime] = _utc_now
    monotonic: Callable[[], float] = time.monotonic
    on_amazon_error: AmazonErrorObserver = ignore_amazon_error
    fault_hook: FaultHook = field(default=_no_faults)
    # A seller's Amazon Pay API v2 key (raises NoCredentialsForSeller); None: this composition has no v2.
    v2_seller_credentials: Callable[[str | None], PayV2Credentials] | None = None

    # --- the request path (RefundApi, the CLI) ---------------------------------------------------------

    def refund_requests(self, *, fault_hook: FaultHook | None = None) -> RefundService:
        from amazon_pay_refunds.use_cases.refund_requests import RefundService

        return RefundService(
            self.store(),
            _Lazy(self.amazon_pay),
            self.seller_credentials,
            allow_over_refund=self.settings.allow_over_refund,
            max_processing_failure_retries=self.settings.max_processing_failure_retries,
            now=self.now,
            fault_hook=fault_hook or self.fault_hook,
            on_amazon_error=self.on_amazon_error,
            v2_seller_credentials=self.v2_seller_credentials,
        )

    # --- the reconciler (scheduled, the CLI) -----------------------------------------------------------

    def reconciler(self, *, fault_hook: FaultHook | None = None) -> Reconciler:
        """The reconciler and the RefundService it submits through (whose Refund calls recover a refund
        Amazon already made under a refused RefundReferenceId: `AdoptsRefundsAlreadyMade`)."""
        from amazon_pay_refunds.use_cases.reconciliation import AdoptsRefundsAlreadyMade, Reconciler
        from amazon_pay_refunds.use_cases.refund_requests import RefundService

        store, amazon_pay = self.store(), self.amazon_pay()
        requests = RefundService(
            store,
            AdoptsRefundsAlreadyMade(amazon_pay),
            self.seller_credentials,
            allow_over_refund=self.settings.allow_over_refund,
            max_processing_failure_retries=self.settings.max_processing_failure_retries,
            now=self.now,
            fault_hook=fault_hook or self.fault_hook,
            on_amazon_error=self.on_amazon_error,
        )
        return Reconciler(
            store,
            amazon_pay,
            requests,
            retry_delay_seconds=self.settings.retry_delay_seconds,
            max_processing_failure_retries=self.settings.max_processing_failure_retries,
            now=self.now,
            monotonic=self.monotonic,
            on_amazon_error=self.on_amazon_error,
        )

    # --- the ProcessingFailure retry -------------------------------------------------------------------

    def retry_starter(self, state_machine_arn: str | None = None) -> RetryStarter:
        from amazon_pay_refunds.config import retry_workflow_arn
        from amazon_pay_refunds.use_cases.retry_starter import RetryStarter, RetryTiming

        timing = RetryTiming(retry_delay_seconds=self.settings.retry_delay_seconds)
        starter: WorkflowStarter = self._required(self.stepfunctions, "stepfunctions")
        return RetryStarter(starter, state_machine_arn or retry_workflow_arn(), timing)

    def retry_steps(self) -> RetrySteps:
        from amazon_pay_refunds.use_cases.retries import RetrySteps

        return RetrySteps(
            self.store(),
            self.amazon_pay(),
            self._required(self.task_tokens, "task_tokens"),
            max_processing_failure_retries=self.settings.max_processing_failure_retries,
            now=self.now,
            on_amazon_error=self.on_amazon_error,
        )

    def resume_waiting_retry(self) -> AttemptOutcomeListener:
        from amazon_pay_refunds.use_cases.retries import ResumeWaitingRetry

        task_tokens, stepfunctions = self.task_tokens, self.stepfunctions
        if task_tokens is None or stepfunctions is None:
            raise ConfigurationError("resuming a waiting retry needs the task tokens and Step Functions")

        def callbacks() -> TaskCallbackPort:
            client: TaskCallbackPort = stepfunctions()
            return client

        return ResumeWaitingRetry(task_tokens, callbacks)

    # --- IPNs ------------------------------------------------------------------------------------------

    def ipn_service(
        self,
        *,
        trust: CertificateTrust | None = None,
        certificate_fetcher: CertificateFetcher | None = None,
        subscribe_url_fetcher: SubscribeUrlFetcher | None = None,
        amazon_pay: Callable[[], AmazonPayReader] | None = None,
        on_attempt_outcome: AttemptOutcomeListener | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> IpnService:
        """The IPN use case: trust (by default from the environment: a local CA only outside Lambda), this
        deployment's binding, the store.

        Raises ConfigurationError for an unusable environment.
        """
        from amazon_pay_refunds.adapters.sns import (
            DeploymentBinding,
            IpnAuthenticator,
            SnsVerifier,
            trust_from_environment,
        )
        from amazon_pay_refunds.adapters.sns.subscriptions import RequestsSubscribeUrlFetcher
        from amazon_pay_refunds.use_cases.notifications import IpnService

        try:
            binding = DeploymentBinding.of(
                topic_arns=self.settings.ipn_topic_arns, seller_ids=self.settings.seller_ids
            )
        except ValueError:
            raise ConfigurationError("SELLER_IDS or IPN_TOPIC_ARNS must name what IPNs to accept") from None
        verifier = SnsVerifier(
            trust or trust_from_environment(environ), fetcher=certificate_fetcher, clock=self.now
        )
        return IpnService(
            authenticity=IpnAuthenticator(verifier, binding),
            store=self.store(),
            amazon_pay=amazon_pay or self.amazon_pay,
            sandbox=self.settings.amazon_pay_sandbox,
            max_processing_failure_retries=self.settings.max_processing_failure_retries,
            allow_over_refund=self.settings.allow_over_refund,
            subscribe_url_fetcher=subscribe_url_fetcher or RequestsSubscribeUrlFetcher(),
            on_attempt_outcome=on_attempt_outcome or self.resume_waiting_retry(),
            clock=self.now,
        )

    # --- events (the table's stream → EventBridge) -----------------------------------------------------

    def publish_stream_records(self, records: Sequence[Mapping[str, Any]]) -> PublishResult:
        from amazon_pay_refunds.events import publish_stream_records

        client = self._required(self.events, "events")
        return publish_stream_records(client, self.settings.event_bus_name, records)

    @staticmethod
    def _required(factory: Callable[[], Any] | None, name: str) -> Any:
        if factory is None:
            raise ConfigurationError(f"this composition has no {name} adapter")
        return factory()


class _Lazy:
    """Amazon Pay, built when first called: reading or resolving a refund sets up no client (the CLI's
    reads need no Amazon Pay settings). Arguments pass through unchanged (the port's signatures)."""

    def __init__(self, build: Callable[[], AmazonPayPort]) -> None:
        self._build = build

    def refund(self, *args: Any, **kwargs: Any) -> RefundDetails:
        return self._build().refund(*args, **kwargs)

    def get_capture_details(self, *args: Any, **kwargs: Any) -> CaptureDetails:
        return self._build().get_capture_details(*args, **kwargs)

    def get_refund_details(self, *args: Any, **kwargs: Any) -> RefundDetails:
        return self._build().get_refund_details(*args, **kwargs)


def lambda_services(
    *, on_amazon_error: AmazonErrorObserver = ignore_amazon_error, now: Callable[[], datetime] = _utc_now
) -> Services:
    """The services of a Lambda container (and of the local stack, which runs the handlers): the adapters
    from `runtime`, each built on first use and cached for the container's life."""
    from amazon_pay_refunds import runtime

    return Services(
        settings=runtime.settings(),
        store=runtime.store,
        amazon_pay=runtime.amazon_pay,
        seller_credentials=runtime.seller_credentials,
        v2_seller_credentials=runtime.v2_seller_credentials,
        task_tokens=runtime.task_tokens,
        stepfunctions=runtime.stepfunctions_client,
        events=runtime.events_client,
        on_amazon_error=on_amazon_error,
        now=now,
    )


class AmazonPayRouter:
    """The Amazon Pay port for both APIs: each call goes to the v1 (MWS) or the v2 adapter by the API its
    target id carries (`core/models.qualified_id`: a v1 id as is, a v2 id as `v2:{id}`). What comes back is
    in the same terms: a v2 charge's CaptureDetails carries its qualified id (the ledger's id). Each adapter
    is built on first use, so a v1-only deployment never builds (nor needs keys for) v2."""

    def __init__(self, v1: Callable[[], AmazonPayPort], v2: Callable[[], AmazonPayPort]) -> None:
        self._v1 = v1
        self._v2 = v2

    def _route(self, target: str) -> tuple[AmazonPayPort, PaymentApi, str]:
        api, amazon_id = parse_qualified_id(target)
        return (self._v2() if api is PaymentApi.V2 else self._v1()), api, amazon_id

    def refund(self, amazon_capture_id: str, *args: Any, **kwargs: Any) -> RefundDetails:
        adapter, _, amazon_id = self._route(amazon_capture_id)
        return adapter.refund(amazon_id, *args, **kwargs)

    def get_capture_details(self, amazon_capture_id: str, **kwargs: Any) -> CaptureDetails:
        adapter, api, amazon_id = self._route(amazon_capture_id)
        details = adapter.get_capture_details(amazon_id, **kwargs)
        return replace(details, amazon_capture_id=qualified_id(api, details.amazon_capture_id))

    def get_refund_details(self, amazon_refund_id: str, **kwargs: Any) -> RefundDetails:
        adapter, _, amazon_id = self._route(amazon_refund_id)
        return adapter.get_refund_details(amazon_id, **kwargs)
