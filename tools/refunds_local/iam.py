"""IAM as deployed, in the local stack: every function calls AWS with its own role, and a call its role does
not allow is refused as AWS refuses it (AccessDeniedException).

- The roles are the ones SAM generates from template.yaml (translation.py): each function's execution role,
  the state machine's role. They are created in moto's IAM (inline policies resolved to the local ARNs,
  managed policies attached), and each function gets credentials from STS AssumeRole on its role.
- In process, a function's AWS calls are signed with its own credentials: the process's default boto3
  session resolves credentials per call from the function whose invocation runs in the current thread
  (`FunctionCredentials`, set by `LambdaFunction.invoke`). The stream pump reads the table's stream with
  the EventPublisher's role (as Lambda's event source mapping does); moto's Step Functions engine invokes
  Lambda as the state machine's role.
- `IamGate`, in front of moto (aws_server.py), decides each request: who signed it (the access key from
  AssumeRole names the role), which IAM actions on which resources it needs (`required_permissions`), and
  whether the role's policies allow them (`evaluate`). A refused call answers AccessDeniedException, with
  AWS's message naming the role session (the function), the action and the resource.

Why not moto's own enforcement (INITIAL_NO_AUTH_ACTION_COUNT): moto 5.2.5 authorizes one action per
request named after the API operation, against resource "*" except for SQS, IAM, STS and S3. So a grant
on a table, stream, bus, secret or state machine ARN never matches, TransactWriteItems is checked as an
action "dynamodb:TransactWriteItems" (AWS checks PutItem/UpdateItem/ConditionCheckItem per item), a
Query on an index is checked against no index ARN, and SendTaskSuccess has no state machine to check.
The evaluation here is plain IAM for identity policies: an explicit Deny wins, else any Allow whose
Action/NotAction and Resource/NotResource match (`*` and `?` wildcards); a Condition is refused loudly
(`UnsupportedPolicy`) rather than guessed. Every decision is recorded (`calls`), so the grants a role has
but no call used can be reported (`unused_grants`).
"""

from __future__ import annotations

import functools
import io
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials, ReadOnlyCredentials

ACCOUNT_ID = "123456789012"
PARTITION = "aws"
# The local stack's own clients (setup, tests, pumps other than the stream's): not a function, every action.
HARNESS_ACCESS_KEY = "testing"
HARNESS_SECRET_KEY = "testing"  # noqa: S105 - moto's dummy credentials
# moto's Step Functions engine signs its Lambda calls with this fixed key (moto.stepfunctions.parser).
STEP_FUNCTIONS_ENGINE_ACCESS_KEY = "ak"

_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/[^/]+/(?P<region>[^/]+)/(?P<service>[^/]+)/")


class UnsupportedPolicy(ValueError):
    """A policy uses what this evaluator does not implement (the message says what)."""


# --- matching and evaluation -----------------------------------------------------------------------------


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters (also none, also across `:` and `/`), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE if ignore_case else 0
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Grant:
    """One action of an Allow statement on one of its resources, as the template writes them: the unit of
    "used" and "unused", the same in every stack whatever its local ARNs."""

    principal: str
    policy: str
    sid: str
    action: str
    resource: str  # as written: "!GetAtt RefundsTable.Arn", "!Sub ${RefundsTable.Arn}/index/gsi1", "*"

    def describe(self) -> str:
        return f"{self.principal}: {self.action} on {self.resource} ({self.policy} {self.sid})".rstrip()


