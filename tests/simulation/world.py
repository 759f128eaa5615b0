"""The simulated world of one seed: moto's DynamoDB behind a fault-injecting client, the Amazon Pay simulator
in process behind a requests adapter (no sockets), signed IPNs from the simulator's refund observer, the
stream → event publisher → RetryStarter chain, and the RetryWorkflow run by the ASL interpreter. Every
service is the real one, wired with the virtual clock."""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import requests
from botocore.exceptions import BotoCoreError, ClientError
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from amazon_pay_refunds.adapters.dynamodb import RefundStore, StoreError, create_table
from amazon_pay_refunds.adapters.dynamodb.task_tokens import TaskTokenStore
from amazon_pay_refunds.adapters.mws.client import AmazonPayClient
from amazon_pay_refunds.adapters.mws.credentials import (
    CredentialsBook,
    PayV2Credentials,
    parse_credentials_secret,
)
from amazon_pay_refunds.adapters.mws.endpoints import Endpoint
from amazon_pay_refunds.adapters.mws.models import CaptureDetails, RefundDetails
from amazon_pay_refunds.adapters.pay_v2.client import PayV2Client
from amazon_pay_refunds.adapters.pay_v2.endpoints import PayV2Endpoint
from amazon_pay_refunds.adapters.pay_v2.port import PayV2AmazonPay
from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    LocalAuthorityTrust,
)
from amazon_pay_refunds.api.ipn_answers import IpnAnswer
from amazon_pay_refunds.composition import AmazonPayRouter, Services
from amazon_pay_refunds.config import Settings
from amazon_pay_refunds.core.lifecycle import AttemptOutcome, Transition
from amazon_pay_refunds.core.models import PaymentApi, qualified_id
from amazon_pay_refunds.core.references import parse_refund_reference_id
from amazon_pay_refunds.use_cases.retries import resume_retry_executions, settled_retry_attempts
from amazon_pay_refunds.use_cases.submission import FaultPoint
from amazon_pay_sim import Simulator
from amazon_pay_sim import responses as sim_responses
from amazon_pay_sim.authority import LocalAuthority
from amazon_pay_sim.ipn import (
    IPN_REGIONS,
    IpnNotification,
    amazon_pay_message,
    sns_envelope,
    sns_headers,
    topic_arn,
)
from amazon_pay_sim.pay_v2 import V2Change, ipn_message
from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_SELLER_ID, MWS_PATH
from amazon_pay_sim.state import RefundChange

from .asl import Execution, StatesError
from .cooperative import EPOCH, Crash, Scheduler, VirtualClock

REPO = Path(__file__).resolve().parents[2]
RETRY_ASL = REPO / "statemachine" / "retry.asl.json"
REGION = "us-east-1"
TABLE = "refunds-sim"
SELLER = DEFAULT_SELLER_ID
SIM_HOST = "sim.local"
SIM_BASE = f"http://{SIM_HOST}"
SUBSCRIPTION = "sim-subscription"
BUS = "refunds-sim-bus"
RETRY_WORKFLOW_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:refunds-sim-RetryWorkflow"
MAX_PROCESSING_FAILURE_RETRIES = 1
RETRY_DELAY_SECONDS = 90
STORE_WRITES = frozenset({"put_item", "update_item", "transact_write_items", "delete_item"})
STREAMS_ENDPOINT = "https://streams.dynamodb.us-east-1.amazonaws.com"
V2_PUBLIC_KEY_ID = "simulation-v2-key"  # no SANDBOX-/LIVE- prefix: the endpoint's sandbox path is used


@cache
def local_authority() -> LocalAuthority:
    """One signing authority per process (two RSA keys are slow); valid around the virtual epoch."""
    return LocalAuthority.create(now=EPOCH)


