"""template.yaml, read the way the local stack needs it: routes, functions, the table, the stream mapping.

Everything the local stack emulates is derived from the SAM template, so local routes, API key rules,
gateway responses, timeouts and stream filters cannot drift from what is deployed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"

Template = dict[str, Any]


class TemplateError(ValueError):
    """template.yaml does not hold what the local stack needs (the message says what and where)."""


class _CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A SafeLoader that reads CloudFormation's short tags (`!Ref X` → {"Ref": "X"}, `!Sub` → Fn::Sub, …)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path | str = TEMPLATE_PATH) -> Template:
    with open(path, encoding="utf-8") as handle:
        loaded = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(loaded, dict) or not isinstance(loaded.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return loaded


def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if isinstance(resource, dict) and resource.get("Type") == resource_type
    }


def _function_globals(template: Template) -> dict[str, Any]:
    globals_ = template.get("Globals") or {}
    function: dict[str, Any] = globals_.get("Function") or {}
    return function


def _api_globals(template: Template) -> dict[str, Any]:
    globals_ = template.get("Globals") or {}
    api: dict[str, Any] = globals_.get("Api") or {}
    return api


# --- functions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function as the local stack runs it: `functions.<folder>.app.lambda_handler`."""

    logical_id: str
    module: str
    handler: str
    timeout_seconds: float
    memory_mb: int
    code_uri: str
    # ReservedConcurrentExecutions: at most this many environments at once; None: the local default.
    reserved_concurrency: int | None = None


def function_specs(
    template: Template, parameters: Mapping[str, str] | None = None
) -> dict[str, FunctionSpec]:
    """Each function's spec; `parameters` override the template's defaults where a property is a Ref."""
    defaults = _function_globals(template)
    values = parameter_values(template, parameters)
    specs = {}
    for logical_id, resource in resources(template, "AWS::Serverless::Function").items():
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        handler = properties.get("Handler", defaults.get("Handler"))
        if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
            raise TemplateError(f"{logical_id}: needs a local CodeUri and a module.function Handler")
        handler_module, _, handler_name = handler.rpartition(".")
        package = ".".join(part for part in code_uri.strip("/").split("/") if part)
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            module=f"{package}.{handler_module}",
            handler=handler_name,
            timeout_seconds=float(properties.get("Timeout", defaults.get("Timeout", 3))),
            memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
            code_uri=code_uri,
            reserved_concurrency=_reserved_concurrency(properties, defaults, values),
        )
    return specs


def _reserved_concurrency(
    properties: Mapping[str, Any], defaults: Mapping[str, Any], parameters: Mapping[str, str]
) -> int | None:
    value = properties.get("ReservedConcurrentExecutions", defaults.get("ReservedConcurrentExecutions"))
    if (name := _ref(value)) is not None:
        value = parameters[name]
    return None if value is None else int(value)


def function_environment(template: Template) -> dict[str, Any]:
    """Globals.Function.Environment.Variables, unresolved (literal strings, or {"Ref": ...})."""
    environment = _function_globals(template).get("Environment") or {}
    variables: dict[str, Any] = environment.get("Variables") or {}
    return dict(variables)


def parameter_default(template: Template, name: str) -> str | None:
    parameter = (template.get("Parameters") or {}).get(name)
    if not isinstance(parameter, dict) or "Default" not in parameter:
        return None
    return str(parameter["Default"])


