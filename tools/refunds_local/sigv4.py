"""API Gateway's IAM authorization (SigV4) on the local gateway, and SigV4 signing for local clients.

A route whose OpenAPI security names the `awsSigv4` scheme (template.yaml, `StorefrontAuthorization`;
resolve always) is called only with a valid Signature Version 4 by a principal whose IAM policies allow
`execute-api:Invoke` on the method's ARN. Locally the principals are two IAM users the stack makes up at
start, with fresh keys: the storefront, holding the template's `StorefrontPolicy`, and an operator, holding
its `OperatorPolicy` (resolved to the local API's ARN and evaluated by iam.py, as IAM does).

The signature is checked by computing it again with botocore's own signer (SigV4Auth: canonical request,
string to sign, HMAC chain) from the request as received and the principal's secret key, and comparing the
two with hmac.compare_digest; no cryptography of our own.

API Gateway's answers, all 403, through the template's gateway responses (response types in brackets).
Wording as AWS documents it ("How do I troubleshoot signature mismatch errors when making SigV4 signed
requests with IAM authentication to API Gateway?", AWS re:Post knowledge center, api-gateway-iam-sigv4-
mismatch; "Gateway response types for API Gateway", API Gateway developer guide):
- no Authorization header: "Missing Authentication Token" [MISSING_AUTHENTICATION_TOKEN];
- an unknown access key: "The security token included in the request is invalid." [INVALID_SIGNATURE;
  AWS does not document which type this is];
- a signature that does not match: "The request signature we calculated does not match the signature you
  provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for
  details." [INVALID_SIGNATURE];
- X-Amz-Date more than 5 minutes off: "Signature expired: {date} is now earlier than {now - 5 min}
  ({now} - 5 min.)" (or "Signature not yet current: ... is still later than ...") [INVALID_SIGNATURE];
- a principal whose policies do not allow the call: "User: {arn} is not authorized to perform:
  execute-api:Invoke on resource: {method ARN}" and why (no identity-based policy allows it, or an
  explicit deny) [ACCESS_DENIED].
Not emulated: presigned URLs (X-Amz-Signature in the query), session tokens, resource policies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .iam import ACCOUNT_ID, PARTITION, evaluate, resolve_intrinsics
from .template import Template

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=5)

MISSING_AUTHENTICATION_TOKEN = "MISSING_AUTHENTICATION_TOKEN"  # noqa: S105 - a response type
INVALID_SIGNATURE = "INVALID_SIGNATURE"
ACCESS_DENIED = "ACCESS_DENIED"

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_ACCESS_KEY = "The security token included in the request is invalid."

_AUTHORIZATION = re.compile(
    rf"^{ALGORITHM}\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)

# The local principals: name → the template's managed policy they hold.
LOCAL_PRINCIPALS = {"storefront": "StorefrontPolicy", "operator": "OperatorPolicy"}


@dataclass(frozen=True)
class Caller:
    """An IAM user of the local stack: who signs, and the policies that decide what it may invoke."""

    name: str
    arn: str
    user_id: str
    access_key_id: str
    secret_access_key: str
    policies: Mapping[str, Mapping[str, Any]]

    def __repr__(self) -> str:  # never the secret key
        return f"Caller({self.name!r}, {self.arn!r}, access_key_id={self.access_key_id!r})"

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.access_key_id, self.secret_access_key)


@dataclass(frozen=True)
class Refused:
    """API Gateway's refusal: its gateway response type, message and x-amzn-ErrorType."""

    response_type: str
    message: str
    error_type: str


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def local_callers(template: Template, *, region: str, api_id: str, stack_name: str) -> dict[str, Caller]:
    """The storefront and operator users, with new keys and the template's policies resolved locally."""
    names = {
        "AWS::Partition": PARTITION,
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::StackName": stack_name,
        "RefundsApi": api_id,
    }
    callers = {}
    for name, policy_id in LOCAL_PRINCIPALS.items():
        resource = template["Resources"].get(policy_id)
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::IAM::ManagedPolicy":
            raise ValueError(f"template.yaml has no managed policy {policy_id} for the {name}")
        document = resolve_intrinsics(resource["Properties"]["PolicyDocument"], names)
        user = f"{stack_name}-{name}"
        callers[name] = Caller(
            name=name,
            arn=f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/{user}",
            user_id="AIDA" + _random(string.ascii_uppercase + string.digits, 17),
            access_key_id="AKIA" + _random(string.ascii_uppercase + string.digits, 16),
            secret_access_key=_random(string.ascii_letters + string.digits + "+/", 40),
            policies={policy_id: document},
        )
    return callers


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
) -> dict[str, str]:
    """`headers` with the SigV4 ones (Authorization, X-Amz-Date) botocore's signer adds for execute-api."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


class Authorizer:
    """Decides a request to an AWS_IAM route: the signing Caller, or API Gateway's Refused."""

    def __init__(
        self,
        callers: Sequence[Caller],
        *,
        region: str,
        api_id: str,
        stage: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.callers = {caller.access_key_id: caller for caller in callers}
        self.region, self.api_id, self.stage = region, api_id, stage
        self.clock = clock

    def method_arn(self, method: str, path: str) -> str:
        return (
            f"arn:{PARTITION}:{SERVICE}:{self.region}:{ACCOUNT_ID}:{self.api_id}/{self.stage}/"
            f"{method.upper()}/{path.lstrip('/')}"
        )

    def authorize(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Caller | Refused:
        """`target`: the request's path and query as sent (the client signed them)."""
        values = {name.lower(): value for name, value in headers}
        authorization = values.get("authorization")
        if not authorization:
            return Refused(
                MISSING_AUTHENTICATION_TOKEN,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
            )
        parsed = _AUTHORIZATION.match(authorization)
        if parsed is None:
            return Refused(
                INVALID_SIGNATURE,
                f"Authorization header requires '{ALGORITHM}' with Credential, SignedHeaders and Signature.",
                "IncompleteSignatureException",
            )
        access_key, _, scope = parsed["credential"].partition("/")
        scope_parts = scope.split("/")
        if len(scope_parts) != 4 or scope_parts[3] != "aws4_request":
            return Refused(INVALID_SIGNATURE, SIGNATURE_MISMATCH, "InvalidSignatureException")
        if scope_parts[2] != SERVICE:
            return Refused(
                INVALID_SIGNATURE,
                f"Credential should be scoped to correct service: '{SERVICE}'. ",
                "InvalidSignatureException",
            )
        if scope_parts[1] != self.region:
            return Refused(
                INVALID_SIGNATURE,
                "Credential should be scoped to a valid region. ",
                "InvalidSignatureException",
            )
        caller = self.callers.get(access_key)
        if caller is None:
            return Refused(INVALID_SIGNATURE, UNKNOWN_ACCESS_KEY, "UnrecognizedClientException")
        stale = self._stale(values.get("x-amz-date"))
        if stale is not None:
            return stale
        if not self._signature_matches(method, target, values, body, caller, parsed):
            return Refused(INVALID_SIGNATURE, SIGNATURE_MISMATCH, "InvalidSignatureException")
        path = target.split("?", 1)[0]
        resource = self.method_arn(method, path)
        decision = evaluate(caller.policies, f"{SERVICE}:Invoke", resource)
        if not decision.allowed:
            why = (
                "with an explicit deny in an identity-based policy"
                if decision.denied_by
                else f"because no identity-based policy allows the {SERVICE}:Invoke action"
            )
            return Refused(
                ACCESS_DENIED,
                f"User: {caller.arn} is not authorized to perform: {SERVICE}:Invoke on resource: "
                f"{resource} {why}",
                "AccessDeniedException",
            )
        return caller

    def _stale(self, amz_date: str | None) -> Refused | None:
        if not amz_date:
            return Refused(
                INVALID_SIGNATURE,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                "IncompleteSignatureException",
            )
        try:
            signed_at = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return Refused(INVALID_SIGNATURE, SIGNATURE_MISMATCH, "InvalidSignatureException")
        now = self.clock()

        def stamp(moment: datetime) -> str:
            return moment.strftime(AMZ_DATE_FORMAT)

        if signed_at < now - MAX_SKEW:
            return Refused(
                INVALID_SIGNATURE,
                f"Signature expired: {amz_date} is now earlier than {stamp(now - MAX_SKEW)} "
                f"({stamp(now)} - 5 min.)",
                "InvalidSignatureException",
            )
        if signed_at > now + MAX_SKEW:
            return Refused(
                INVALID_SIGNATURE,
                f"Signature not yet current: {amz_date} is still later than {stamp(now + MAX_SKEW)} "
                f"({stamp(now)} + 5 min.)",
                "InvalidSignatureException",
            )
        return None

    def _signature_matches(
        self,
        method: str,
        target: str,
        values: Mapping[str, str],
        body: bytes,
        caller: Caller,
        parsed: re.Match[str],
    ) -> bool:
        signed = parsed["signed"].split(";")
        if "host" not in signed or any(name not in values for name in signed):
            return False
        declared = values.get("x-amz-content-sha256")
        if declared is not None and not hmac.compare_digest(declared, hashlib.sha256(body).hexdigest()):
            return False  # a signed body hash that is not this body's
        request = AWSRequest(
            method=method.upper(),
            url=f"http://{values['host']}{target}",
            data=body,
            headers={name: values[name] for name in signed},
        )
        request.context["timestamp"] = values["x-amz-date"]
        signer = SigV4Auth(caller.credentials, SERVICE, self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        return hmac.compare_digest(expected, parsed["signature"])
