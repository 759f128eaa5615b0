"""The local stack's IAM evaluation (refunds_local/iam.py): the matcher, what each call needs, the gate."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from refunds_local.iam import (
    CURRENT_PRINCIPAL,
    HARNESS_ACCESS_KEY,
    FunctionCredentials,
    Grant,
    IamGate,
    IntrinsicError,
    Permission,
    Principal,
    Resolver,
    UnsupportedPolicy,
    evaluate,
    grants_of,
    required_permissions,
    resolve_intrinsics,
    unused_grants,
    wildcard_match,
    written,
)

REGION = "us-east-1"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/refunds"
INDEX = f"{TABLE}/index/gsi1"
STREAM = f"{TABLE}/stream/2026-01-01T00:00:00.000"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:retry"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:creds-AbCdEf"


def policy(*statements: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"P0": {"Version": "2012-10-17", "Statement": list(statements)}}


def allow(actions: str | list[str], resources: str | list[Any], sid: str = "") -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


# --- the matcher -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (TABLE, TABLE, True),
        (TABLE, INDEX, False),  # a table grant does not cover its index
        (f"{TABLE}/index/*", INDEX, True),
        (f"{TABLE}*", INDEX, True),
        ("*", STREAM, True),
        ("arn:aws:lambda:*:*:function:steps*", "arn:aws:lambda:us-east-1:1:function:steps", True),
        ("arn:aws:lambda:*:*:function:steps*", "arn:aws:lambda:us-east-1:1:function:other", False),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-1", True),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-12", False),
        ("table.name", "tableXname", False),  # regex characters are literal
        ("Table", "table", False),  # resources are case-sensitive
    ],
)
def test_wildcards_match_as_iam_does(pattern: str, value: str, matches: bool) -> None:
    assert wildcard_match(pattern, value) is matches


def test_actions_match_ignoring_case() -> None:
    assert wildcard_match("dynamodb:getitem", "dynamodb:GetItem", ignore_case=True)
    assert wildcard_match("dynamodb:Get*", "dynamodb:GetRecords", ignore_case=True)
    assert not wildcard_match("dynamodb:Get*", "dynamodb:BatchGetItem", ignore_case=True)


# --- evaluation ----------------------------------------------------------------------------------------


def test_an_allow_on_the_action_and_resource_allows_and_names_the_grant() -> None:
    decision = evaluate(
        policy(allow(["dynamodb:GetItem", "dynamodb:PutItem"], [TABLE, INDEX])), "dynamodb:PutItem", TABLE
    )
    assert decision.allowed
    [position] = decision.matched
    assert (position.policy, position.statement, position.action, position.resource) == ("P0", 0, 1, 0)


@pytest.mark.parametrize(
    ("action", "resource"),
    [("dynamodb:BatchGetItem", TABLE), ("dynamodb:GetItem", INDEX), ("dynamodb:Query", TABLE)],
)
def test_without_an_allow_for_both_the_call_is_refused(action: str, resource: str) -> None:
    policies = policy(allow(["dynamodb:GetItem", "dynamodb:PutItem"], TABLE), allow("dynamodb:Query", INDEX))
    assert not evaluate(policies, action, resource).allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policies = policy(
        allow("dynamodb:*", "*"),
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE},
    )
    decision = evaluate(policies, "dynamodb:DeleteItem", TABLE)
    assert (decision.allowed, decision.denied_by) == (False, "NoDeletes")
    assert evaluate(policies, "dynamodb:GetItem", TABLE).allowed


def test_not_action_and_not_resource_allow_everything_else() -> None:
    policies = policy({"Effect": "Allow", "NotAction": "dynamodb:DeleteItem", "NotResource": INDEX})
    assert evaluate(policies, "dynamodb:GetItem", TABLE).allowed
    assert not evaluate(policies, "dynamodb:DeleteItem", TABLE).allowed
    assert not evaluate(policies, "dynamodb:GetItem", INDEX).allowed
    [grant] = grants_of("Fn", policies)
    assert (grant.action, grant.resource) == ("NotAction dynamodb:DeleteItem", f"NotResource {INDEX}")


def test_a_condition_is_refused_loudly_rather_than_guessed() -> None:
    policies = policy(
        {**allow("dynamodb:GetItem", TABLE), "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    )
    with pytest.raises(UnsupportedPolicy, match="Condition"):
        evaluate(policies, "dynamodb:GetItem", TABLE)


def test_every_action_resource_pair_is_a_grant_and_the_unused_ones_are_found() -> None:
    written_policies = policy(
        allow(["dynamodb:GetItem", "dynamodb:Query"], [{"Fn::GetAtt": ["RefundsTable", "Arn"]}, "*"], sid="T")
    )
    grants = grants_of("Fn", written_policies)
    assert [(g.action, g.resource) for g in grants] == [
        ("dynamodb:GetItem", "!GetAtt RefundsTable.Arn"),
        ("dynamodb:GetItem", "*"),
        ("dynamodb:Query", "!GetAtt RefundsTable.Arn"),
        ("dynamodb:Query", "*"),
    ]
    gate = IamGate()
    principal = _principal()
    gate.add(
        principal,
        policy(allow(["dynamodb:GetItem", "dynamodb:Query"], [TABLE, "*"], sid="T")),
        written_policies,
    )
    assert gate.authorize(principal, [Permission("dynamodb:GetItem", TABLE)]) is None
    unused = unused_grants(gate.grants(), gate.calls)
    # GetItem on the table matched both resources; Query was never called.
    assert [(g.action, g.resource) for g in unused] == [
        ("dynamodb:Query", "!GetAtt RefundsTable.Arn"),
        ("dynamodb:Query", "*"),
    ]
    assert all(isinstance(g, Grant) and g.principal == "Fn" for g in unused)


# --- what a call needs -------------------------------------------------------------------------------


def needs(
    service: str, operation: str, params: dict[str, Any], resolver: Resolver | None = None
) -> list[tuple[str, str]]:
    found = required_permissions(service, operation, params, REGION, resolver or Resolver())
    return [(p.action, p.resource) for p in found]


def test_transact_write_items_needs_each_items_action_not_its_own() -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "refunds", "Item": {}}},
            {"Update": {"TableName": "refunds", "Key": {}}},
            {"ConditionCheck": {"TableName": "other", "Key": {}}},
            {"Delete": {"TableName": "refunds", "Key": {}}},
        ]
    }
    assert needs("dynamodb", "TransactWriteItems", params) == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:ConditionCheckItem", TABLE.replace("refunds", "other")),
        ("dynamodb:DeleteItem", TABLE),
    ]


def test_batches_need_their_own_action_per_table_and_queries_the_index() -> None:
    assert needs("dynamodb", "BatchGetItem", {"RequestItems": {"refunds": {}}}) == [
        ("dynamodb:BatchGetItem", TABLE)
    ]
    assert needs("dynamodb", "Query", {"TableName": "refunds", "IndexName": "gsi1"}) == [
        ("dynamodb:Query", INDEX)
    ]
    assert needs("dynamodb", "Query", {"TableName": "refunds"}) == [("dynamodb:Query", TABLE)]
    assert needs("dynamodb", "TransactGetItems", {"TransactItems": [{"Get": {"TableName": TABLE}}]}) == [
        ("dynamodb:GetItem", TABLE)
    ]


def test_stream_reads_need_the_stream_arn_also_from_a_shard_iterator() -> None:
    assert needs("dynamodbstreams", "DescribeStream", {"StreamArn": STREAM}) == [
        ("dynamodb:DescribeStream", STREAM)
    ]
    iterator = f"{STREAM}|1|AAAAAQ=="
    assert needs("dynamodbstreams", "GetRecords", {"ShardIterator": iterator}) == [
        ("dynamodb:GetRecords", STREAM)
    ]
    assert needs("dynamodbstreams", "ListStreams", {}) == [("dynamodb:ListStreams", "*")]


def test_events_need_their_buses_and_secrets_their_full_arn() -> None:
    entries = {"Entries": [{"EventBusName": "refunds"}, {"EventBusName": "refunds"}, {}]}
    assert needs("events", "PutEvents", entries) == [
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default"),
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/refunds"),
    ]
    resolver = Resolver(secrets={"creds": SECRET})
    assert needs("secretsmanager", "GetSecretValue", {"SecretId": "creds"}, resolver) == [
        ("secretsmanager:GetSecretValue", SECRET)
    ]
    assert needs("secretsmanager", "GetSecretValue", {"SecretId": SECRET}) == [
        ("secretsmanager:GetSecretValue", SECRET)
    ]


def test_task_tokens_need_the_state_machine_that_issued_them() -> None:
    resolver = Resolver()
    resolver.remember_tokens({"Payload": {"task_token": "tok-1", "refund_id": "r1"}}, MACHINE)
    assert needs("states", "SendTaskSuccess", {"taskToken": "tok-1", "output": "{}"}, resolver) == [
        ("states:SendTaskSuccess", MACHINE)
    ]
    assert needs("states", "SendTaskFailure", {"taskToken": "unknown"}, resolver) == [
        ("states:SendTaskFailure", "*")
    ]
    assert needs("states", "StartExecution", {"stateMachineArn": MACHINE}) == [
        ("states:StartExecution", MACHINE)
    ]
    execution = "arn:aws:states:us-east-1:123456789012:execution:retry:run-1"
    assert needs("states", "DescribeExecution", {"executionArn": execution}) == [
        ("states:DescribeExecution", MACHINE)
    ]


# --- intrinsics ---------------------------------------------------------------------------------------


def test_the_translated_templates_intrinsics_resolve_to_local_names() -> None:
    names = {
        "RefundsTable.Arn": TABLE,
        "RetryStepsFunction": "steps",
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
    }
    value = [
        {"Fn::GetAtt": ["RefundsTable", "Arn"]},
        {"Fn::Sub": "${RefundsTable.Arn}/index/gsi1"},
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:lambda:${AWS::Region}:1:function:${f}*",
                {"f": {"Ref": "RetryStepsFunction"}},
            ]
        },
        {"Fn::Join": ["/", [{"Ref": "RetryStepsFunction"}, "x"]]},
    ]
    assert resolve_intrinsics(value, names) == [
        TABLE,
        INDEX,
        "arn:aws:lambda:us-east-1:1:function:steps*",
        "steps/x",
    ]
    with pytest.raises(IntrinsicError, match="Missing"):
        resolve_intrinsics({"Ref": "Missing"}, names)
    assert (
        written(value[2])
        == "!Sub arn:${AWS::Partition}:lambda:${AWS::Region}:1:function:${f}* (f: !Ref RetryStepsFunction)"
    )


# --- who calls --------------------------------------------------------------------------------------


def _principal(name: str = "Fn", key: str = "ASIAFN") -> Principal:
    return Principal(
        name, f"{name}Role", f"arn:aws:iam::123456789012:role/{name}Role", f"local-{name}", key, "s", "t"
    )


def _signed(key: str, target: str) -> dict[str, str]:
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=0",
        "X-Amz-Target": target,
    }


def test_the_gate_refuses_what_the_signers_role_lacks_in_awss_words() -> None:
    gate = IamGate()
    gate.add(_principal(), policy(allow("dynamodb:GetItem", TABLE)))
    body = json.dumps({"TableName": "refunds", "Key": {}}).encode()
    assert gate.check_request(_signed("ASIAFN", "DynamoDB_20120810.GetItem"), body) is None
    refusal = gate.check_request(_signed("ASIAFN", "DynamoDB_20120810.DeleteItem"), body)
    assert refusal is not None
    assert (refusal.status, refusal.code) == (400, "AccessDeniedException")
    assert refusal.message == (
        "User: arn:aws:sts::123456789012:assumed-role/FnRole/local-Fn is not authorized to perform: "
        f"dynamodb:DeleteItem on resource: {TABLE} because no identity-based policy allows the "
        "dynamodb:DeleteItem action"
    )
    [refused] = gate.take_refusals()
    assert (refused.principal, refused.action, refused.resource) == ("Fn", "dynamodb:DeleteItem", TABLE)
    assert gate.take_refusals() == []


def test_the_harness_and_unsigned_requests_pass_and_unknown_keys_are_unrecognised() -> None:
    gate = IamGate()
    gate.add(_principal(), policy(allow("dynamodb:GetItem", TABLE)))
    assert gate.check_request(_signed(HARNESS_ACCESS_KEY, "DynamoDB_20120810.DeleteTable"), b"{}") is None
    assert gate.check_request({}, b"{}") is None
    refusal = gate.check_request(_signed("AKIASTRANGER", "DynamoDB_20120810.GetItem"), b"{}")
    assert refusal is not None and refusal.code == "UnrecognizedClientException"


def test_a_state_machines_invocation_is_its_roles_and_its_task_tokens_are_remembered() -> None:
    gate = IamGate()
    machine = Principal(
        "Workflow", "WfRole", "arn", "local-Workflow", "ASIAWF", "s", "t", state_machine_arn=MACHINE
    )
    steps = "arn:aws:lambda:us-east-1:123456789012:function:local-Steps"
    gate.add(machine, policy(allow("lambda:InvokeFunction", "arn:aws:lambda:*:*:function:local-Steps*")))
    gate.act_for("ak", machine)
    assert gate.check_invoke(_signed("ak", ""), steps, {"task_token": "tok-9"}) is None
    assert gate.resolver.state_machine_of("tok-9") == MACHINE
    refusal = gate.check_invoke(_signed("ak", ""), steps.replace("Steps", "Other"), {})
    assert refusal is not None and "lambda:InvokeFunction" in refusal.message


def test_function_credentials_are_the_running_functions_else_the_harnesss() -> None:
    credentials = FunctionCredentials()
    assert credentials.get_frozen_credentials().access_key == HARNESS_ACCESS_KEY
    token = CURRENT_PRINCIPAL.set(_principal(key="ASIAONE"))
    try:
        frozen = credentials.get_frozen_credentials()
        assert (frozen.access_key, frozen.secret_key, frozen.token) == ("ASIAONE", "s", "t")
        assert credentials.access_key == "ASIAONE"
    finally:
        CURRENT_PRINCIPAL.reset(token)
    assert credentials.access_key == HARNESS_ACCESS_KEY
    assert boto3  # the local stack installs these credentials in boto3's default session