@dataclass(frozen=True)
class Position:
    """Where a grant is in a role's policies: policy name, statement, action and resource indexes."""

    policy: str
    statement: int
    action: int
    resource: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    matched: tuple[Position, ...] = ()  # the Allow grants that matched (empty when refused)
    denied_by: str | None = None  # the Deny statement's Sid when explicitly denied


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Condition" in statement:
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r} has a Condition; not evaluated")
    if "Principal" in statement or "NotPrincipal" in statement:
        raise UnsupportedPolicy("a resource policy (Principal) is not an identity policy")
    if "Action" in statement:
        action_ok = any(wildcard_match(p, action, ignore_case=True) for p in _as_list(statement["Action"]))
    else:
        action_ok = not any(
            wildcard_match(p, action, ignore_case=True) for p in _as_list(statement.get("NotAction", []))
        )
    if not action_ok:
        return False
    if "Resource" in statement:
        return any(wildcard_match(p, resource) for p in _as_list(statement["Resource"]))
    return not any(wildcard_match(p, resource) for p in _as_list(statement.get("NotResource", [])))


def evaluate(policies: Mapping[str, Mapping[str, Any]], action: str, resource: str) -> Decision:
    """Whether `policies` (name → policy document, all resolved) allow `action` on `resource`: an explicit
    Deny wins; else allowed when any Allow statement matches both."""
    matched: list[Position] = []
    for name, document in policies.items():
        for index, statement in enumerate(_as_list(document.get("Statement", []))):
            if not _statement_applies(statement, action, resource):
                continue
            if statement.get("Effect") == "Deny":
                return Decision(False, denied_by=str(statement.get("Sid") or name))
            if statement.get("Effect") != "Allow":
                raise UnsupportedPolicy(
                    f"{name}: Effect must be Allow or Deny, not {statement.get('Effect')!r}"
                )
            # -1: the statement's NotAction / NotResource as a whole
            actions = (
                [
                    i
                    for i, pattern in enumerate(_as_list(statement["Action"]))
                    if wildcard_match(pattern, action, ignore_case=True)
                ]
                if "Action" in statement
                else [-1]
            )
            resources = (
                [
                    i
                    for i, pattern in enumerate(_as_list(statement["Resource"]))
                    if wildcard_match(pattern, resource)
                ]
                if "Resource" in statement
                else [-1]
            )
            matched.extend(Position(name, index, a, r) for a in actions for r in resources)
    return Decision(bool(matched), tuple(matched))


