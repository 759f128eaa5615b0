"""What a reviewer checks in template.yaml, in the CloudFormation SAM makes of it, and in events/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds.config import LOCAL_ONLY_VARIABLES, load_settings
from amazon_pay_refunds.money import InvalidAmount, parse_amount
from tests.support.template import resources_of_type as _resources_of_type
from tests.support.template import template_functions as _functions

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
EVENTS = REPO / "events"

STOREFRONT_ROUTES = {
    ("post", "/refunds"),
    ("get", "/refunds/{refund_id}"),
    ("get", "/captures/{amazon_capture_id}"),
    ("get", "/charges/{amazon_charge_id}"),
    ("post", "/refunds/{refund_id}/resolve"),
}
CONTRACT_ENVIRONMENT = {
    "REFUNDS_TABLE": {"Ref": "RefundsTable"},
    "EVENT_BUS_NAME": {"Ref": "RefundsBus"},
    "AMAZON_PAY_REGION": {"Ref": "AmazonPayRegion"},
    "AMAZON_PAY_SANDBOX": {"Ref": "AmazonPaySandbox"},
    "AMAZON_PAY_CREDENTIALS_SECRET": {"Ref": "CredentialsSecret"},
    "SELLER_IDS": {"Ref": "SellerIds"},
    "IPN_TOPIC_ARNS": {"Ref": "IpnTopicArns"},
    "RETRY_DELAY_SECONDS": {"Ref": "RetryDelaySeconds"},
    "MAX_PROCESSING_FAILURE_RETRIES": {"Ref": "MaxProcessingFailureRetries"},
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
}
# Actions AWS only grants on Resource "*" (no resource-level permissions); the logs:* ones are what Step
# Functions needs to deliver a state machine's logs to CloudWatch Logs.
WILDCARD_ONLY_ACTIONS = {
    "dynamodb:ListStreams",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# Managed policies SAM attaches itself: CloudWatch Logs and, with Tracing: Active, X-Ray.
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
LOCAL_SETTING_WORDS = re.compile(
    r"simulat|local|127\.0\.0\.1|localhost|certificate.?authorit|\bca\b|_ca_|ca_pem|endpoint", re.IGNORECASE
)


# --- loading -----------------------------------------------------------------------------------------


def _statements(policies: list[Any]) -> list[dict[str, Any]]:
    """Every statement, a conditional one (Fn::If [condition, statement, AWS::NoValue]) included."""
    statements: list[dict[str, Any]] = []
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            statements.extend(policy["Statement"])
        elif isinstance(policy, dict) and "PolicyDocument" in policy:
            statements.extend(policy["PolicyDocument"]["Statement"])
    unconditional = []
    for statement in statements:
        if set(statement) == {"Fn::If"}:
            _, when_true, when_false = statement["Fn::If"]
            assert when_false == {"Ref": "AWS::NoValue"}, statement
            unconditional.append(when_true)
        else:
            unconditional.append(statement)
    return unconditional


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _api_routes(function: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (event["Properties"]["Method"].lower(), event["Properties"]["Path"]): event["Properties"]
        for event in function.get("Events", {}).values()
        if event["Type"] == "Api"
    }


def _function_for_folder(template: dict[str, Any], folder: str) -> dict[str, Any]:
    for properties in _functions(template).values():
        if properties["CodeUri"].rstrip("/") == f"functions/{folder}":
            return properties
    raise AssertionError(f"events/{folder}/ names no function of template.yaml")


def _event_files() -> list[Path]:
    return sorted(EVENTS.glob("*/*.json"))


def _load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


# --- functions and layer ------------------------------------------------------------------------------


def test_every_function_runs_python313_on_arm64_with_the_shared_layer_and_tracing(
    template: dict[str, Any],
) -> None:
    functions = _functions(template)
    assert set(functions) >= {"RefundApiFunction", "IpnHandlerFunction", "EventPublisherFunction"}
    for name, properties in functions.items():
        assert properties["Runtime"] == "python3.13", name
        assert properties["Architectures"] == ["arm64"], name
        assert {"Ref": "SharedLayer"} in properties["Layers"], name
        assert properties["Tracing"] == "Active", name
        assert properties["Handler"] == "app.lambda_handler", name


def test_shared_layer_is_built_from_the_pinned_requirements_for_python313_arm64(
    template: dict[str, Any],
) -> None:
    layer = template["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert (REPO / "layers" / "shared" / "requirements.txt").is_file()
    # Powertools comes from the layer's requirements, never from a public layer ARN.
    for properties in _functions(template).values():
        assert all(isinstance(layer, dict) for layer in properties["Layers"]), properties["Layers"]


def test_functions_live_in_their_own_folders(template: dict[str, Any]) -> None:
    functions = _functions(template)
    assert functions["RefundApiFunction"]["CodeUri"] == "functions/refund_api/"
    assert functions["IpnHandlerFunction"]["CodeUri"] == "functions/ipn_handler/"
    assert functions["EventPublisherFunction"]["CodeUri"] == "functions/event_publisher/"


def test_every_function_gets_the_spec_configuration(template: dict[str, Any]) -> None:
    for name, properties in _functions(template).items():
        variables = properties["Environment"]["Variables"]
        for variable, value in CONTRACT_ENVIRONMENT.items():
            assert variables.get(variable) == value, (name, variable)
        assert variables["POWERTOOLS_SERVICE_NAME"] == "amazon-pay-refunds"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"]


def test_the_environment_from_parameter_defaults_and_their_extremes_loads_inside_lambda(
    template: dict[str, Any],
) -> None:
    """Every value the template may deploy is one the code accepts (the code is as strict inside Lambda)."""
    parameters = template["Parameters"]
    values = {name: str(spec.get("Default", "")) for name, spec in parameters.items()}
    values |= {"SellerIds": "A1EXAMPLE", "RefundsTable": "refunds", "RefundsBus": "bus"}
    values |= {"CredentialsSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"}
    variables = _functions(template)["RefundApiFunction"]["Environment"]["Variables"]

    def environment(overrides: dict[str, str]) -> dict[str, str]:
        resolved = {**values, **overrides}
        env = {"AWS_LAMBDA_FUNCTION_NAME": "RefundApiFunction"}
        for variable, value in variables.items():
            env[variable] = resolved[value["Ref"]] if isinstance(value, dict) else str(value)
        return env

    defaults = load_settings(environment({}))
    assert defaults.retry_delay_seconds == 90
    assert defaults.max_processing_failure_retries == 1
    assert defaults.amazon_pay_sandbox is True
    for name in ("RetryDelaySeconds", "MaxProcessingFailureRetries"):
        for bound in ("MinValue", "MaxValue"):
            load_settings(environment({name: str(parameters[name][bound])}))
    for region in parameters["AmazonPayRegion"]["AllowedValues"]:
        assert load_settings(environment({"AmazonPayRegion": region})).amazon_pay_region == region


# --- parameters ---------------------------------------------------------------------------------------


def test_parameters_only_allow_what_the_spec_allows(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["AmazonPayRegion"]["AllowedValues"] == ["us", "eu", "uk", "de", "jp"]
    assert parameters["AmazonPaySandbox"]["AllowedValues"] == ["true", "false"]
    assert parameters["AmazonPaySandbox"]["Default"] == "true"
    delay = parameters["RetryDelaySeconds"]
    assert (delay["MinValue"], delay["MaxValue"], delay["Default"]) == (60, 120, 90)
    assert parameters["MaxProcessingFailureRetries"]["Default"] == 1
    assert parameters["AllowAmazonOverRefund"]["Default"] == "false"
    assert "Default" not in parameters["SellerIds"], "the operator must name the sellers"


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("", True), ("arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T", True),
     ("arn:aws:sns:eu-west-1:291180941288:A1,arn:aws:sns:us-east-1:291180941288:B2", True),
     ("arn:aws:sns:eu-west-1:291180941288:A1, arn:aws:sns:us-east-1:291180941288:B2", False),
     ("arn:aws:sqs:eu-west-1:291180941288:A1", False), ("*", False), ("https://sns.example/topic", False),
     ("arn:aws-cn:sns:cn-north-1:291180941288:A1", False),
     ("arn:aws-us-gov:sns:us-gov-west-1:291180941288:A1", False)],
)  # fmt: skip
def test_ipn_topic_arns_may_be_empty_or_a_list_of_sns_topics(
    template: dict[str, Any], value: str, allowed: bool
) -> None:
    pattern = template["Parameters"]["IpnTopicArns"]["AllowedPattern"]
    assert template["Parameters"]["IpnTopicArns"]["Default"] == ""
    assert (re.fullmatch(pattern, value) is not None) is allowed


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("A1EXAMPLE", True), ("AOPZVV2STP28T,A1EXAMPLE", True), ("", False), ("A1EXAMPLE, A2", False),
     ("a1example", False), ("*", False)],
)  # fmt: skip
def test_seller_ids_are_a_comma_separated_list(template: dict[str, Any], value: str, allowed: bool) -> None:
    pattern = template["Parameters"]["SellerIds"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is allowed


def test_no_parameter_or_variable_can_switch_on_local_or_test_settings(template: dict[str, Any]) -> None:
    exposed: list[str] = []
    for name, spec in template["Parameters"].items():
        exposed += [name, json.dumps(spec.get("Description", "")), json.dumps(spec.get("Default", ""))]
    for properties in _functions(template).values():
        for variable, value in properties.get("Environment", {}).get("Variables", {}).items():
            exposed += [variable, json.dumps(value)]
            assert variable not in LOCAL_ONLY_VARIABLES
    offending = [text for text in exposed if LOCAL_SETTING_WORDS.search(text)]
    assert offending == []


def test_the_template_holds_no_secret_value(template: dict[str, Any]) -> None:
    secret = template["Resources"]["CredentialsSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert not {"SecretString", "GenerateSecretString"} & set(secret["Properties"])
    assert secret["DeletionPolicy"] == "Retain"
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text), "an access key id in the template"
    assert not re.search(r"(secret_key|access_key|mws_auth_token)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{8,}", text)


# --- table, bus -----------------------------------------------------------------------------------------


def test_refunds_table_matches_the_key_design(template: dict[str, Any]) -> None:
    table = template["Resources"]["RefundsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    attributes = sorted((d["AttributeName"], d["AttributeType"]) for d in properties["AttributeDefinitions"])
    assert attributes == [("gsi1pk", "S"), ("gsi1sk", "S"), ("pk", "S"), ("sk", "S")]
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert properties["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "gsi1",
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_refunds_table_is_durable(template: dict[str, Any]) -> None:
    table = template["Resources"]["RefundsTable"]
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_refunds_bus_is_an_event_bus_of_this_stack(template: dict[str, Any]) -> None:
    assert template["Resources"]["RefundsBus"]["Type"] == "AWS::Events::EventBus"


# --- API ---------------------------------------------------------------------------------------------


def test_api_has_a_throttled_usage_plan_and_tracing(template: dict[str, Any]) -> None:
    api = template["Resources"]["RefundsApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    auth = api["Properties"]["Auth"]
    assert auth["UsagePlan"]["CreateUsagePlan"] == "PER_API"
    assert auth["UsagePlan"]["Throttle"] == {
        "RateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "BurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    assert api["Properties"]["TracingEnabled"] is True


def test_every_route_is_a_function_event_on_the_api(template: dict[str, Any]) -> None:
    functions = _functions(template)
    storefront = _api_routes(functions["RefundApiFunction"])
    assert set(storefront) == STOREFRONT_ROUTES
    ipn = _api_routes(functions["IpnHandlerFunction"])
    assert set(ipn) == {("post", "/ipn")}
    for route, event in {**storefront, **ipn}.items():
        assert event["RestApiId"] == {"Ref": "RefundsApi"}, route
        # Who may call a route is the API definition's (below), never an event's own Auth.
        assert "Auth" not in event, route


def _deployed_security(translated: dict[str, Any], mode: str) -> dict[tuple[str, str], list[Any]]:
    """Each route's OpenAPI security as deployed with StorefrontAuthorization `mode` (its Fn::If chosen)."""
    assert translated["Conditions"]["StorefrontUsesIam"] == {
        "Fn::Equals": [{"Ref": "StorefrontAuthorization"}, "AWS_IAM"]
    }
    paths = translated["Resources"]["RefundsApi"]["Properties"]["Body"]["paths"]
    routes = {}
    for path, item in paths.items():
        for method, operation in item.items():
            security = operation["security"]
            if isinstance(security, dict):
                condition, when_iam, when_key = security["Fn::If"]
                assert condition == "StorefrontUsesIam", (method, path)
                security = when_iam if mode == "AWS_IAM" else when_key
            assert "x-amazon-apigateway-integration" in operation, (method, path)
            routes[method, path] = security
    return routes