@cache
def v2_key_pair() -> tuple[str, str]:
    """The seller's API v2 key (private PEM, public PEM), one per process (RSA generation is slow)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private, public


@cache
def _loaded_private_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem.encode("ascii"), password=None)


class LoadedKeyCredentials(PayV2Credentials):
    """The seller's v2 credentials with the private key loaded once per process: loading a PEM RSA key
    costs ~35 ms of CPU, and the client loads it for every call (a simulation makes thousands)."""

    def private_key(self) -> Any:
        return _loaded_private_key(self.private_key_pem)


@cache
def simulation_credentials() -> tuple[CredentialsBook, LoadedKeyCredentials]:
    """The seller's MWS keys and v2 key, parsed once per process (the secret is the same for every seed)."""
    private_pem, _ = v2_key_pair()
    secret = {
        "default_seller_id": SELLER,
        "sellers": {
            SELLER: {
                "access_key": DEFAULT_ACCESS_KEY,
                "secret_key": DEFAULT_SECRET_KEY,
                "public_key_id": V2_PUBLIC_KEY_ID,
                "private_key": private_pem,
            }
        },
    }
    credentials = parse_credentials_secret(json.dumps(secret))
    v2 = credentials.for_v2_seller(SELLER)
    return credentials, LoadedKeyCredentials(v2.seller_id, v2.public_key_id, v2.private_key_pem)


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "simulated"}}, operation)


class Chaos:
    """Where faults are decided (from the seeded generator) and counted. Off during quiescence."""

    def __init__(self, rng: random.Random, trace: Callable[[str], None]) -> None:
        self.rng = rng
        self.trace = trace
        self.enabled = True
        self.store_fault_rate = 0.03
        self.hook_crash_rate = 0.06
        self.mix: Counter[str] = Counter()

    def count(self, kind: str) -> None:
        self.mix[kind] += 1

    def store_fault(self, operation: str) -> str | None:
        task = Scheduler.current()
        if not self.enabled or task is None or operation not in STORE_WRITES:
            return None
        if self.rng.random() >= self.store_fault_rate:
            return None
        fault = self.rng.choice(("crash-before", "crash-after", "error-before", "error-after"))
        self.count(f"store:{fault}")
        self.trace(f"    {task} ddb:{operation} -> {fault}")
        return fault

    def hook(self, point: FaultPoint, refund_id: str) -> None:
        task = Scheduler.current()
        Scheduler.yield_point(f"hook:{point}")
        if self.enabled and task is not None and self.rng.random() < self.hook_crash_rate:
            self.count(f"crash:{point}")
            self.trace(f"    {task} crash at {point} ({refund_id})")
            raise Crash(point)


class FaultyDynamoDB:
    """The DynamoDB client the store uses: a yield point before every call; writes may crash or fail before
    (instead of) or after executing."""

    def __init__(self, client: Any, chaos: Chaos) -> None:
        self._client = client
        self._chaos = chaos

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            Scheduler.yield_point(f"ddb:{name}")
            fault = self._chaos.store_fault(name)
            if fault == "crash-before":
                raise Crash(f"before {name}")
            if fault == "error-before":
                raise client_error("ProvisionedThroughputExceededException", name)
            result = attribute(*args, **kwargs)
            if fault == "crash-after":
                raise Crash(f"after {name}")
            if fault == "error-after":
                raise client_error("InternalServerError", name)
            return result

        return call


def retry_forbidding_refunds(simulator: Simulator, capture_id: str) -> list[str]:
    """Amazon's A-to-z and chargeback refunds on the capture right now (any state), as `type id`."""
    market = simulator.market
    capture = market.captures.get(capture_id)
    if capture is None:
        return []
    found = []
    for amazon_refund_id in capture.refund_ids:
        refund_type = market.refunds[amazon_refund_id].refund_type
        if refund_type == "AmazonA-ZRefund" or "chargeback" in refund_type.lower():
            found.append(f"{refund_type} {amazon_refund_id}")
    return found


def refunds_by_others_on_charge(
    simulator: Simulator, charge_id: str, known_since: Mapping[str, int], task_number: int | None
) -> list[str]:
    """Refunds on the v2 charge not made through the API by anyone (no idempotency key) that the service
    could know of before the invocation numbered `task_number` started (`known_since`: the scheduler's
    count when each became knowable, `World.known_by_others`), whatever their state now: v2 refunds carry
    no type, so each one may be an A-to-z or chargeback refund and forbids the retry. One still
    `RefundInitiated` whose IPN was not answered yet is invisible (Get Charge's refundedAmount leaves it
    out): no check can see it, as no check can see an A-to-z refund made after its last look."""
    charge = simulator.pay_v2.charges.get(charge_id)
    if charge is None:
        return []
    refunds = simulator.pay_v2.refunds
    return [
        f"untyped {i}"
        for i in charge.refund_ids
        if refunds[i].idempotency_key is None
        and i in known_since
        and (task_number is None or task_number > known_since[i])
    ]