def written(value: Any) -> str:
    """A policy value as template.yaml writes it (short intrinsic forms)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"!Ref {value['Ref']}"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        return f"!GetAtt {'.'.join(target) if isinstance(target, list) else target}"
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        if isinstance(sub, str):
            return f"!Sub {sub}"
        text, variables = sub
        return f"!Sub {text} ({', '.join(f'{k}: {written(v)}' for k, v in sorted(variables.items()))})"
    return json.dumps(value, sort_keys=True)


def _element(statement: Mapping[str, Any], key: str, index: int) -> str:
    if index < 0:
        return f"Not{key} {', '.join(written(v) for v in _as_list(statement[f'Not{key}']))}"
    return written(_as_list(statement[key])[index])


def grant_at(principal: str, policies: Mapping[str, Mapping[str, Any]], position: Position) -> Grant:
    statement = _as_list(policies[position.policy]["Statement"])[position.statement]
    return Grant(
        principal,
        position.policy,
        str(statement.get("Sid", "")),
        _element(statement, "Action", position.action),
        _element(statement, "Resource", position.resource),
    )


def grants_of(principal: str, policies: Mapping[str, Mapping[str, Any]]) -> list[Grant]:
    """Every (action, resource) pair the Allow statements of `policies` name."""
    grants = []
    for name, document in policies.items():
        for index, statement in enumerate(_as_list(document.get("Statement", []))):
            if statement.get("Effect") != "Allow":
                continue
            actions = range(len(_as_list(statement["Action"]))) if "Action" in statement else [-1]
            resources = range(len(_as_list(statement["Resource"]))) if "Resource" in statement else [-1]
            for a in actions:
                for r in resources:
                    grants.append(grant_at(principal, policies, Position(name, index, a, r)))
    return grants


# --- what a request needs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Permission:
    """One IAM action on one resource ARN that a request needs."""

    action: str
    resource: str


def _table_arn(table: str, region: str) -> str:
    if table.startswith("arn:"):
        return table
    return f"arn:{PARTITION}:dynamodb:{region}:{ACCOUNT_ID}:table/{table}"


def _dynamodb(operation: str, params: Mapping[str, Any], region: str) -> list[Permission]:
    """DynamoDB authorizes transactions per item action, batches per table, Query/Scan on the index."""
    if operation == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        needed = []
        for item in params.get("TransactItems", []):
            for kind, action in kinds.items():
                if kind in item:
                    needed.append(
                        Permission(f"dynamodb:{action}", _table_arn(item[kind]["TableName"], region))
                    )
        return needed
    if operation == "TransactGetItems":
        return [
            Permission("dynamodb:GetItem", _table_arn(item["Get"]["TableName"], region))
            for item in params.get("TransactItems", [])
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [
            Permission(f"dynamodb:{operation}", _table_arn(t, region)) for t in params.get("RequestItems", {})
        ]
    if operation in ("Query", "Scan") and params.get("IndexName"):
        resource = f"{_table_arn(params['TableName'], region)}/index/{params['IndexName']}"
        return [Permission(f"dynamodb:{operation}", resource)]
    if "TableName" in params:
        return [Permission(f"dynamodb:{operation}", _table_arn(params["TableName"], region))]
    return [Permission(f"dynamodb:{operation}", "*")]


def _streams(operation: str, params: Mapping[str, Any]) -> list[Permission]:
    if "StreamArn" in params:
        return [Permission(f"dynamodb:{operation}", str(params["StreamArn"]))]
    if "ShardIterator" in params:
        # moto's iterators begin with their stream's ARN: "<stream arn>|1|<id>".
        return [Permission(f"dynamodb:{operation}", str(params["ShardIterator"]).split("|", 1)[0])]
    return [Permission(f"dynamodb:{operation}", "*")]


def _events(operation: str, params: Mapping[str, Any], region: str) -> list[Permission]:
    def bus_arn(bus: str | None) -> str:
        name = bus or "default"
        return (
            name
            if name.startswith("arn:")
            else f"arn:{PARTITION}:events:{region}:{ACCOUNT_ID}:event-bus/{name}"
        )

    if operation == "PutEvents":
        buses = {bus_arn(entry.get("EventBusName")) for entry in params.get("Entries", [])}
        return [Permission("events:PutEvents", arn) for arn in sorted(buses)]
    return [Permission(f"events:{operation}", "*")]


def _queue_arn(url: str, region: str) -> str:
    return f"arn:{PARTITION}:sqs:{region}:{ACCOUNT_ID}:{url.rstrip('/').rsplit('/', 1)[-1]}"


@dataclass
class Resolver:
    """What the gate must learn to name a request's resource: secret names, task tokens' state machines."""

    secrets: dict[str, str] = field(default_factory=dict)  # name → ARN
    task_tokens: dict[str, str] = field(default_factory=dict)  # token → state machine ARN
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def secret(self, secret_id: str, region: str) -> str:
        if secret_id.startswith("arn:"):
            return secret_id
        with self._lock:
            return self.secrets.get(
                secret_id, f"arn:{PARTITION}:secretsmanager:{region}:{ACCOUNT_ID}:secret:{secret_id}"
            )

    def state_machine_of(self, token: str) -> str:
        with self._lock:
            return self.task_tokens.get(token, "*")

    def remember_tokens(self, payload: Any, state_machine_arn: str) -> None:
        """Task tokens a state machine hands to a task (any string under a key naming a token)."""
        with self._lock:
            for key, value in _walk(payload):
                if "token" in key.lower() and isinstance(value, str) and value:
                    self.task_tokens[value] = state_machine_arn


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def required_permissions(
    service: str, operation: str, params: Mapping[str, Any], region: str, resolver: Resolver
) -> list[Permission]:
    """The IAM actions and resource ARNs AWS checks for one API call (service: the X-Amz-Target prefix's
    service as signed, e.g. "dynamodb"; operation: "GetItem"). An operation whose resource is not known here
    needs its action on "*", which only a `Resource: "*"` grant allows."""
    if operation.startswith("DynamoDBStreams_") or service == "dynamodbstreams":
        return _streams(operation.rsplit(".", 1)[-1], params)
    if service == "dynamodb":
        return _dynamodb(operation, params, region)
    if service == "events":
        return _events(operation, params, region)
    if service == "states":
        if "stateMachineArn" in params:
            return [Permission(f"states:{operation}", str(params["stateMachineArn"]))]
        if "taskToken" in params:
            return [Permission(f"states:{operation}", resolver.state_machine_of(str(params["taskToken"])))]
        if "executionArn" in params:
            # arn:aws:states:region:account:execution:machine:name → its state machine
            parts = str(params["executionArn"]).split(":")
            machine = ":".join([*parts[:5], "stateMachine", parts[6]]) if len(parts) >= 7 else "*"
            return [Permission(f"states:{operation}", machine)]
        return [Permission(f"states:{operation}", "*")]
    if service == "secretsmanager":
        if "SecretId" in params:
            return [
                Permission(f"secretsmanager:{operation}", resolver.secret(str(params["SecretId"]), region))
            ]
        return [Permission(f"secretsmanager:{operation}", "*")]
    if service == "sqs":
        if "QueueUrl" in params:
            return [Permission(f"sqs:{operation}", _queue_arn(str(params["QueueUrl"]), region))]
        return [Permission(f"sqs:{operation}", "*")]
    return [Permission(f"{service}:{operation}", "*")]


# --- who calls -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """A role session: the role SAM generates for `name` (a function or a state machine), assumed."""

    name: str
    role_name: str
    role_arn: str
    session_name: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    # A state machine's ARN, for the task tokens its tasks receive; empty for a function.
    state_machine_arn: str = ""

    @property
    def session_arn(self) -> str:
        return f"arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/{self.role_name}/{self.session_name}"

    def frozen(self) -> ReadOnlyCredentials:
        return ReadOnlyCredentials(self.access_key_id, self.secret_access_key, self.session_token)


CURRENT_PRINCIPAL: ContextVar[Principal | None] = ContextVar("refunds_local_principal", default=None)


class FunctionCredentials(Credentials):
    """botocore credentials resolved per call: the role of the function running in this thread, else the
    harness's. botocore asks for frozen credentials on every request it signs."""

    def __init__(self) -> None:
        super().__init__(HARNESS_ACCESS_KEY, HARNESS_SECRET_KEY)

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        principal = CURRENT_PRINCIPAL.get()
        if principal is None:
            return ReadOnlyCredentials(HARNESS_ACCESS_KEY, HARNESS_SECRET_KEY, None)
        return principal.frozen()

    @property
    def access_key(self) -> str:
        return str(self.get_frozen_credentials().access_key)

    @access_key.setter
    def access_key(self, value: str) -> None:
        pass

    @property
    def secret_key(self) -> str:
        return str(self.get_frozen_credentials().secret_key)

    @secret_key.setter
    def secret_key(self, value: str) -> None:
        pass

    @property
    def token(self) -> str | None:
        token = self.get_frozen_credentials().token
        return None if token is None else str(token)

    @token.setter
    def token(self, value: str | None) -> None:
        pass