def test_storefront_authorization_defaults_to_aws_iam(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["StorefrontAuthorization"]
    assert parameter["Default"] == "AWS_IAM"
    assert parameter["AllowedValues"] == ["AWS_IAM", "API_KEY"]


@pytest.mark.parametrize("mode", ["AWS_IAM", "API_KEY"])
def test_deployed_routes_authorizers(translated: dict[str, Any], mode: str) -> None:
    """Storefront routes: SigV4 and the usage plan's key (AWS_IAM), or the key alone (API_KEY); resolve:
    SigV4 only, in both modes; /ipn: none (SNS signs its messages)."""
    body = translated["Resources"]["RefundsApi"]["Properties"]["Body"]
    schemes = body["components"]["securitySchemes"]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert schemes["sigv4"]["type"] == "apiKey"
    assert schemes["sigv4"]["name"] == "Authorization"
    assert schemes["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    routes = _deployed_security(translated, mode)
    assert set(routes) == STOREFRONT_ROUTES | {("post", "/ipn")}
    storefront: list[dict[str, list[str]]] = (
        [{"sigv4": [], "api_key": []}] if mode == "AWS_IAM" else [{"api_key": []}]
    )
    for route in STOREFRONT_ROUTES - {("post", "/refunds/{refund_id}/resolve")}:
        assert routes[route] == storefront, route
    assert routes["post", "/refunds/{refund_id}/resolve"] == [{"sigv4": []}]
    assert routes["post", "/ipn"] == []


def _execute_api_arns(policy: dict[str, Any], effect: str) -> set[str]:
    arns = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if statement["Effect"] != effect:
            continue
        assert statement["Action"] == "execute-api:Invoke", statement
        for resource in _as_list(statement["Resource"]):
            text = resource["Fn::Sub"]
            prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RefundsApi}/"
            assert text.startswith(prefix), text
            arns.add(text[len(prefix) :])
    return arns


def _matches(pattern: str, route: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), route) is not None