CHARGEBACK_IPN_NUMBERS = 100_000  # CHARGEBACK IPNs are numbered from here


@dataclass(frozen=True)
class AnsweredChargeback:
    """A v2 CHARGEBACK IPN this service answered 200: from then on the chargeback is recorded, so an
    invocation that starts afterwards must not send a retry on a charge under its permission (R1)."""

    chargeback_id: str
    tasks_spawned: int  # the scheduler's count when it was answered: later invocations are numbered above


class SimulatorAdapter(BaseAdapter):
    """requests → `Simulator.handle_mws` in process. A held answer (timeout faults) is a read timeout after
    the client's timeouts have passed on the virtual clock.

    Every call through it is this service's. It watches Amazon's procedure for ProcessingFailure retries:
    a Refund call that makes a retry attempt (n >= 2) at Amazon while Amazon's records show an A-to-z or
    chargeback refund on its capture is a violation (`retry_violations`, checked after every step). API v2
    calls (`/v2/` paths) go to `Simulator.handle_v2`; a Create Refund that makes a retry attempt while the
    charge has any refund made by others (v2 refunds carry no type), or after a CHARGEBACK IPN on the
    charge's permission was answered 200 (before the sending invocation started), is the same violation."""

    def __init__(self, simulator: Simulator, clock: VirtualClock) -> None:
        super().__init__()
        self.simulator = simulator
        self.clock = clock
        self.retry_violations: list[str] = []
        # charge permission → the CHARGEBACK IPNs on it answered 200 (World.deliver)
        self.answered_chargebacks: dict[str, list[AnsweredChargeback]] = {}
        # v2 refunds by others → the scheduler's count when the service could first know of them: when
        # Amazon made them `Refunded` (Get Charge's refundedAmount shows them), or when their IPN was
        # answered 200 while they were not Declined (World.deliver, World._on_v2_change)
        self.known_by_others: dict[str, int] = {}

    def _chargebacks_before(self, charge_id: str) -> list[str]:
        """The chargebacks on the charge's permission whose IPN was answered 200 before the invocation
        sending this request started (its survey then reads them: no window is left open)."""
        charge = self.simulator.pay_v2.charges.get(charge_id)
        task = Scheduler.current()
        if charge is None or task is None:
            return []
        answered = self.answered_chargebacks.get(charge.charge_permission_id, [])
        return [
            f"chargeback {c.chargeback_id} (IPN answered)" for c in answered if task.number > c.tasks_spawned
        ]

    def _made(self, seller_id: str, reference: str) -> bool:
        return any(
            r.seller_id == seller_id and r.refund_reference_id == reference
            for r in self.simulator.market.refunds.values()
        )

    def _watch_retry(self, params: Mapping[str, str]) -> Callable[[], None]:
        reference = params.get("RefundReferenceId", "")
        parsed = parse_refund_reference_id(reference)
        seller_id, capture_id = params.get("SellerId", ""), params.get("AmazonCaptureId", "")
        if parsed is None or parsed[1] < 2 or self._made(seller_id, reference):
            return lambda: None
        forbidding = retry_forbidding_refunds(self.simulator, capture_id)

        def after() -> None:
            if forbidding and self._made(seller_id, reference):
                self.retry_violations.append(
                    f"R1 retry {reference} sent while Amazon shows {', '.join(forbidding)} on {capture_id}"
                )

        return after

    def _v2_made(self, idempotency_key: str) -> bool:
        return any(r.idempotency_key == idempotency_key for r in self.simulator.pay_v2.refunds.values())

    def _watch_v2_retry(self, headers: Mapping[str, str], body: bytes) -> Callable[[], None]:
        key = headers.get("x-amz-pay-idempotency-key", "")
        parsed = parse_refund_reference_id(key)
        if parsed is None or parsed[1] < 2 or self._v2_made(key):
            return lambda: None
        try:
            charge_id = str(json.loads(body)["chargeId"])
        except (ValueError, KeyError, TypeError):
            return lambda: None
        task = Scheduler.current()
        forbidding = refunds_by_others_on_charge(
            self.simulator, charge_id, self.known_by_others, None if task is None else task.number
        ) + self._chargebacks_before(charge_id)

        def after() -> None:
            if forbidding and self._v2_made(key):
                self.retry_violations.append(
                    f"R1 v2 retry {key} sent while Amazon shows {', '.join(forbidding)} on {charge_id}"
                )

        return after

    def _send_v2(self, request: requests.PreparedRequest, body: bytes, timeout: Any) -> requests.Response:
        url = urlsplit(str(request.url))
        method = str(request.method)
        operation = (
            "GetCharge" if "/charges" in url.path else "CreateRefund" if method == "POST" else "GetRefund"
        )
        Scheduler.yield_point(f"amazon:{operation}")
        headers = {name.lower(): value for name, value in request.headers.items()}
        watched = self._watch_v2_retry(headers, body) if operation == "CreateRefund" else (lambda: None)
        answer = self.simulator.handle_v2(method, url.path, url.query, headers, body)
        watched()
        if answer.hold_seconds is not None:
            connect, read = timeout if isinstance(timeout, tuple) else (timeout or 1.0, 0.0)
            self.clock.advance(float(connect) + float(read))
            raise requests.ReadTimeout(f"simulated timeout of {operation}")
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body.encode("utf-8")
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", "x-amz-pay-request-id": answer.request_id}
        )
        response.url = str(request.url)
        response.request = request
        Scheduler.yield_point(f"amazon:{operation}:answered")
        return response

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        if "/v2/" in urlsplit(str(request.url)).path:
            return self._send_v2(request, body, timeout)
        action = dict(parse_qsl(body.decode())).get("Action", "?")
        Scheduler.yield_point(f"amazon:{action}")
        url = urlsplit(str(request.url))
        params = dict(parse_qsl(body.decode()))
        watched = self._watch_retry(params) if action == "Refund" else (lambda: None)
        answer = self.simulator.handle_mws(str(request.method), str(request.headers["Host"]), url.path, body)
        watched()
        if answer.hold_seconds is not None:
            connect, read = timeout if isinstance(timeout, tuple) else (timeout or 1.0, 0.0)
            self.clock.advance(float(connect) + float(read))
            raise requests.ReadTimeout(f"simulated timeout of {action}")
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body.encode("utf-8")
        response.headers = CaseInsensitiveDict({"Content-Type": "text/xml"})
        response.url = str(request.url)
        response.request = request
        Scheduler.yield_point(f"amazon:{action}:answered")
        return response

    def close(self) -> None:
        pass