class FunctionCredentialProvider(CredentialProvider):
    METHOD = "refunds-local-function-role"
    CANONICAL_NAME = "refunds-local"

    def load(self) -> Credentials:
        return FunctionCredentials()


# --- the gate ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One permission a principal's request needed, and whether its role allowed it."""

    principal: str
    action: str
    resource: str
    allowed: bool
    grants: tuple[Grant, ...] = ()

    def describe(self) -> str:
        verdict = "allowed" if self.allowed else "REFUSED"
        return f"{self.principal}: {self.action} on {self.resource} {verdict}"


@dataclass(frozen=True)
class Refusal:
    """What to answer instead of moto: AWS's error, in the JSON protocols' shape."""

    status: int
    code: str
    message: str

    def wsgi(self) -> tuple[str, list[tuple[str, str]], bytes]:
        body = json.dumps({"__type": self.code, "message": self.message, "Message": self.message}).encode()
        reason = {400: "Bad Request", 403: "Forbidden"}.get(self.status, "Error")
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", self.code),
            ("x-amzn-query-error", f"{self.code};Sender"),
        ]
        return f"{self.status} {reason}", headers, body


class IamGate:
    """Decides every request to the local AWS endpoint by the caller's role; records what it decided."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        self.resolver = resolver or Resolver()
        self._principals: dict[str, Principal] = {}
        # role name → policy name → document: resolved to local ARNs, and as the template writes it
        self._policies: dict[str, dict[str, dict[str, Any]]] = {}
        self._written: dict[str, dict[str, dict[str, Any]]] = {}
        self._service_principals: dict[str, Principal] = {}  # e.g. moto's Step Functions engine
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    # -- set-up --

    def add(
        self,
        principal: Principal,
        policies: Mapping[str, Mapping[str, Any]],
        as_written: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """`policies` resolved to local ARNs; `as_written` the same with the template's intrinsics."""
        with self._lock:
            self._principals[principal.access_key_id] = principal
            self._policies[principal.role_name] = {name: dict(doc) for name, doc in policies.items()}
            self._written[principal.role_name] = {
                name: dict(doc) for name, doc in (as_written or policies).items()
            }

    def act_for(self, access_key_id: str, principal: Principal) -> None:
        """Requests signed with `access_key_id` (a service's fixed key) are `principal`'s."""
        with self._lock:
            self._service_principals[access_key_id] = principal

    def principal(self, name: str) -> Principal:
        for principal in self._principals.values():
            if principal.name == name:
                return principal
        raise KeyError(f"no role for {name}")

    @property
    def principals(self) -> list[Principal]:
        return list(self._principals.values())

    def policies(self, role_name: str) -> dict[str, dict[str, Any]]:
        return dict(self._policies[role_name])

    # -- deciding --

    def check_request(self, headers: Mapping[str, str], body: bytes) -> Refusal | None:
        """None: pass the request on to moto; else AWS's refusal. Unsigned and harness requests pass."""
        found = _CREDENTIAL.search(headers.get("Authorization", ""))
        if found is None:
            return None
        key, region, service = found.group("key"), found.group("region"), found.group("service")
        if key == HARNESS_ACCESS_KEY:
            return None
        principal = self._principals.get(key) or self._service_principals.get(key)
        if principal is None:
            return Refusal(
                400, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        target = headers.get("X-Amz-Target", "")
        if not target:
            return self._refuse_unknown(principal, f"{service}:?", "a request without X-Amz-Target")
        prefix, _, operation = target.rpartition(".")
        if prefix.startswith("DynamoDBStreams_"):
            service = "dynamodbstreams"
        try:
            params = json.loads(body) if body.strip() else {}
        except ValueError:
            params = {}
        return self.authorize(
            principal, required_permissions(service, operation, params, region, self.resolver)
        )

    def check_invoke(self, headers: Mapping[str, str], function_arn: str, event: Any) -> Refusal | None:
        """Lambda Invoke of one of the stack's functions (answered by aws_server.py, not moto)."""
        found = _CREDENTIAL.search(headers.get("Authorization", ""))
        if found is None or found.group("key") == HARNESS_ACCESS_KEY:
            return None
        principal = self._principals.get(found.group("key")) or self._service_principals.get(
            found.group("key")
        )
        if principal is None:
            return Refusal(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        refusal = self.authorize(principal, [Permission("lambda:InvokeFunction", function_arn)])
        if refusal is None and principal.state_machine_arn:
            self.resolver.remember_tokens(event, principal.state_machine_arn)
        return refusal

    def authorize(self, principal: Principal, needed: Sequence[Permission]) -> Refusal | None:
        policies = self._policies[principal.role_name]
        refusal: Refusal | None = None
        for permission in needed:
            decision = evaluate(policies, permission.action, permission.resource)
            as_written = self._written[principal.role_name]
            grants = tuple(grant_at(principal.name, as_written, position) for position in decision.matched)
            self._record(
                Call(principal.name, permission.action, permission.resource, decision.allowed, grants)
            )
            if not decision.allowed and refusal is None:
                why = (
                    f"with an explicit deny in {decision.denied_by}"
                    if decision.denied_by
                    else f"because no identity-based policy allows the {permission.action} action"
                )
                refusal = Refusal(
                    400,
                    "AccessDeniedException",
                    f"User: {principal.session_arn} is not authorized to perform: {permission.action} "
                    f"on resource: {permission.resource} {why}",
                )
        return refusal

    def _refuse_unknown(self, principal: Principal, action: str, what: str) -> Refusal:
        self._record(Call(principal.name, action, "*", False))
        return Refusal(
            400,
            "AccessDeniedException",
            f"User: {principal.session_arn}: refunds-local cannot authorize {what}",
        )

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    # -- what was decided --

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def refusals(self) -> list[Call]:
        return [call for call in self.calls if not call.allowed]

    def take_refusals(self) -> list[Call]:
        """The refusals so far, forgotten afterwards (a test checks its own)."""
        with self._lock:
            refused = [call for call in self._calls if not call.allowed]
            self._calls = [call for call in self._calls if call.allowed]
        return refused

    def grants(self) -> list[Grant]:
        """Every grant of every role here, as the template writes it."""
        names = {principal.role_name: principal.name for principal in self._principals.values()}
        return [
            grant for role, policies in self._written.items() for grant in grants_of(names[role], policies)
        ]


def usage(calls: Iterable[Call]) -> dict[str, dict[str, set[str]]]:
    """principal → action → the resources it was allowed on (as the template writes the grant that allowed
    it), as measured."""
    measured: dict[str, dict[str, set[str]]] = {}
    for call in calls:
        if call.allowed:
            resources = {grant.resource for grant in call.grants} or {call.resource}
            measured.setdefault(call.principal, {}).setdefault(call.action, set()).update(resources)
    return measured


def unused_grants(grants: Iterable[Grant], calls: Iterable[Call]) -> list[Grant]:
    used = {grant for call in calls if call.allowed for grant in call.grants}
    return [grant for grant in grants if grant not in used]


def describe_usage(calls: Iterable[Call]) -> str:
    lines = []
    for principal, actions in sorted(usage(calls).items()):
        lines.append(principal)
        for action, resources in sorted(actions.items()):
            lines.append(f"  {action}: {', '.join(sorted(resources))}")
    return "\n".join(lines)


# --- the roles SAM generates -----------------------------------------------------------------------------


class IntrinsicError(ValueError):
    """A policy names something the local stack has no value for."""


@dataclass(frozen=True)
class RoleSpec:
    """One AWS::IAM::Role of the translated template and who runs with it (a function or state machine)."""

    logical_id: str
    principal: str
    assume_role_policy: Mapping[str, Any]
    managed_policy_arns: tuple[str, ...]
    policies: Mapping[str, Any]  # policy name → document, intrinsics unresolved


def role_specs(
    translated: Mapping[str, Any], parameters: Mapping[str, str] | None = None
) -> dict[str, RoleSpec]:
    """The roles of functions and state machines, by the function's or state machine's logical id; a
    conditional statement (Fn::If) as the template's conditions decide with `parameters` (else defaults)."""
    from .template import choose, conditions

    decided = conditions(dict(translated), parameters)
    resources: Mapping[str, Any] = translated["Resources"]
    users: dict[str, str] = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        role = properties.get("Role") if resource["Type"] == "AWS::Lambda::Function" else None
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            role = properties.get("RoleArn")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            users[str(role["Fn::GetAtt"][0])] = logical_id
    specs = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role" or logical_id not in users:
            continue
        properties = resource["Properties"]
        specs[users[logical_id]] = RoleSpec(
            logical_id=logical_id,
            principal=users[logical_id],
            assume_role_policy=properties["AssumeRolePolicyDocument"],
            managed_policy_arns=tuple(properties.get("ManagedPolicyArns", [])),
            policies={
                p["PolicyName"]: choose(p["PolicyDocument"], decided) for p in properties.get("Policies", [])
            },
        )
    return specs


def resolve_intrinsics(value: Any, names: Mapping[str, str]) -> Any:
    """Ref, Fn::GetAtt, Fn::Sub (both forms) and Fn::Join resolved with `names` ("X", "X.Attribute")."""
    if isinstance(value, list):
        return [resolve_intrinsics(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return _name(names, str(value["Ref"]))
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        return _name(names, ".".join(target) if isinstance(target, list) else str(target))
    if set(value) == {"Fn::Sub"}:
        text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        local = {**names, **{k: str(resolve_intrinsics(v, names)) for k, v in variables.items()}}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: _name(local, m.group(1)), text)
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(str(resolve_intrinsics(part, names)) for part in parts)
    if any(key.startswith("Fn::") for key in value):
        raise IntrinsicError(f"cannot resolve {value!r} locally")
    return {key: resolve_intrinsics(item, names) for key, item in value.items()}


def _name(names: Mapping[str, str], name: str) -> str:
    try:
        return names[name]
    except KeyError:
        raise IntrinsicError(f"no local value for {name}") from None


# --- what was used, across stacks ------------------------------------------------------------------------

# Grants AWS itself uses with a role, which the local stack does not emulate: not reported as unused.
USED_BY_AWS = {
    ("EventPublisherFunction", "dynamodb:ListStreams"): "Lambda's stream poller (event source mapping)",
    ("EventPublisherFunction", "sqs:SendMessage"): "the mapping's OnFailure destination, sent by Lambda "
    "(the local pump keeps dead letters in memory)",
    ("RetryWorkflow", "logs:*"): "Step Functions' log delivery to CloudWatch Logs",
    # The data key (EncryptionKey CUSTOMER_MANAGED): DynamoDB (table, stream) and Secrets Manager call KMS
    # with the caller's role (the key policy's kms:ViaService); the code never calls KMS, and moto's
    # DynamoDB and Secrets Manager do not encrypt with the key.
    **{
        (function, "kms:*"): "DynamoDB and Secrets Manager use the data key with this role (kms:ViaService)"
        for function in (
            "RefundApiFunction",
            "IpnHandlerFunction",
            "EventPublisherFunction",
            "RetryStepsFunction",
            "ReconcilerFunction",
        )
    },
}


def used_by_aws(grant: Grant) -> str | None:
    for (principal, action), why in USED_BY_AWS.items():
        if grant.principal == principal and wildcard_match(action, grant.action, ignore_case=True):
            return why
    return None


@dataclass
class UsageLog:
    """Every stack's grants and decided calls in this process (a test session, the demo)."""

    grants: set[Grant] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, gate: IamGate) -> None:
        grants, calls = gate.grants(), gate.calls
        with self._lock:
            self.grants.update(grants)
            self.calls.extend(calls)

    def unused(self) -> list[Grant]:
        with self._lock:
            grants, calls = set(self.grants), list(self.calls)
        return sorted(
            (g for g in unused_grants(grants, calls) if used_by_aws(g) is None),
            key=lambda g: (g.principal, g.policy, g.sid, g.action, g.resource),
        )

    def report(self) -> str:
        """Per function (and state machine): the actions it used and the resources they touched, as
        measured; then the grants nothing used."""
        with self._lock:
            calls = list(self.calls)
        lines = ["IAM as measured (allowed calls per role, by action and resource):", describe_usage(calls)]
        unused = self.unused()
        lines.append(f"grants no call used: {len(unused)}")
        lines.extend(f"  {grant.describe()}" for grant in unused)
        return "\n".join(lines)


SESSION = UsageLog()


# --- the same, for tests that run handlers under moto's mock_aws (no local stack) ---------------------------


class _LocalNames(dict[str, str]):
    """Local values of the template's names; one the test has no resource for never matches a call."""

    def __missing__(self, name: str) -> str:
        return f"arn:{PARTITION}:unset:::{name}"


def template_gate(
    principals: Iterable[str],
    names: Mapping[str, str],
    template_path: Any = None,
    *,
    secrets: Mapping[str, str] | None = None,
    region: str = "us-east-1",
) -> IamGate:
    """A gate holding the roles SAM generates for `principals` (functions' logical ids), their policies
    resolved with `names` (e.g. {"RefundsTable": ..., "RefundsTable.Arn": ..., "CredentialsSecret": ...});
    `secrets`: name → ARN of the secrets the code names by name."""
    from .template import REPO, TEMPLATE_PATH
    from .translation import translate

    specs = role_specs(translate(template_path or TEMPLATE_PATH, base=REPO))
    local = _LocalNames(
        {"AWS::Partition": PARTITION, "AWS::Region": region, "AWS::AccountId": ACCOUNT_ID, **names}
    )
    gate = IamGate(Resolver(secrets=dict(secrets or {})))
    for name in principals:
        spec = specs[name]
        principal = Principal(
            name=name,
            role_name=f"test-{spec.logical_id}"[:64],
            role_arn=f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/test-{spec.logical_id}"[:64],
            session_name=name,
            access_key_id=f"ASIALOCAL{name.upper()}"[:32],
            secret_access_key="local",  # noqa: S106 - never leaves the process
            session_token=f"token-{name}",
        )
        policies = {key: resolve_intrinsics(doc, local) for key, doc in spec.policies.items()}
        gate.add(principal, policies, spec.policies)
    return gate


class _RawBody(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def _before_send(gate: IamGate, request: Any, **_: Any) -> AWSResponse | None:
    headers = {name: request.headers.get(name) or "" for name in ("Authorization", "X-Amz-Target")}
    headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
    body = request.body or b""
    refusal = gate.check_request(headers, body.encode() if isinstance(body, str) else bytes(body))
    if refusal is None:
        return None  # on to moto's mock
    status, answer_headers, payload = refusal.wsgi()
    response_headers = HTTPHeaders()
    for name, value in answer_headers:
        response_headers[name] = value
    return AWSResponse(request.url, int(status.split()[0]), response_headers, _RawBody(payload))


@contextmanager
def enforced_in_process(gate: IamGate) -> Iterator[None]:
    """Under moto's mock_aws: clients of the default boto3 session (every client the library makes) sign
    as the principal of `as_principal`, and the gate decides each call before moto sees it."""
    core = botocore.session.get_session()
    core.register_component("credential_provider", CredentialResolver([FunctionCredentialProvider()]))
    session = boto3.Session(botocore_session=core)
    handler: Any = functools.partial(_before_send, gate)  # a response here ends the send, as moto's does
    session.events.register_first("before-send", handler)
    saved, boto3.DEFAULT_SESSION = boto3.DEFAULT_SESSION, session
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


@contextmanager
def as_principal(principal: Principal) -> Iterator[None]:
    """Calls made in this thread, within the block, are `principal`'s (a handler run by a test)."""
    token = CURRENT_PRINCIPAL.set(principal)
    try:
        yield
    finally:
        CURRENT_PRINCIPAL.reset(token)
