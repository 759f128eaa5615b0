"""The template's EventBridge rules delivered to their functions: moto's EventBridge does not invoke Lambda.

Each function event of type `EventBridgeRule` (SAM) becomes, on the local bus, the same rule (its Pattern,
unchanged, so moto's own pattern matching decides) with an SQS queue as target; `RulePump` reads the
queues and invokes the function in process with the EventBridge event, as Lambda's asynchronous
invocation would. A failed invocation is retried (the message becomes visible again) up to
`max_attempts` times in all (Lambda's async default: 1 + 2 retries), then kept in `dead_letters`.
The pump does not poll while nothing happens: the stack wakes it (`wake()`) after each PutEvents
(aws_server.py); while a failed event waits for its retry it looks every `interval`, otherwise once every
`idle_interval`. Each event runs in one of its function's execution environments.
Not emulated: input transformers, the rule's RetryPolicy and DeadLetterConfig (delivery to the queue
does not fail locally).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .lambdas import LambdaFunction
from .template import Template, resources, substitute

logger = logging.getLogger("refunds_local.rules")

VISIBILITY_TIMEOUT_SECONDS = 1
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class RuleSpec:
    """One `EventBridgeRule` event of a function: its pattern, on which bus (None: the default bus)."""

    function: str
    event: str
    pattern: Mapping[str, Any]
    bus: Any = None

    @property
    def name(self) -> str:
        return f"{self.function}{self.event}"[:64]


def rule_specs(template: Template) -> list[RuleSpec]:
    specs = []
    for logical_id, resource in resources(template, "AWS::Serverless::Function").items():
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if not isinstance(event, dict) or event.get("Type") != "EventBridgeRule":
                continue
            properties = event.get("Properties") or {}
            specs.append(
                RuleSpec(logical_id, event_name, properties["Pattern"], properties.get("EventBusName"))
            )
    return specs


@dataclass
class DeadLetter:
    rule: str
    event: dict[str, Any]
    error: str


@dataclass
class _Route:
    spec: RuleSpec
    function: LambdaFunction
    queue_url: str


@dataclass
class RulePump:
    """Creates the rules and their queues (`create()`), then delivers (`start()` a thread, or `drain()`)."""

    events_client: Any
    sqs_client: Any
    specs: list[RuleSpec]
    functions: Mapping[str, LambdaFunction]
    names: Mapping[str, str]
    stack_name: str
    interval: float = 0.1
    idle_interval: float = 10.0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    dead_letters: list[DeadLetter] = field(default_factory=list)
    delivered: int = 0
    _routes: list[_Route] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _retrying: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self) -> None:
        for spec in self.specs:
            bus = substitute(spec.bus, self.names) if spec.bus is not None else "default"
            queue_url = self.sqs_client.create_queue(
                QueueName=f"{self.stack_name}-rule-{spec.name}"[:80],
                Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS)},
            )["QueueUrl"]
            queue_arn = self.sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            self.events_client.put_rule(
                Name=spec.name,
                EventBusName=bus,
                EventPattern=json.dumps(spec.pattern),
                Description=f"refunds-local: {spec.function}.{spec.event} from template.yaml",
            )
            self.events_client.put_targets(
                Rule=spec.name, EventBusName=bus, Targets=[{"Id": "function", "Arn": queue_arn}]
            )
            self._routes.append(_Route(spec, self.functions[spec.function], queue_url))

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="refunds-local-rules", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """An event was put on a bus: look at the rules' queues now."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # a wake from here on is kept for the wait below
            self._retrying = False
            try:
                self.deliver()
            except Exception:  # the pump must outlive a failing moto call; logged and retried
                self._retrying = True
                logger.exception("rule delivery failed")
            self._wake.wait(self.interval if self._retrying else self.idle_interval)

    def deliver(self) -> int:
        """One pass over every rule's queue; how many events were handed to functions."""
        handled = 0
        with self._lock:
            for route in self._routes:
                answer = self.sqs_client.receive_message(
                    QueueUrl=route.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=0,
                    AttributeNames=["ApproximateReceiveCount"],
                )
                for message in answer.get("Messages", []):
                    handled += 1
                    self._deliver(route, message)
        return handled

    def _deliver(self, route: _Route, message: Mapping[str, Any]) -> None:
        event = json.loads(message["Body"])
        receipt = message["ReceiptHandle"]
        try:
            route.function.invoke(event)
        except Exception as error:
            attempts = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
            logger.warning(
                "%s: %s failed (attempt %d): %s", route.spec.name, route.function.name, attempts, error
            )
            if attempts < self.max_attempts:
                self._retrying = True
                return  # visible again after the visibility timeout: retried
            self.dead_letters.append(DeadLetter(route.spec.name, event, f"{type(error).__name__}: {error}"))
        else:
            self.delivered += 1
        self.sqs_client.delete_message(QueueUrl=route.queue_url, ReceiptHandle=receipt)

    def drain(self, timeout: float = 30.0) -> int:
        """Deliver until the queues stay empty; how many events were handled."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            handled = self.deliver()
            total += handled
            if handled == 0:
                return total
        return total