def parameter_values(template: Template, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every parameter's value: its default, unless `overrides` names it."""
    values = {}
    for name in template.get("Parameters") or {}:
        default = parameter_default(template, name)
        if default is not None:
            values[name] = default
    values.update(overrides or {})
    return values


def conditions(template: Template, parameters: Mapping[str, str] | None = None) -> dict[str, bool]:
    """The template's Conditions, decided with `parameters` (else the defaults): Fn::Equals, Fn::Not,
    Fn::And, Fn::Or, Condition, over literals and Refs of parameters."""
    values = parameter_values(template, parameters)
    definitions: Mapping[str, Any] = template.get("Conditions") or {}
    decided: dict[str, bool] = {}

    def scalar(value: Any) -> str:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            try:
                return values[str(value["Ref"])]
            except KeyError:
                raise TemplateError(f"condition: no value for parameter {value['Ref']}") from None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise TemplateError(f"condition: cannot decide {value!r} locally")

    def decide(value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1:
            [(function, argument)] = value.items()
            if function == "Condition":
                return condition(str(argument))
            if function == "Fn::Equals":
                return scalar(argument[0]) == scalar(argument[1])
            if function == "Fn::Not":
                return not decide(argument[0])
            if function == "Fn::And":
                return all(decide(item) for item in argument)
            if function == "Fn::Or":
                return any(decide(item) for item in argument)
        raise TemplateError(f"condition: cannot decide {value!r} locally")

    def condition(name: str) -> bool:
        if name not in decided:
            if name not in definitions:
                raise TemplateError(f"no condition {name} in the template")
            decided[name] = decide(definitions[name])
        return decided[name]

    for name in definitions:
        condition(name)
    return decided


_NO_VALUE = object()


def choose(value: Any, decided: Mapping[str, bool]) -> Any:
    """`value` with each Fn::If replaced by its chosen branch; a `!Ref AWS::NoValue` list item or map
    entry is left out (as CloudFormation does)."""

    def walk(item: Any) -> Any:
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            name, when_true, when_false = item["Fn::If"]
            if name not in decided:
                raise TemplateError(f"Fn::If names an unknown condition {name}")
            return walk(when_true if decided[name] else when_false)
        if isinstance(item, dict) and item == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if isinstance(item, dict):
            walked = {key: walk(child) for key, child in item.items()}
            return {key: child for key, child in walked.items() if child is not _NO_VALUE}
        if isinstance(item, list):
            return [child for child in (walk(c) for c in item) if child is not _NO_VALUE]
        return item

    chosen = walk(value)
    return None if chosen is _NO_VALUE else chosen


def substitute(value: Any, names: Mapping[str, str]) -> str:
    """A literal, Ref, Fn::Sub (both forms), Fn::Join, Fn::Select over Fn::Split, resolved with `names`."""
    resolved = _evaluate(value, names)
    if not isinstance(resolved, str):
        raise TemplateError(f"{value!r} is a list, not a string")
    return resolved


def _evaluate(value: Any, names: Mapping[str, str]) -> str | list[str]:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        try:
            return names[str(value["Ref"])]
        except KeyError:
            raise TemplateError(f"no local value for Ref {value['Ref']}") from None
    if isinstance(value, dict) and len(value) == 1:
        [(function, argument)] = value.items()
        if function == "Fn::Sub":
            return _sub(argument, names)
        if function == "Fn::Split" and isinstance(argument, list) and len(argument) == 2:
            return substitute(argument[1], names).split(str(argument[0]))
        if function == "Fn::Select" and isinstance(argument, list) and len(argument) == 2:
            items = _evaluate(argument[1], names)
            if isinstance(items, list) and int(argument[0]) < len(items):
                return items[int(argument[0])]
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            return str(argument[0]).join(substitute(part, names) for part in argument[1])
    raise TemplateError(f"cannot resolve {value!r} locally")


def _sub(argument: Any, names: Mapping[str, str]) -> str:
    if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
        text, variables = argument[0], {k: substitute(v, names) for k, v in argument[1].items()}
        names = {**names, **variables}
    else:
        text = argument
    if not isinstance(text, str):
        raise TemplateError(f"cannot resolve Fn::Sub {argument!r} locally")

    def _name(match: re.Match[str]) -> str:
        try:
            return names[match.group(1)]
        except KeyError:
            raise TemplateError(f"no local value for ${{{match.group(1)}}}") from None

    return re.sub(r"\$\{([^}!]+)\}", _name, text)


# --- API -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteSpec:
    """One Api event of a function: the resource path (with {param} placeholders) and method."""

    function: str
    event: str
    path: str
    method: str  # upper case; "ANY" for SAM's `any`
    api_key_required: bool
    rest_api: str | None
    # "AWS_IAM": a SigV4 signature by a principal whose policies allow execute-api:Invoke; else "NONE".
    authorization: str = "NONE"


@dataclass(frozen=True)
class GatewayResponseSpec:
    status_code: int | None
    headers: Mapping[str, str]
    templates: Mapping[str, str]


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str | None
    stage: str
    routes: tuple[RouteSpec, ...]
    gateway_responses: Mapping[str, GatewayResponseSpec] = field(default_factory=dict)


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return str(value["Ref"])
    return None


# The security schemes of the API's OpenAPI definition, by what API Gateway makes of them.
SIGV4_AUTHTYPE = "awsSigv4"


def _definition_security(
    api_properties: Mapping[str, Any], decided: Mapping[str, bool]
) -> dict[tuple[str, str], tuple[bool, bool]]:
    """(method, path) → (SigV4 required, API key required), from the DefinitionBody's per-operation
    `security` (its Fn::If chosen): a requirement naming the awsSigv4 scheme is IAM authorization, one
    naming an apiKey scheme on header x-api-key is the API key."""
    body = choose(api_properties.get("DefinitionBody") or {}, decided)
    schemes = ((body.get("components") or {}).get("securitySchemes")) or {}
    sigv4 = {n for n, s in schemes.items() if s.get("x-amazon-apigateway-authtype") == SIGV4_AUTHTYPE}
    keys = {
        n
        for n, s in schemes.items()
        if n not in sigv4 and s.get("type") == "apiKey" and str(s.get("name", "")).lower() == "x-api-key"
    }
    routes = {}
    for path, item in (body.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            security = (operation or {}).get("security")
            if security is None:
                continue
            if len(security) > 1:
                raise TemplateError(f"{method} {path}: alternative security requirements are not emulated")
            names = set(security[0]) if security else set()
            unknown = names - sigv4 - keys
            if unknown:
                raise TemplateError(f"{method} {path}: unknown security schemes {sorted(unknown)}")
            routes[method.upper(), str(path)] = (bool(names & sigv4), bool(names & keys))
    return routes


def api_spec(template: Template, parameters: Mapping[str, str] | None = None) -> ApiSpec:
    """The one REST API's routes (from each function's Api events, authorization from the API's
    DefinitionBody with `parameters`, else the defaults), stage and gateway responses."""
    apis = resources(template, "AWS::Serverless::Api")
    if len(apis) > 1:
        raise TemplateError("the local gateway emulates one AWS::Serverless::Api; the template has several")
    api_id, api = next(iter(apis.items()), (None, {}))
    api_properties = {**_api_globals(template), **(api.get("Properties") or {})}
    api_auth = api_properties.get("Auth") or {}
    default_key_required = bool(api_auth.get("ApiKeyRequired", False))
    defined = _definition_security(api_properties, conditions(template, parameters))
    routes = []
    for logical_id, resource in resources(template, "AWS::Serverless::Function").items():
        events = (resource.get("Properties") or {}).get("Events") or {}
        for event_name, event in events.items():
            if not isinstance(event, dict) or event.get("Type") != "Api":
                continue
            properties = event.get("Properties") or {}
            rest_api = _ref(properties.get("RestApiId"))
            if rest_api is not None and rest_api != api_id:
                raise TemplateError(f"{logical_id}.{event_name}: RestApiId {rest_api} is not {api_id}")
            auth = properties.get("Auth") or {}
            key_required = bool(auth.get("ApiKeyRequired", default_key_required if rest_api else False))
            path, method = properties.get("Path"), properties.get("Method")
            if not isinstance(path, str) or not isinstance(method, str):
                raise TemplateError(f"{logical_id}.{event_name}: Api events need Path and Method")
            sigv4, defined_key = defined.get((method.upper(), path), (False, key_required))
            routes.append(
                RouteSpec(
                    logical_id,
                    event_name,
                    path,
                    method.upper(),
                    defined_key,
                    rest_api,
                    "AWS_IAM" if sigv4 else "NONE",
                )
            )
    responses = {}
    for response_type, response in (api_properties.get("GatewayResponses") or {}).items():
        status = response.get("StatusCode")
        headers = ((response.get("ResponseParameters") or {}).get("Headers")) or {}
        responses[str(response_type)] = GatewayResponseSpec(
            status_code=None if status is None else int(status),
            # SAM writes static header values in single quotes: "'value'".
            headers={str(k): str(v).strip("'") for k, v in headers.items() if isinstance(v, str)},
            templates={str(k): str(v) for k, v in (response.get("ResponseTemplates") or {}).items()},
        )
    return ApiSpec(
        logical_id=api_id,
        stage=str(api_properties.get("StageName", "Prod")),
        routes=tuple(routes),
        gateway_responses=responses,
    )


# --- table and stream ------------------------------------------------------------------------------------


def table_resource(template: Template, logical_id: str = "RefundsTable") -> dict[str, Any]:
    resource = template["Resources"].get(logical_id)
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::DynamoDB::Table":
        raise TemplateError(f"{logical_id} is not an AWS::DynamoDB::Table in the template")
    properties: dict[str, Any] = resource.get("Properties") or {}
    return properties


@dataclass(frozen=True)
class StreamMappingSpec:
    """The AWS::Lambda::EventSourceMapping from the table's stream to a function."""

    logical_id: str
    function: str
    table: str
    starting_position: str
    batch_size: int
    maximum_retry_attempts: int
    bisect_on_error: bool
    report_batch_item_failures: bool
    filter_patterns: tuple[Mapping[str, Any], ...]


def stream_mapping(template: Template, table: str = "RefundsTable") -> StreamMappingSpec:
    for logical_id, resource in resources(template, "AWS::Lambda::EventSourceMapping").items():
        properties = resource.get("Properties") or {}
        source = properties.get("EventSourceArn")
        if source != {"Fn::GetAtt": [table, "StreamArn"]}:
            continue
        function = _ref(properties.get("FunctionName"))
        if function is None:
            raise TemplateError(f"{logical_id}: FunctionName must be !Ref of a function in the template")
        filters = ((properties.get("FilterCriteria") or {}).get("Filters")) or []
        patterns = []
        for entry in filters:
            pattern = json.loads(entry["Pattern"]) if isinstance(entry.get("Pattern"), str) else None
            if not isinstance(pattern, dict):
                raise TemplateError(f"{logical_id}: each filter needs a JSON object Pattern")
            patterns.append(pattern)
        return StreamMappingSpec(
            logical_id=logical_id,
            function=function,
            table=table,
            starting_position=str(properties.get("StartingPosition", "TRIM_HORIZON")),
            batch_size=int(properties.get("BatchSize", 100)),
            # -1 (the default) means: retry until the record expires.
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            bisect_on_error=bool(properties.get("BisectBatchOnFunctionError", False)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (properties.get("FunctionResponseTypes") or []),
            filter_patterns=tuple(patterns),
        )
    raise TemplateError(f"no event source mapping reads {table}'s stream")