def test_storefront_policy_invokes_exactly_its_routes_and_never_resolve(template: dict[str, Any]) -> None:
    policy = template["Resources"]["StorefrontPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    allowed = _execute_api_arns(policy, "Allow")
    assert allowed == {"v1/POST/refunds", "v1/GET/refunds/*", "v1/GET/captures/*", "v1/GET/charges/*"}
    resolve = "v1/POST/refunds/ord-1/resolve"
    assert not any(_matches(pattern, resolve) for pattern in allowed)
    assert any(_matches(pattern, resolve) for pattern in _execute_api_arns(policy, "Deny"))
    for route in (
        "v1/POST/refunds",
        "v1/GET/refunds/ord-1",
        "v1/GET/captures/S01-1-1-C1",
        "v1/GET/charges/S01-1",
    ):
        assert any(_matches(pattern, route) for pattern in allowed), route
    assert template["Outputs"]["StorefrontPolicyArn"]["Value"] == {"Ref": "StorefrontPolicy"}


def test_operator_policy_invokes_resolve_only(template: dict[str, Any]) -> None:
    policy = template["Resources"]["OperatorPolicy"]
    assert _execute_api_arns(policy, "Allow") == {"v1/POST/refunds/*/resolve"}
    assert _execute_api_arns(policy, "Deny") == set()
    assert template["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": "OperatorPolicy"}


# The access log's fields (docs/OPERATIONS.md, "API access log"): who called, from where, what, the outcome.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "sourceIp": "$context.identity.sourceIp",
    "userArn": "$context.identity.userArn",
    "caller": "$context.identity.caller",
    "apiKeyId": "$context.identity.apiKeyId",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLatency": "$context.responseLatency",
}


