"""EmbeddedStack: the whole service on one machine, in process — no AWS account, no Docker (CONTRACT §9).

    with EmbeddedStack(port=0, sim_port=0) as stack:
        capture_id = stack.simulator.create_capture("100.00", "USD")
        requests.post(f"{stack.api_url}/refunds", headers={"x-api-key": stack.api_key}, json={...})
        stack.drain()
        stack.events(refund_id="ord-1001-r1")

- moto on 127.0.0.1 (ephemeral port; aws_server.py: one request at a time, Lambda `Invoke` of the stack's
  functions answered by their real handlers): the handlers reach DynamoDB, EventBridge, SQS, Secrets
  Manager and Step Functions over the AWS wire protocol, through AWS_ENDPOINT_URL, as boto3 honours it;
  moto's Step Functions engine executes state machines and reaches Lambda there too (MOTO_PORT);
- the table (store/schema.py, checked against the template by the tests), the event bus (the template's
  name pattern), the credentials secret (the simulator's seller, in the format of mws/credentials.py), and an
  "observer" rule on the bus delivering every event to an SQS queue, which `events()` reads;
- the Amazon Pay simulator (its MWS URL is REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT), posting its signed IPNs to
  the gateway's `/ipn`, which trusts the simulator's local CA (REFUNDS_LOCAL_SNS_CA_PEM,
  REFUNDS_LOCAL_SNS_CERT_URL_PREFIX) and accepts its seller (SELLER_IDS);
- the API Gateway emulation (gateway.py) and the stream pump feeding the EventPublisher (streams.py);
- IAM as deployed (iam.py; `iam=False` turns it off): the roles SAM generates from the template, created
  in moto, each function calling AWS with its own role's STS credentials, every call allowed or refused
  (AccessDeniedException) by that role's policies; `iam_refusals()` and `iam_usage()` tell what happened.

The environment the handlers read is resolved from the template's Globals (literals as written, parameters
at their defaults unless overridden here, resources to the local ones) and set on the process; `stop()`
restores it. Because the environment, boto3's default session and moto's state are process-wide, only one
EmbeddedStack may run in a process at a time: a second `start()` raises StackAlreadyRunning. Stacks one after
another are independent: moto is reset at start and stop, handlers are cold-started per stack, and the
library's per-container caches (amazon_pay_refunds.runtime) are reset at start and stop.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import botocore.session
import requests
from botocore.credentials import CredentialResolver

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.dynamodb.schema import create_table
from amazon_pay_sim import Simulator
from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_SELLER_ID

from .aws_server import DYNAMODB_WRITE, EVENTS_PUT, AwsServer
from .environments import DEFAULT_MAX_ENVIRONMENTS, start_zygote
from .gateway import API_ID, Gateway
from .iam import (
    ACCOUNT_ID,
    CURRENT_PRINCIPAL,
    PARTITION,
    STEP_FUNCTIONS_ENGINE_ACCESS_KEY,
    Call,
    FunctionCredentialProvider,
    IamGate,
    Principal,
    describe_usage,
    resolve_intrinsics,
    role_specs,
)
from .iam import (
    SESSION as IAM_SESSION,
)
from .lambdas import Handler, LambdaFunction
from .pay_v2_setup import with_v2_key
from .rules import RulePump, rule_specs
from .sigv4 import Authorizer, local_callers
from .state_machines import create_state_machines, function_variables, local_references, resolve
from .streams import DeadLetter, StreamPump
from .template import (
    REPO,
    TEMPLATE_PATH,
    api_spec,
    function_environment,
    function_specs,
    load_template,
    parameter_default,
    parameter_values,
    resources,
    stream_mapping,
    substitute,
)
from .translation import translate

logger = logging.getLogger("refunds_local.stack")

DEFAULT_PORT = 3000
DEFAULT_SIM_PORT = 8701
DEFAULT_API_KEY = "local-dev-key"
DEFAULT_STACK_NAME = "refunds-local"
REGION = "us-east-1"
OBSERVER = "refunds-local-observer"
# CloudFormation's stack ids end in a UUID; the template names the credentials secret after its last part.
LOCAL_STACK_UUID = "00000000-0000-4000-8000-00000000000a"


def local_stack_id(stack_name: str, region: str) -> str:
    """What `AWS::StackId` would be for the local stack (the template derives names from it)."""
    return f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/{LOCAL_STACK_UUID}"


# Parameters the local stack sets differently from the template's defaults.
LOCAL_PARAMETERS = {"LogLevel": "INFO"}
# Variables that would send boto3 elsewhere, or to a real account, if left in place.
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_EXECUTION_ENV",
)

_ACTIVE_LOCK = threading.Lock()
_ACTIVE: list[EmbeddedStack] = []


_HARNESS_LOCK = threading.Lock()


@functools.cache
def _harness_session() -> boto3.Session:
    """The stack's own clients' session, kept across stacks: its loaded service models are reused."""
    return boto3.Session()


class StackAlreadyRunning(RuntimeError):
    """Another EmbeddedStack runs in this process (they share the process environment)."""


class EmbeddedStack:
    """The local stack; a context manager (`start()` on enter, `stop()` on exit)."""

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        sim_port: int = DEFAULT_SIM_PORT,
        api_key: str = DEFAULT_API_KEY,
        throttling: bool = True,
        settle_seconds: float | None = None,
        retry_delay_seconds: int = 2,
        stack_name: str = DEFAULT_STACK_NAME,
        parameters: Mapping[str, str] | None = None,
        handler_overrides: Mapping[str, Handler | str] | None = None,
        pump: bool = True,
        pump_interval: float = 0.1,
        template_path: Path | str = TEMPLATE_PATH,
        seller_id: str = DEFAULT_SELLER_ID,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        extra_environment: Mapping[str, str] | None = None,
        ipn: bool = True,
        iam: bool = True,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        warm: bool = True,
    ) -> None:
        """`ipn=False`: the simulator posts no IPNs (refunds then stay Pending unless something polls).
        `iam=False`: every call is allowed (no roles); else each function calls AWS with its own role.
        `max_environments`: how many execution environments a function may run at once where the template
        reserves no concurrency (1: one invocation at a time per function). `warm`: start one environment
        of each function with the stack, before the first request."""
        self.template_path = Path(template_path)
        self.template = load_template(template_path)
        self.api_key = api_key
        self.stack_name = stack_name
        self.region = REGION
        self.seller_id = seller_id
        self._access_key, self._secret_key = access_key, secret_key
        self._port, self._sim_port = port, sim_port
        self._run_pump, self._pump_interval = pump, pump_interval
        self._ipn = ipn
        self._extra_environment = dict(extra_environment or {})
        self.parameters = {
            **LOCAL_PARAMETERS,
            "RetryDelaySeconds": str(retry_delay_seconds),
            "SellerIds": seller_id,
            **(parameters or {}),
        }
        simulator_options: dict[str, Any] = (
            {} if settle_seconds is None else {"settle_seconds": settle_seconds}
        )
        self.simulator = Simulator(
            seller_id=seller_id,
            access_key=access_key,
            secret_key=secret_key,
            throttling=throttling,
            **simulator_options,
        )
        self.max_environments = max_environments
        self._warm = warm
        self.functions = {
            logical_id: LambdaFunction(
                spec, stack_name=stack_name, region=self.region, max_environments=max_environments
            )
            for logical_id, spec in function_specs(self.template, self.parameters).items()
        }
        for logical_id, handler in (handler_overrides or {}).items():
            self.function(logical_id).override(handler)
        api = api_spec(self.template, self.parameters)
        # IAM authorization (StorefrontAuthorization AWS_IAM, and resolve): the local storefront and
        # operator users, new keys per stack (sigv4.py); clients.storefront_of/operator_of sign with them.
        self.callers = local_callers(self.template, region=self.region, api_id=API_ID, stack_name=stack_name)
        authorizer = Authorizer(
            list(self.callers.values()), region=self.region, api_id=API_ID, stage=api.stage
        )
        self.gateway = Gateway(api, self.functions, api_key=api_key, port=port, authorizer=authorizer)
        self.stream_mapping = stream_mapping(self.template)
        self.table_name = f"{stack_name}-RefundsTable"
        self.bus_name = substitute(
            resources(self.template, "AWS::Events::EventBus")["RefundsBus"]["Properties"]["Name"],
            {"AWS::StackName": stack_name, "AWS::Region": self.region},
        )
        self.secret_name = substitute(
            resources(self.template, "AWS::SecretsManager::Secret")["CredentialsSecret"]["Properties"][
                "Name"
            ],
            {"AWS::StackName": stack_name, "AWS::StackId": local_stack_id(stack_name, self.region)},
        )
        self.secret_arn = ""
        self.stream_arn = ""
        self.environment: dict[str, str] = {}
        self.pump: StreamPump | None = None
        self.rules: RulePump | None = None
        self.state_machines: dict[str, str] = {}
        self.iam: IamGate | None = IamGate() if iam else None
        self._names: dict[str, str] = {}
        self._aws: AwsServer | None = None
        self._saved_moto_config: dict[str, Any] | None = None
        self._sim_handle: Any = None
        self._saved_environment: dict[str, str | None] = {}
        self._saved_session: boto3.Session | None = None
        self._saved_container = runtime.container
        self._environment_set = False
        self._saved_werkzeug_level: int | None = None
        self._observer_queue_url = ""
        self._events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self._started = False

    # -- lifecycle --

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> EmbeddedStack:
        with _ACTIVE_LOCK:
            if _ACTIVE:
                raise StackAlreadyRunning(
                    "a EmbeddedStack already runs in this process; stacks share the process environment, "
                    "so run them one after another (stop the other first)"
                )
            _ACTIVE.append(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._started = True
        start_zygote()  # the execution environments' libraries load while the rest starts
        werkzeug = logging.getLogger("werkzeug")
        self._saved_werkzeug_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)  # moto's server would log every AWS call
        self._sim_handle = self.simulator.serve(host="127.0.0.1", port=self._sim_port)
        self._aws = AwsServer(self.functions)
        self._aws.add_listener(self._changed)
        self._aws.start()
        self._reset_moto()
        self._enable_state_machine_execution()
        self._set_environment()
        self._create_resources()
        self._create_workflows()
        self._create_roles()
        self.pump = StreamPump(
            self._stream_client(),
            self.stream_arn,
            self.function(self.stream_mapping.function),
            self.stream_mapping,
            region=self.region,
            interval=self._pump_interval,
        )
        if self._run_pump:
            self.pump.start()
            if self.rules is not None:
                self.rules.start()
        if self._warm:
            self._warm_environments()
        self.gateway.start()
        if self._ipn:
            self.simulator.set_ipn_url(f"{self.api_url}/ipn")
        logger.info("local stack up: API %s, simulator %s, AWS %s", self.api_url, self.sim_url, self.aws_url)

    def stop(self) -> None:
        """Stop everything that started (in reverse), restore the environment; safe to call twice."""
        try:
            if self._started:
                if self.iam is not None:
                    IAM_SESSION.add(self.iam)
                self.simulator.set_ipn_url(None)
                self.gateway.stop()
                if self.pump is not None:
                    self.pump.stop()
                if self.rules is not None:
                    self.rules.stop()
                    self.rules = None
                for function in self.functions.values():
                    function.stop()
                if self._sim_handle is not None:
                    self._sim_handle.shutdown()
                    self._sim_handle = None
                if self._aws is not None:
                    try:
                        self._restore_moto_config()
                        self._reset_moto()
                    finally:
                        self._aws.stop()
                        self._aws = None
                self._restore_environment()
                if self._saved_werkzeug_level is not None:
                    logging.getLogger("werkzeug").setLevel(self._saved_werkzeug_level)
                    self._saved_werkzeug_level = None
                self._started = False
        finally:
            with _ACTIVE_LOCK:
                if self in _ACTIVE:
                    _ACTIVE.remove(self)

    def _changed(self, change: str) -> None:
        """moto applied a write (aws_server.py): the pump that may have something new looks now."""
        if change == DYNAMODB_WRITE and self.pump is not None:
            self.pump.wake()
        elif change == EVENTS_PUT and self.rules is not None:
            self.rules.wake()

    def _warm_environments(self) -> None:
        """One environment of each function started at once, in parallel (their cold starts overlap)."""
        failures: list[str] = []

        def warm(function: LambdaFunction) -> None:
            try:
                function.warm()
            except Exception as error:  # the first invocation reports it again, as Lambda would
                failures.append(f"{function.spec.logical_id}: {error}")

        threads = [
            threading.Thread(target=warm, args=(function,), name=f"warm-{logical_id}", daemon=True)
            for logical_id, function in self.functions.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for failure in failures:
            logger.warning("could not start an environment ahead: %s", failure)

    # -- where things are --

    @property
    def api_url(self) -> str:
        return self.gateway.url

    @property
    def sim_url(self) -> str:
        return str(self._handle().url)

    @property
    def mws_url(self) -> str:
        return str(self._handle().mws_url)

    @property
    def aws_url(self) -> str:
        if self._aws is None:
            raise RuntimeError("the local stack is not running")
        return self._aws.url

    def _aws_port(self) -> int:
        if self._aws is None:
            raise RuntimeError("the local stack is not running")
        return self._aws.port

    def _handle(self) -> Any:
        if self._sim_handle is None:
            raise RuntimeError("the local stack is not running")
        return self._sim_handle

    def function(self, logical_id: str) -> LambdaFunction:
        try:
            return self.functions[logical_id]
        except KeyError:
            raise KeyError(f"the template has no function {logical_id}") from None

    def _stream_client(self) -> Any:
        """Lambda's event source mapping reads the stream with its function's execution role."""
        function = self.function(self.stream_mapping.function)
        if function.principal is None:
            return self.client("dynamodbstreams")
        with _HARNESS_LOCK:
            return _harness_session().client(
                "dynamodbstreams",
                endpoint_url=self.aws_url,
                region_name=self.region,
                aws_access_key_id=function.principal.access_key_id,
                aws_secret_access_key=function.principal.secret_access_key,
                aws_session_token=function.principal.session_token,
            )

    def client(self, service: str) -> Any:
        """A boto3 client for `service` on this stack's moto server (explicit endpoint and credentials)."""
        with _HARNESS_LOCK:  # a session is not thread-safe while it creates clients (they are)
            return _harness_session().client(  # type: ignore[call-overload]
                service,
                endpoint_url=self.aws_url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
            )

    # -- events and the stream --

    def drain(self, timeout: float = 30.0) -> int:
        """Pump the table's stream into the EventPublisher, and the bus rules' events into their targets,
        until neither has anything new (a rule's target may write again); records and events handled."""
        if self.pump is None:
            raise RuntimeError("the local stack is not running")
        handled = 0
        deadline = time.monotonic() + timeout
        while True:
            moved = self.pump.drain(max(deadline - time.monotonic(), 0.1))
            if self.rules is not None:
                moved += self.rules.drain(max(deadline - time.monotonic(), 0.1))
            handled += moved
            if moved == 0 or time.monotonic() >= deadline:
                return handled

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [] if self.pump is None else list(self.pump.dead_letters)

    def events(self, refund_id: str | None = None, *, drain: bool = True) -> list[dict[str, Any]]:
        """Every event published on the bus so far (EventBridge's envelope, detail parsed), oldest first;
        only those whose detail names `refund_id` when given. Drains the stream first unless told not to."""
        if drain:
            self.drain()
        sqs = self.client("sqs")
        with self._events_lock:
            while True:
                answer = sqs.receive_message(
                    QueueUrl=self._observer_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                )
                messages = answer.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    self._events.append(json.loads(message["Body"]))
                    sqs.delete_message(
                        QueueUrl=self._observer_queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
            return [
                event
                for event in self._events
                if refund_id is None or (event.get("detail") or {}).get("refund_id") == refund_id
            ]

    # -- setup --

    def _reset_moto(self) -> None:
        requests.post(f"{self.aws_url}/moto-api/reset", timeout=10).raise_for_status()

    def _enable_state_machine_execution(self) -> None:
        """moto's Step Functions engine runs executions (ASL) instead of only recording them. moto's
        configuration is process-wide: what it was is restored at stop."""
        from moto.core.config import default_user_config

        self._saved_moto_config = dict(default_user_config.get("stepfunctions") or {})
        self._post_moto_config({"stepfunctions": {"execute_state_machine": True}})

    def _restore_moto_config(self) -> None:
        if self._saved_moto_config is not None:
            self._post_moto_config({"stepfunctions": self._saved_moto_config})
            self._saved_moto_config = None

    def _post_moto_config(self, config: dict[str, Any]) -> None:
        requests.post(f"{self.aws_url}/moto-api/config", json=config, timeout=10).raise_for_status()

    def _set_environment(self) -> None:
        local_refs = {
            "RefundsTable": self.table_name,
            "RefundsBus": self.bus_name,
            "CredentialsSecret": "",  # filled in once the secret exists (Ref of a secret is its ARN)
        }
        environment = {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            "REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT": self.mws_url,
            "REFUNDS_LOCAL_AMAZON_PAY_V2_ENDPOINT": self.sim_url,
            # moto's Step Functions engine calls Lambda (and other services) at http://localhost:$MOTO_PORT.
            "MOTO_PORT": str(self._aws_port()),
            # The IPN handler verifies the simulator's IPNs against its local CA (never in AWS Lambda).
            "REFUNDS_LOCAL_SNS_CA_PEM": self.simulator.ca_certificate_pem,
            "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX": self.simulator.certificate_url_prefix,
        }
        names = {**self._parameter_values(), **local_refs}
        for name, value in function_environment(self.template).items():
            if value == {"Ref": "CredentialsSecret"}:
                continue
            environment[name] = substitute(value, names)
        environment.update(self._extra_environment)
        cleared = [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")] + list(_CLEARED)
        touched = set(environment) | set(cleared) | {"AMAZON_PAY_CREDENTIALS_SECRET"}
        self._saved_environment = {name: os.environ.get(name) for name in touched}
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(environment)
        # boto3's default session caches credentials and settings from the environment it first saw.
        self._saved_session = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = None
        self._saved_container = runtime.container
        if self.iam is not None:
            # The library's per-container caches (the credentials secret) are kept per function.
            runtime.container = CURRENT_PRINCIPAL.get
            # Every client of the default session signs each call as the function running in its thread.
            core = botocore.session.get_session()
            core.register_component("credential_provider", CredentialResolver([FunctionCredentialProvider()]))
            boto3.DEFAULT_SESSION = boto3.Session(botocore_session=core)
        runtime.reset()  # the library's cached settings and clients were built for another environment
        self._environment_set = True
        self.environment = environment

    def _parameter_values(self) -> dict[str, str]:
        values = {}
        for name in self.template.get("Parameters") or {}:
            default = parameter_default(self.template, name)
            if default is not None:
                values[name] = default
        values.update(self.parameters)
        values.update({"AWS::StackName": self.stack_name, "AWS::Region": self.region})
        return values

    def _restore_environment(self) -> None:
        if not self._environment_set:
            return
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
        boto3.DEFAULT_SESSION = self._saved_session
        self._saved_session = None
        runtime.container = self._saved_container
        self._environment_set = False
        runtime.reset()  # nothing built for this stack outlives it

    def _create_resources(self) -> None:
        dynamodb = self.client("dynamodb")
        create_table(dynamodb, self.table_name)
        self.stream_arn = dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]

        events = self.client("events")
        events.create_event_bus(Name=self.bus_name)
        sqs = self.client("sqs")
        self._observer_queue_url = sqs.create_queue(QueueName=f"{self.stack_name}-observer")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._observer_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name=OBSERVER,
            EventBusName=self.bus_name,
            EventPattern=json.dumps({"source": [{"prefix": ""}]}),
            Description="refunds-local: every event on the bus, for EmbeddedStack.events()",
        )
        events.put_targets(
            Rule=OBSERVER, EventBusName=self.bus_name, Targets=[{"Id": "observer", "Arn": queue_arn}]
        )

        secret = {
            "default_seller_id": self.seller_id,
            "sellers": {self.seller_id: {"access_key": self._access_key, "secret_key": self._secret_key}},
        }
        secret = with_v2_key(self.simulator, secret, self.seller_id)
        self.secret_arn = self.client("secretsmanager").create_secret(
            Name=self.secret_name, SecretString=json.dumps(secret)
        )["ARN"]
        if self.iam is not None:
            self.iam.resolver.secrets[self.secret_name] = self.secret_arn
        os.environ["AMAZON_PAY_CREDENTIALS_SECRET"] = self.secret_arn
        self.environment["AMAZON_PAY_CREDENTIALS_SECRET"] = self.secret_arn

    def _create_workflows(self) -> None:
        """The template's state machines in moto, the functions' own variables (e.g. a state machine's
        ARN), and its EventBridge rules delivered to their functions (state_machines.py, rules.py)."""
        names = {
            **self._parameter_values(),
            "RefundsTable": self.table_name,
            "RefundsBus": self.bus_name,
            "CredentialsSecret": self.secret_arn,
            **local_references(self.template, self.functions, stack_name=self.stack_name, region=self.region),
        }
        self._names = dict(names)
        self.state_machines = create_state_machines(
            self.client("stepfunctions"), self.template, names, stack_name=self.stack_name
        )
        for name, value in function_variables(self.template).items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = self.environment[name] = resolve(value, names)
        self.rules = RulePump(
            self.client("events"),
            self.client("sqs"),
            rule_specs(self.template),
            self.functions,
            names,
            self.stack_name,
            interval=self._pump_interval,
        )
        self.rules.create()

    # -- IAM --

    def _local_names(self) -> dict[str, str]:
        """What the translated template's Ref/GetAtt/Sub mean locally, for the roles' policies."""
        arn = f"arn:{PARTITION}:{{}}:{self.region}:{ACCOUNT_ID}:{{}}"
        names = {
            **self._names,
            "AWS::Partition": PARTITION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::URLSuffix": "amazonaws.com",
            "RefundsTable.Arn": arn.format("dynamodb", f"table/{self.table_name}"),
            "RefundsTable.StreamArn": self.stream_arn,
            "RefundsBus.Arn": arn.format("events", f"event-bus/{self.bus_name}"),
            "DataKey.Arn": arn.format("kms", "key/00000000-0000-4000-8000-0000000000da"),
        }
        for logical_id in resources(self.template, "AWS::SQS::Queue"):
            queue = f"{self.stack_name}-{logical_id}"
            names[logical_id] = f"{self.aws_url}/{ACCOUNT_ID}/{queue}"
            names[f"{logical_id}.Arn"] = arn.format("sqs", queue)
            names[f"{logical_id}.QueueName"] = queue
        return names

    def _create_roles(self) -> None:
        """The roles SAM generates, in moto's IAM; each function's and state machine's credentials from STS
        AssumeRole; the gate in front of moto then decides every call by its signer's role (iam.py)."""
        if self.iam is None or self._aws is None:
            return
        translated = translate(self.template_path, base=REPO)
        names = self._local_names()
        iam, sts = self.client("iam"), self.client("sts")
        for principal_id, spec in role_specs(translated, self.parameters).items():
            role_name = f"{self.stack_name}-{spec.logical_id}"[:64]
            role_arn = iam.create_role(
                RoleName=role_name, AssumeRolePolicyDocument=json.dumps(spec.assume_role_policy)
            )["Role"]["Arn"]
            policies = {name: resolve_intrinsics(doc, names) for name, doc in spec.policies.items()}
            for name, document in policies.items():
                # SAM's policy templates omit Version (IAM then reads 2008-10-17), which moto refuses;
                # the two differ only in policy variables, which no policy here uses.
                versioned = {"Version": "2012-10-17", **document}
                iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(versioned))
            function = self.functions.get(principal_id)
            session_name = function.name if function is not None else f"{self.stack_name}-{principal_id}"
            assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
            principal = Principal(
                name=principal_id,
                role_name=role_name,
                role_arn=role_arn,
                session_name=session_name[:64],
                access_key_id=assumed["AccessKeyId"],
                secret_access_key=assumed["SecretAccessKey"],
                session_token=assumed["SessionToken"],
                state_machine_arn=self.state_machines.get(principal_id, ""),
            )
            # The managed policies SAM attaches (CloudWatch Logs, X-Ray: what Lambda and Step Functions
            # do themselves, never the code) are not created; the code's calls need the template's own.
            self.iam.add(principal, policies, spec.policies)
            if function is not None:
                function.principal = principal
            elif principal_id in self.state_machines:
                self.iam.act_for(STEP_FUNCTIONS_ENGINE_ACCESS_KEY, principal)
        self._aws.gate = self.iam

    def iam_refusals(self) -> list[Call]:
        """The calls refused so far, forgotten afterwards; empty when IAM is not enforced."""
        return [] if self.iam is None else self.iam.take_refusals()

    def assert_no_iam_refusals(self) -> None:
        """Fails naming each refused call: the function, the action and the resource."""
        refused = self.iam_refusals()
        if refused:
            raise AssertionError(
                "calls refused by IAM (the function's role in template.yaml lacks them):\n"
                + "\n".join(f"  AccessDenied: {call.describe()}" for call in refused)
            )

    @property
    def storefront_authorization(self) -> str:
        """The template's StorefrontAuthorization this stack runs with: AWS_IAM or API_KEY."""
        return parameter_values(self.template, self.parameters)["StorefrontAuthorization"]

    def iam_banner(self) -> str:
        """One line saying whether IAM is enforced, and by which roles."""
        if self.iam is None:
            return "IAM: not enforced (iam=False): every AWS call is allowed"
        names = sorted(principal.name for principal in self.iam.principals)
        return (
            f"IAM enforced: each function calls AWS with its own role, as SAM generates them from "
            f"template.yaml ({len(names)}: {', '.join(names)}); a call its role does not allow is refused "
            "(AccessDeniedException)"
        )

    def iam_usage(self) -> str:
        return "" if self.iam is None else describe_usage(self.iam.calls)