@dataclass
class Ipn:
    """One IPN Amazon (through SNS) has to deliver; redelivered until answered 2xx."""

    number: int
    label: str
    body: str
    headers: dict[str, str]
    created_at: float
    attempts: int = 0


class FakeEventBridge:
    """PutEvents of the event publisher: every entry accepted and kept, in order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        answers = []
        for entry in Entries:
            self.entries.append(dict(entry))
            answers.append({"EventId": f"ev-{len(self.entries)}"})
        return {"FailedEntryCount": 0, "Entries": answers}


class FakeStepFunctions:
    """StartExecution (RetryStarter) and SendTaskSuccess/Failure (the IPN handler) on the interpreter."""

    def __init__(self, world: World) -> None:
        self.world = world

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        if name in self.world.executions:
            raise client_error("ExecutionAlreadyExists", "StartExecution")
        execution = Execution(
            name=name,
            definition=self.world.retry_definition,
            data=json.loads(input),
            invoke=self.world.invoke_retry_step,
            rng=self.world.rng,
            token_prefix=f"token-{name}",
        )
        self.world.executions[name] = execution
        self.world.trace(f"    retry workflow {name} started")
        return {"executionArn": f"{stateMachineArn}:{name}"}

    def _send(self, token: str, kind: str, payload: Any) -> None:
        for execution in self.world.executions.values():
            if execution.accept_callback(token, kind, payload):
                self.world.trace(f"    {execution.name} resumed: {kind}")
                return
        raise client_error("TaskTimedOut", "SendTask")

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        self._send(taskToken, "success", output)
        return {}

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> dict[str, Any]:
        self._send(taskToken, "failure", (error, cause))
        return {}


class VirtualDeadlines:
    """GetCaptureDetails and GetRefundDetails for the IPN use case, with a deadline on the virtual clock (it
    computes its own from time.monotonic, which a simulation must not read)."""

    def __init__(self, client: AmazonPayRouter, clock: VirtualClock) -> None:
        self._client = client
        self._clock = clock

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        del deadline
        return self._client.get_capture_details(
            amazon_capture_id, seller_id=seller_id, deadline=self._clock.monotonic() + 6.0
        )

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        del deadline
        return self._client.get_refund_details(
            amazon_refund_id, seller_id=seller_id, deadline=self._clock.monotonic() + 6.0
        )


class World:
    """Everything one seed runs against. Build inside `mock_aws()`."""

    def __init__(self, seed: int, trace: Callable[[str], None], *, settle_seconds: float) -> None:
        self.seed = seed
        self.trace = trace
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        self.scheduler = Scheduler()
        self.chaos = Chaos(self.rng, trace)
        # AWS (moto)
        self.raw_dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(self.raw_dynamodb, TABLE)
        self.dynamodb = FaultyDynamoDB(self.raw_dynamodb, self.chaos)
        self.store = RefundStore(TABLE, self.dynamodb)  # type: ignore[arg-type]
        self.inspect = RefundStore(TABLE, self.raw_dynamodb)  # the harness's own reads: no faults
        self.tokens = TaskTokenStore(TABLE, self.dynamodb)  # type: ignore[arg-type]
        self.streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT)
        self._stream_arn = self.raw_dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        shards = self.streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        self._shard_id = shards[0]["ShardId"]
        self._last_sequence_number: str | None = None
        self.eventbridge = FakeEventBridge()
        # Amazon Pay (the simulator, in process)
        self.simulator = Simulator(
            settle_seconds=settle_seconds,
            clock=self.clock.now,
            throttling=False,
            seed=seed,
            authority=local_authority(),
        )
        self.simulator.on_refund_change(self._on_refund_change)
        self.simulator.on_v2_change(self._on_v2_change)
        self.simulator.add_v2_key(V2_PUBLIC_KEY_ID, v2_key_pair()[1], SELLER)
        session = requests.Session()
        session.trust_env = False
        self.adapter = SimulatorAdapter(self.simulator, self.clock)
        session.mount(SIM_BASE, self.adapter)
        # Refunds others made at Amazon (Amazon itself, Seller Central, the seller's other systems), by
        # AmazonRefundId, and the reference ids the seller's other systems used: the world's truth of what
        # is not this service's, whatever its reference id looks like.
        self.foreign_refunds: set[str] = set()
        self.foreign_references: set[str] = set()
        self.credentials, v2_credentials = simulation_credentials()
        self.amazon = AmazonPayClient(
            self.credentials.for_seller,
            Endpoint("http", SIM_HOST, MWS_PATH),
            session=session,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
            now=self.clock.now,
            rng=random.Random(seed ^ 0x5EED),
        )
        self.pay_v2 = PayV2AmazonPay(
            PayV2Client(
                lambda seller_id: v2_credentials,
                PayV2Endpoint("http", SIM_HOST, "us", sandbox=True),
                session=session,
                sleep=self.clock.sleep,
                monotonic=self.clock.monotonic,
                now=self.clock.now,
                rng=random.Random(seed ^ 0xF2),
            ),
            sandbox=True,
        )
        self.router = AmazonPayRouter(lambda: self.amazon, lambda: self.pay_v2)
        # The services, through the composition root, over this world's adapters and clocks
        settings = Settings(
            refunds_table=TABLE,
            event_bus_name=BUS,
            amazon_pay_region="us",
            amazon_pay_sandbox=True,
            credentials_secret="simulation",
            seller_ids=frozenset({SELLER}),
            ipn_topic_arns=frozenset(),
            retry_delay_seconds=RETRY_DELAY_SECONDS,
            max_processing_failure_retries=MAX_PROCESSING_FAILURE_RETRIES,
            allow_over_refund=False,
        )
        self.stepfunctions = FakeStepFunctions(self)
        self.services = Services(
            settings,
            store=lambda: self.store,
            amazon_pay=lambda: self.router,
            seller_credentials=self.credentials.for_seller,
            v2_seller_credentials=lambda seller_id: v2_credentials,
            task_tokens=lambda: self.tokens,
            stepfunctions=lambda: self.stepfunctions,
            events=lambda: self.eventbridge,  # type: ignore[return-value, arg-type]
            now=self.clock.now,
            monotonic=self.clock.monotonic,
            fault_hook=lambda point, refund: self.chaos.hook(point, refund.refund_id),
        )
        self.requests = self.services.refund_requests()
        self.reconciler = self.services.reconciler()
        authority = local_authority()
        self.ipn_service = self.services.ipn_service(
            trust=LocalAuthorityTrust(authority.ca_certificate_pem, f"{SIM_BASE}/"),
            certificate_fetcher=lambda url: CertificateResponse(
                200, authority.signing_certificate_pem.encode("ascii")
            ),
            amazon_pay=lambda: VirtualDeadlines(self.router, self.clock),
            subscribe_url_fetcher=lambda url: None,
            on_attempt_outcome=self._resume_waiting_retry,
        )
        self.retry_definition: Mapping[str, Any] = json.loads(RETRY_ASL.read_text(encoding="utf-8"))
        self.retry_starter = self.services.retry_starter(RETRY_WORKFLOW_ARN)
        self.retry_steps = self.services.retry_steps()
        self.executions: dict[str, Execution] = {}
        self.outbox: list[Ipn] = []
        self._ipn_numbers = 0
        # v2 chargebacks (`Simulation.chargeback_chaos`): their own random stream and their IPNs' own outbox
        # (lost, duplicated, reordered alike), so adding them does not reshuffle every seed's other chaos.
        # IPN number → (charge permission, chargeback id), for R1 once the IPN is answered 200.
        self.chargeback_rng = random.Random(seed ^ 0xCB)
        self.chargeback_outbox: list[Ipn] = []
        self._chargeback_ipns: dict[int, tuple[str, str]] = {}
        # v2 refunds by others left `RefundInitiated` (`Simulation._charge_refund_by_others`): their own
        # random stream too. IPN number → the v2 refund it names (REFUND IPNs), for `known_by_others`.
        self.pending_by_others_rng = random.Random(seed ^ 0xE7)
        self._v2_refund_ipns: dict[int, str] = {}
        # v2 refunds by others whose IPN this service answered 200 while Amazon had them RefundInitiated
        # → their charge's ledger id: from then on the ledger must count them (invariant I7)
        self.told_while_pending: dict[str, str] = {}

    # -- IPNs: the simulator's refund changes, signed as SNS would --

    def _on_refund_change(self, change: RefundChange) -> None:
        refund = change.refund
        self._ipn_numbers += 1
        number = self._ipn_numbers
        timestamp = sim_responses.iso_millis(self.clock.now())
        region = IPN_REGIONS["us"]
        reference = f"sim-ipn-{self.seed}-{number}"
        message = amazon_pay_message(
            region=region,
            seller_id=refund.seller_id,
            notification_reference_id=reference,
            timestamp=timestamp,
            notification_data=sim_responses.refund_notification(refund),
        )
        notification = IpnNotification(
            message_id=f"sim-message-{self.seed}-{number}",
            notification_reference_id=reference,
            topic_arn=topic_arn(region, refund.seller_id),
            message=message,
            timestamp=timestamp,
            signature_version="1" if number % 2 else "2",
            seller_id=refund.seller_id,
            amazon_refund_id=refund.amazon_refund_id,
            refund_reference_id=refund.refund_reference_id,
            state=refund.state,
            reason_code=refund.reason_code,
        )
        body = sns_envelope(
            notification, authority=local_authority(), base_url=SIM_BASE, subscription_id=SUBSCRIPTION
        )
        reason = f"/{refund.reason_code}" if refund.reason_code else ""
        label = (
            f"ipn#{number} {refund.refund_reference_id} {refund.amazon_refund_id[-7:]} {refund.state}{reason}"
        )
        self.outbox.append(
            Ipn(number, label, body, sns_headers(notification, SUBSCRIPTION), self.clock.elapsed)
        )

    def _on_v2_change(self, change: V2Change) -> None:
        """An API v2 IPN: the message names the object and carries no state (the handler reads it)."""
        chargeback = change.object_type == "CHARGEBACK"
        if chargeback:  # numbered apart, so the other IPNs keep their numbers
            number = CHARGEBACK_IPN_NUMBERS + len(self._chargeback_ipns) + 1
            self._chargeback_ipns[number] = (change.charge_permission_id, change.object_id)
        else:
            self._ipn_numbers += 1
            number = self._ipn_numbers
        if change.object_type == "REFUND":
            self._v2_refund_ipns[number] = change.object_id
            self._note_known_by_others(change.object_id, refunded_only=True)
        timestamp = sim_responses.iso_millis(self.clock.now())
        region = IPN_REGIONS["us"]
        reference = f"sim-ipn-{self.seed}-{number}"
        notification = IpnNotification(
            message_id=f"sim-message-{self.seed}-{number}",
            notification_reference_id=reference,
            topic_arn=topic_arn(region, change.merchant_id),
            message=ipn_message(change, reference),
            timestamp=timestamp,
            signature_version="1" if number % 2 else "2",
            seller_id=change.merchant_id,
            amazon_refund_id=change.object_id,
            refund_reference_id="",
            state=change.state,
            reason_code=change.reason_code,
        )
        body = sns_envelope(
            notification, authority=local_authority(), base_url=SIM_BASE, subscription_id=SUBSCRIPTION
        )
        reason = f"/{change.reason_code}" if change.reason_code else ""
        label = f"ipn#{number} v2 {change.object_type} {change.object_id[-7:]} {change.state}{reason}"
        ipn = Ipn(number, label, body, sns_headers(notification, SUBSCRIPTION), self.clock.elapsed)
        (self.chargeback_outbox if chargeback else self.outbox).append(ipn)

    def deliver(self, ipn: Ipn) -> int:
        """POST /ipn as the handler does it: the use case's answer; an unexpected error is a 500."""
        try:
            status = IpnAnswer.of(self.ipn_service.handle(ipn.body, ipn.headers)).status
        except Exception:
            return 500
        refund_id = self._v2_refund_ipns.get(ipn.number)
        if refund_id is not None and status == 200:
            self._note_known_by_others(refund_id, refunded_only=False)
            refund = self.simulator.pay_v2.refunds[refund_id]
            if refund.idempotency_key is None and refund.state == "RefundInitiated":
                self.told_while_pending[refund_id] = qualified_id(PaymentApi.V2, refund.charge_id)
        chargeback = self._chargeback_ipns.get(ipn.number)
        if chargeback is not None and status == 200:
            permission, chargeback_id = chargeback
            answered = AnsweredChargeback(chargeback_id, self.scheduler.spawned)
            self.adapter.answered_chargebacks.setdefault(permission, []).append(answered)
        return status

    def _note_known_by_others(self, refund_id: str, *, refunded_only: bool) -> None:
        """A v2 refund by others became knowable to the service (see `SimulatorAdapter.known_by_others`):
        `Refunded` at Amazon, or (`refunded_only` False: its IPN was answered 200) not Declined."""
        refund = self.simulator.pay_v2.refunds.get(refund_id)
        if refund is None or refund.idempotency_key is not None or refund_id in self.adapter.known_by_others:
            return
        if refund.state == "Refunded" or (not refunded_only and refund.state != "Declined"):
            self.adapter.known_by_others[refund_id] = self.scheduler.spawned

    def invisible_by_others(self, charge_id: str) -> list[str]:
        """Refunds by others on the v2 charge still `RefundInitiated` that the service cannot know of yet
        (no IPN of theirs answered 200): a ledger opened or a reservation taken now cannot count them."""
        charge = self.simulator.pay_v2.charges.get(charge_id)
        if charge is None:
            return []
        refunds = self.simulator.pay_v2.refunds
        return [
            i
            for i in charge.refund_ids
            if refunds[i].idempotency_key is None
            and refunds[i].state == "RefundInitiated"
            and i not in self.adapter.known_by_others
        ]

    # -- the RetryWorkflow --

    def _resume_waiting_retry(self, transition: Transition, outcome: AttemptOutcome) -> None:
        """notifications.resume_waiting_retry, wired to this world instead of `runtime`."""
        del outcome
        if not settled_retry_attempts(transition):
            return
        # Failures are logged by the service in production; the waiting workflow polls instead.
        with contextlib.suppress(StoreError, ClientError, BotoCoreError):
            resume_retry_executions(transition, self.tokens, self.stepfunctions)

    def invoke_retry_step(self, payload: dict[str, Any]) -> Any:
        """The RetrySteps Lambda (functions/retry_steps/app.py's dispatch), deadlines on the virtual clock."""
        steps = self.retry_steps
        refund_id = str(payload["refund_id"])
        deadline = self.clock.monotonic() + 20.0
        step = str(payload.get("step"))
        try:
            if step == "check_eligibility":
                return steps.check_eligibility(refund_id, int(payload["declined_attempt"]), deadline=deadline)
            if step == "start_attempt":
                return steps.start_attempt(refund_id, int(payload["attempt"]), deadline=deadline)
            if step == "await_outcome":
                return steps.await_outcome(refund_id, int(payload["attempt"]), str(payload["task_token"]))
            if step == "poll_outcome":
                return steps.poll_outcome(
                    refund_id, int(payload["attempt"]), int(payload.get("polls", 0)), deadline=deadline
                )
            if step == "require_manual_action":
                return steps.require_manual_action(
                    refund_id, str(payload["reason"]), str(payload.get("cause") or "retry:workflow")
                )
        except Crash as crash:
            raise StatesError("Lambda.Unknown", f"process died: {crash}") from None
        except Exception as error:
            raise StatesError(type(error).__name__, str(error)) from None
        raise StatesError("UnknownStep", step)

    # -- the stream → EventPublisher → EventBridge → RetryStarter --

    def pump_stream(self) -> int:
        """Publish every new stream record's events; hand `Refund Declined` ones to the RetryStarter."""
        # A fresh iterator each time: moto replaces a table (and its stream shard) by a copy when it rolls
        # back a cancelled transaction, so a long-lived iterator would read a stale shard.
        if self._last_sequence_number is None:
            position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            position = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": self._last_sequence_number,
            }
        iterator: str | None = self.streams.get_shard_iterator(
            StreamArn=self._stream_arn, ShardId=self._shard_id, **position
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator is not None:
            answer = self.streams.get_records(ShardIterator=iterator)
            iterator = answer.get("NextShardIterator")
            page = answer.get("Records", [])
            if not page:
                break
            records.extend(page)
        if records:
            self._last_sequence_number = str(records[-1]["dynamodb"]["SequenceNumber"])
        if not records:
            return 0
        before = len(self.eventbridge.entries)
        result = self.services.publish_stream_records(records)
        assert not result.failed, "the fake EventBridge accepts everything"
        for entry in self.eventbridge.entries[before:]:
            if entry["DetailType"] == "Refund Declined":
                self.retry_starter.start(json.loads(entry["Detail"]))
        return len(self.eventbridge.entries) - before

    # -- reads for the harness and the invariants (no faults, no yields) --

    def captured_amounts(self) -> dict[str, Decimal]:
        amounts = {cid: c.amount for cid, c in self.simulator.market.captures.items()}
        for charge_id, charge in self.simulator.pay_v2.charges.items():
            amounts[qualified_id(PaymentApi.V2, charge_id)] = charge.amount
        return amounts