def test_stage_access_log_is_json_with_the_caller_and_never_the_key(template: dict[str, Any]) -> None:
    setting = template["Resources"]["RefundsApi"]["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    record = json.loads(setting["Format"])
    for field, variable in ACCESS_LOG_FIELDS.items():
        assert record[field] == variable, field
    assert "$context.identity.apiKey" not in setting["Format"].replace("$context.identity.apiKeyId", "")
    group = template["Resources"]["ApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "ApiAccessLogRetentionInDays"}
    assert group["KmsKeyId"] == {
        "Fn::If": ["UseCustomerManagedKey", {"Fn::GetAtt": ["DataKey", "Arn"]}, {"Ref": "AWS::NoValue"}]
    }


def test_deployed_stage_writes_the_access_log(translated: dict[str, Any]) -> None:
    [stage] = _resources_of_type(translated, "AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert json.loads(setting["Format"])["userArn"] == "$context.identity.userArn"


# --- IAM ---------------------------------------------------------------------------------------------


def _assert_no_wildcards(statements: list[dict[str, Any]], where: str) -> None:
    for statement in statements:
        actions = set(_as_list(statement["Action"]))
        assert not any("*" in action for action in actions), (where, actions)
        if "*" in _as_list(statement["Resource"]):
            assert actions <= WILDCARD_ONLY_ACTIONS, (where, actions)


def test_function_policies_name_their_resources(template: dict[str, Any]) -> None:
    for name, properties in _functions(template).items():
        policies = properties.get("Policies", [])
        assert all(isinstance(policy, dict) and "Statement" in policy for policy in policies), name
        _assert_no_wildcards(_statements(policies), name)


def test_generated_roles_have_no_wildcard_resources_beyond_what_aws_requires(
    translated: dict[str, Any],
) -> None:
    roles = _resources_of_type(translated, "AWS::IAM::Role")
    assert roles
    for name, role in roles.items():
        _assert_no_wildcards(_statements(role["Properties"].get("Policies", [])), name)
        assert set(role["Properties"].get("ManagedPolicyArns", [])) <= ALLOWED_MANAGED_POLICIES, name


# --- event publishing -------------------------------------------------------------------------------


def test_event_publisher_consumes_the_table_stream_with_partial_failures_and_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    mappings = _resources_of_type(template, "AWS::Lambda::EventSourceMapping")
    [mapping] = [m["Properties"] for m in mappings.values()]
    assert mapping["FunctionName"] == {"Ref": "EventPublisherFunction"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["RefundsTable", "StreamArn"]}
    assert mapping["StartingPosition"] in ("LATEST", "TRIM_HORIZON")
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 <= mapping["MaximumRetryAttempts"] <= 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    dead_letter = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    queue_name = dead_letter["Fn::GetAtt"][0]
    assert template["Resources"][queue_name]["Type"] == "AWS::SQS::Queue"


def test_outputs_name_the_api_its_key_the_table_and_the_bus(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert "${RefundsApi}.execute-api" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["ApiKeyId"]["Value"] == {"Ref": "RefundsApiApiKey"}
    assert outputs["RefundsTableName"]["Value"] == {"Ref": "RefundsTable"}
    assert outputs["RefundsBusName"]["Value"] == {"Ref": "RefundsBus"}


def test_generated_resources_the_outputs_name_exist(translated: dict[str, Any]) -> None:
    assert translated["Resources"]["RefundsApiApiKey"]["Type"] == "AWS::ApiGateway::ApiKey"
    assert translated["Resources"]["RefundsApiUsagePlan"]["Type"] == "AWS::ApiGateway::UsagePlan"
    stages = _resources_of_type(translated, "AWS::ApiGateway::Stage")
    assert [stage["Properties"]["StageName"] for stage in stages.values()] == ["v1"]


# --- sample events -------------------------------------------------------------------------------------


def test_sample_events_exist_for_every_route_and_the_stream() -> None:
    names = {path.relative_to(EVENTS).as_posix() for path in _event_files()}
    assert names >= {
        "refund_api/post_refunds.json",
        "refund_api/post_refunds_invalid_amount.json",
        "refund_api/get_refund.json",
        "refund_api/get_capture.json",
        "refund_api/post_resolve.json",
        "ipn_handler/post_ipn_refund_completed.json",
        "event_publisher/refund_requested_to_pending.json",
    }
    routes = {
        (event["httpMethod"].lower(), event["resource"])
        for event in map(_load_event, names)
        if "httpMethod" in event
    }
    assert routes == STOREFRONT_ROUTES | {("post", "/ipn")}


@pytest.mark.parametrize("path", _event_files(), ids=lambda path: path.relative_to(EVENTS).as_posix())
def test_each_api_sample_event_matches_a_route_of_its_function(template: dict[str, Any], path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    function = _function_for_folder(template, path.parent.name)
    if "httpMethod" not in event:
        return
    route = (event["httpMethod"].lower(), event["resource"])
    assert route in _api_routes(function)
    assert event["requestContext"]["resourcePath"] == event["resource"]
    assert event["requestContext"]["httpMethod"] == event["httpMethod"]
    expected_path = event["resource"]
    for name, value in (event["pathParameters"] or {}).items():
        expected_path = expected_path.replace("{" + name + "}", value)
    assert "{" not in expected_path
    assert event["path"] == expected_path
    assert event["requestContext"]["path"] == "/v1" + expected_path
    if event["httpMethod"] == "GET":
        assert event["body"] is None
    elif event["resource"] != "/ipn":
        assert isinstance(json.loads(event["body"]), dict)
        assert event["headers"]["Content-Type"] == "application/json"


def test_create_refund_samples_hold_a_valid_and_an_invalid_amount() -> None:
    valid = json.loads(_load_event("refund_api/post_refunds.json")["body"])
    invalid = json.loads(_load_event("refund_api/post_refunds_invalid_amount.json")["body"])
    assert parse_amount(valid["amount"], valid["currency_code"])
    with pytest.raises(InvalidAmount):
        parse_amount(invalid["amount"], invalid["currency_code"])
    assert {key: value for key, value in invalid.items() if key not in ("amount", "refund_id")} == {
        key: value for key, value in valid.items() if key not in ("amount", "refund_id")
    }


def test_ipn_sample_carries_the_real_amazon_pay_notification_verbatim(fixtures_dir: Path) -> None:
    event = _load_event("ipn_handler/post_ipn_refund_completed.json")
    fixture = (fixtures_dir / "sns" / "amazon-pay-refund-completed-eu-2017.json").read_text(encoding="utf-8")
    assert event["body"] == fixture
    assert event["isBase64Encoded"] is False
    notification = json.loads(fixture)
    headers = event["headers"]
    assert headers["x-amz-sns-message-type"] == notification["Type"]
    assert headers["x-amz-sns-message-id"] == notification["MessageId"]
    assert headers["x-amz-sns-topic-arn"] == notification["TopicArn"]
    assert "x-api-key" not in {name.lower() for name in headers}


def test_stream_sample_is_a_refund_moving_from_requested_to_pending(template: dict[str, Any]) -> None:
    [record] = _load_event("event_publisher/refund_requested_to_pending.json")["Records"]
    assert record["eventSource"] == "aws:dynamodb"
    change = record["dynamodb"]
    view = template["Resources"]["RefundsTable"]["Properties"]["StreamSpecification"]["StreamViewType"]
    assert change["StreamViewType"] == view
    refund_id = change["NewImage"]["refund_id"]["S"]
    assert change["Keys"] == {"pk": {"S": f"REFUND#{refund_id}"}, "sk": {"S": "REFUND"}}
    old, new = change["OldImage"], change["NewImage"]
    assert (old["status"]["S"], new["status"]["S"]) == ("Requested", "Pending")
    assert new["gsi1pk"] == {"S": "OPEN#Pending"}
    assert new["gsi1sk"] == {"S": f"{new['updated_at']['S']}#{refund_id}"}
    assert new["history"]["L"][:-1] == old["history"]["L"]
    appended = new["history"]["L"][-1]["M"]
    assert (appended["from"]["S"], appended["to"]["S"]) == ("Requested", "Pending")
    [attempt] = new["attempts"]["L"]
    assert attempt["M"]["refund_reference_id"] == {"S": f"{refund_id}_1"}
    assert re.fullmatch(r"[A-Za-z0-9-]{1,28}", refund_id)


def test_stream_sample_passes_the_event_source_filter(template: dict[str, Any]) -> None:
    [mapping] = _resources_of_type(template, "AWS::Lambda::EventSourceMapping").values()
    [pattern] = [json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    [record] = _load_event("event_publisher/refund_requested_to_pending.json")["Records"]
    assert record["eventName"] in pattern["eventName"]
    assert record["dynamodb"]["Keys"]["sk"]["S"] in pattern["dynamodb"]["Keys"]["sk"]["S"]
    assert "IPN" not in pattern["dynamodb"]["Keys"]["sk"]["S"]


# --- defence in depth --------------------------------------------------------------------------------


def test_request_and_ipn_functions_have_their_own_reserved_concurrency(template: dict[str, Any]) -> None:
    functions = _functions(template)
    for function, parameter, default in (
        ("RefundApiFunction", "RefundApiReservedConcurrency", 20),
        ("IpnHandlerFunction", "IpnHandlerReservedConcurrency", 10),
    ):
        assert functions[function]["ReservedConcurrentExecutions"] == {"Ref": parameter}, function
        assert template["Parameters"][parameter]["Default"] == default
        assert template["Parameters"][parameter]["MinValue"] >= 1


def _key_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    key = template["Resources"]["DataKey"]
    assert key["Condition"] == "UseCustomerManagedKey"
    assert key["Properties"]["EnableKeyRotation"] is True
    return {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}


USE_ACTIONS = ("kms:decrypt", "kms:encrypt", "kms:generatedatakey", "kms:reencrypt")


def test_data_key_is_used_only_through_secrets_manager_and_dynamodb_of_this_account(
    template: dict[str, Any],
) -> None:
    statements = _key_statements(template)
    admin = statements["AccountAdministersTheKey"]
    assert not any(a.lower().startswith(USE_ACTIONS) for a in admin["Action"]), admin["Action"]
    for sid, statement in statements.items():
        assert statement["Effect"] == "Allow", sid
        if sid == "AccountAdministersTheKey":
            continue
        uses = [a for a in _as_list(statement["Action"]) if a.lower().startswith(USE_ACTIONS)]
        assert uses, sid
        assert "Condition" in statement, sid
    via = statements["UseThroughSecretsManagerAndDynamoDB"]["Condition"]["StringEquals"]
    assert via["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    assert via["kms:ViaService"] == [
        {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
        {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"},
    ]
    logs = statements["ApiAccessLog"]
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    assert list(logs["Condition"]["ArnEquals"]) == ["kms:EncryptionContext:aws:logs:arn"]


def test_secret_and_table_use_the_data_key_unless_the_deployer_chooses_aws_managed_keys(
    template: dict[str, Any],
) -> None:
    assert template["Parameters"]["EncryptionKey"]["Default"] == "CUSTOMER_MANAGED"
    resources = template["Resources"]
    choose = {"Fn::If": ["UseCustomerManagedKey", {"Ref": "DataKey"}, {"Ref": "AWS::NoValue"}]}
    assert resources["CredentialsSecret"]["Properties"]["KmsKeyId"] == choose
    sse = resources["RefundsTable"]["Properties"]["SSESpecification"]
    assert sse["SSEEnabled"] is True
    assert sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyId"] == {
        "Fn::If": ["UseCustomerManagedKey", {"Fn::GetAtt": ["DataKey", "Arn"]}, {"Ref": "AWS::NoValue"}]
    }


def test_every_function_reading_the_secret_or_the_table_may_decrypt_with_the_data_key(
    template: dict[str, Any],
) -> None:
    for name, function in _functions(template).items():
        statements = _statements(function.get("Policies", []))
        resources = {json.dumps(r, sort_keys=True) for s in statements for r in _as_list(s["Resource"])}
        uses_data = any('"CredentialsSecret"' in r or '"RefundsTable"' in r for r in resources)
        key = [s for s in statements if s.get("Resource") == {"Fn::GetAtt": ["DataKey", "Arn"]}]
        if uses_data:
            assert key and "kms:Decrypt" in key[0]["Action"], name
        else:
            assert not key, name


def test_web_acl_rate_limits_ipn_and_the_storefront_routes_per_ip(template: dict[str, Any]) -> None:
    assert template["Parameters"]["WebAclRateLimit"]["Default"] > 0
    acl = template["Resources"]["ApiWebAcl"]
    assert acl["Condition"] == "HasWebAcl"
    [rule] = acl["Properties"]["Rules"]
    assert rule["Name"] == "WebAclRateLimit"
    assert rule["Action"] == {"Block": {}}
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["Limit"] == {"Ref": "WebAclRateLimit"}
    assert rate["AggregateKeyType"] == "IP"
    matches = {
        (m["ByteMatchStatement"]["PositionalConstraint"], m["ByteMatchStatement"]["SearchString"])
        for m in rate["ScopeDownStatement"]["OrStatement"]["Statements"]
    }
    assert matches == {
        ("EXACTLY", "/v1/ipn"),
        ("STARTS_WITH", "/v1/refunds"),
        ("STARTS_WITH", "/v1/captures/"),
        ("STARTS_WITH", "/v1/charges/"),
    }
    association = template["Resources"]["ApiWebAclAssociation"]
    assert association["Condition"] == "HasWebAcl"
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("/restapis/${RefundsApi}/stages/${RefundsApi.Stage}")


def test_each_checkov_skip_gives_its_reason(template: dict[str, Any]) -> None:
    skipped = 0
    for name, resource in template["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "").split()) >= 5, (name, skip["id"])
            skipped += 1
    assert skipped > 0
