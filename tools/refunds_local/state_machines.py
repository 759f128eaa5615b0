"""The template's state machines, created in moto (whose Step Functions engine runs them) as SAM deploys them.

Each AWS::Serverless::StateMachine becomes a moto state machine named `{stack}-{LogicalId}`, its definition
read from `DefinitionUri` with `DefinitionSubstitutions` resolved to the local resources: `!GetAtt F.Arn`
and `!Ref F` of a function to the local function's ARN and name (aws_server.py answers moto's Lambda
`Invoke` for them), anything else as the local stack's names say. Also here: the functions' own
`Environment.Variables` (beyond Globals), e.g. RetryStarter's `RETRY_WORKFLOW_ARN: !Ref RetryWorkflow`,
resolved the same way (`Ref` of a state machine is its ARN).

Not emulated: Logging, Tracing, versions and aliases. Policies: the state machine's role is enforced on
the Lambda tasks it invokes (iam.py); the role given to moto here is a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .iam import ACCOUNT_ID
from .lambdas import LambdaFunction
from .template import REPO, Template, TemplateError, resources, substitute

STATE_MACHINE_TYPE = "AWS::Serverless::StateMachine"
# moto does not check the role; Step Functions requires one.
LOCAL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/refunds-local-state-machines"


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    definition_path: Path
    substitutions: Mapping[str, Any]


def state_machine_specs(template: Template) -> dict[str, StateMachineSpec]:
    specs = {}
    for logical_id, resource in resources(template, STATE_MACHINE_TYPE).items():
        properties = resource.get("Properties") or {}
        uri = properties.get("DefinitionUri")
        if not isinstance(uri, str):
            raise TemplateError(f"{logical_id}: the local stack needs a local DefinitionUri file")
        specs[logical_id] = StateMachineSpec(
            logical_id, REPO / uri, dict(properties.get("DefinitionSubstitutions") or {})
        )
    return specs


def state_machine_name(stack_name: str, logical_id: str) -> str:
    return f"{stack_name}-{logical_id}"


def state_machine_arn(stack_name: str, logical_id: str, region: str) -> str:
    return f"arn:aws:states:{region}:{ACCOUNT_ID}:stateMachine:{state_machine_name(stack_name, logical_id)}"


def local_references(
    template: Template, functions: Mapping[str, LambdaFunction], *, stack_name: str, region: str
) -> dict[str, str]:
    """What `Ref`/`GetAtt` of the functions and state machines mean locally (names for `substitute`)."""
    names = {}
    for logical_id, function in functions.items():
        names[logical_id] = function.name
        names[f"{logical_id}.Arn"] = function.arn
    for logical_id in state_machine_specs(template):
        arn = state_machine_arn(stack_name, logical_id, region)
        names[logical_id] = arn
        names[f"{logical_id}.Arn"] = arn
        names[f"{logical_id}.Name"] = state_machine_name(stack_name, logical_id)
    return names


def resolve(value: Any, names: Mapping[str, str]) -> str:
    """`substitute`, plus `Fn::GetAtt` (as `Logical.Attribute` in `names`)."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        key = ".".join(target) if isinstance(target, list) else str(target)
        try:
            return names[key]
        except KeyError:
            raise TemplateError(f"no local value for GetAtt {key}") from None
    return substitute(value, names)


def definition(spec: StateMachineSpec, names: Mapping[str, str]) -> str:
    """The ASL text with every `${Name}` of DefinitionSubstitutions replaced; an unknown one is an error."""
    values = {name: resolve(value, names) for name, value in spec.substitutions.items()}
    text = spec.definition_path.read_text(encoding="utf-8")

    def replace(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise TemplateError(
                f"{spec.logical_id}: ${{{match.group(1)}}} is not in DefinitionSubstitutions"
            ) from None

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, text)


def create_state_machines(
    client: Any, template: Template, names: Mapping[str, str], *, stack_name: str
) -> dict[str, str]:
    """Create every state machine of the template in moto; their ARNs by logical id."""
    created = {}
    for logical_id, spec in state_machine_specs(template).items():
        answer = client.create_state_machine(
            name=state_machine_name(stack_name, logical_id),
            definition=definition(spec, names),
            roleArn=LOCAL_ROLE_ARN,
            type=str(
                (resources(template, STATE_MACHINE_TYPE)[logical_id].get("Properties") or {}).get(
                    "Type", "STANDARD"
                )
            ),
        )
        created[logical_id] = str(answer["stateMachineArn"])
    return created


def function_variables(template: Template) -> dict[str, Any]:
    """The functions' own Environment.Variables (unresolved); the stack's process holds them all and every
    execution environment starts from its variables, so a name two functions set differently is refused."""
    variables: dict[str, Any] = {}
    for logical_id, resource in resources(template, "AWS::Serverless::Function").items():
        environment = (resource.get("Properties") or {}).get("Environment") or {}
        for name, value in (environment.get("Variables") or {}).items():
            if name in variables and variables[name] != value:
                raise TemplateError(f"{logical_id}: {name} differs between functions; one process runs all")
            variables[name] = value
    return variables
