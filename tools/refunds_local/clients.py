"""HTTP clients of a running local stack: the storefront's (the refund API) and the simulator's control API.

What a storefront backend or a test does over the wire; used by the demo and the end-to-end tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from botocore.credentials import Credentials

from .sigv4 import sign

if TYPE_CHECKING:
    from .stack import EmbeddedStack


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status and JSON body (None when empty or not JSON)."""

    status: int
    body: Any

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error["code"]) if isinstance(error, dict) and "code" in error else None

    @classmethod
    def of(cls, response: requests.Response) -> Answer:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return cls(response.status_code, body)


class Storefront:
    """The refund API as a storefront backend calls it: x-api-key on every call (the usage plan's key,
    or with StorefrontAuthorization API_KEY the credential), and with `credentials` a SigV4 signature
    (botocore's signer, service execute-api), as a backend with IAM credentials signs."""

    def __init__(
        self,
        api_url: str,
        api_key: str | None,
        *,
        credentials: Credentials | None = None,
        region: str = "us-east-1",
        timeout: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.credentials = credentials
        self.region = region
        self.timeout = timeout
        self._session = requests.Session()

    def _headers(self) -> dict[str, str]:
        return {} if self.api_key is None else {"x-api-key": self.api_key}

    def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        url = f"{self.api_url}{path}"
        if self.credentials is not None:
            # The exact bytes sent are the ones signed.
            body = kwargs.pop("data", None)
            if "json" in kwargs:
                body = json.dumps(kwargs.pop("json")).encode()
                headers.setdefault("Content-Type", "application/json")
            raw = body.encode() if isinstance(body, str) else (body or b"")
            headers = sign(method, url, headers, raw, self.credentials, self.region)
            kwargs["data"] = raw
        response = self._session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        return Answer.of(response)

    def post_refund(self, body: Mapping[str, Any]) -> Answer:
        return self.request("POST", "/refunds", json=dict(body))

    def get_refund(self, refund_id: str) -> Answer:
        return self.request("GET", f"/refunds/{refund_id}")

    def get_capture(self, amazon_capture_id: str) -> Answer:
        return self.request("GET", f"/captures/{amazon_capture_id}")

    def resolve(self, refund_id: str, method: str, note: str = "") -> Answer:
        return self.request("POST", f"/refunds/{refund_id}/resolve", json={"method": method, "note": note})

    def wait_for_status(
        self, refund_id: str, statuses: Collection[str], *, timeout: float = 15.0, interval: float = 0.1
    ) -> dict[str, Any]:
        """Poll GET /refunds/{id} until its status is one of `statuses`; the refund then (or last seen)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.get_refund(refund_id)
            refund: dict[str, Any] = answer.body if answer.status == 200 else {}
            if refund.get("status") in statuses or time.monotonic() > deadline:
                return refund
            time.sleep(interval)


def storefront_of(stack: EmbeddedStack, *, timeout: float = 30.0) -> Storefront:
    """The local stack's storefront: its API key, and its IAM user's signature (StorefrontPolicy)."""
    caller = stack.callers["storefront"]
    return Storefront(
        stack.api_url, stack.api_key, credentials=caller.credentials, region=stack.region, timeout=timeout
    )


def operator_of(stack: EmbeddedStack) -> Storefront:
    """An operator of the local stack: its IAM user's signature (OperatorPolicy), no API key."""
    caller = stack.callers["operator"]
    return Storefront(stack.api_url, None, credentials=caller.credentials, region=stack.region)


class SimulatorControl:
    """The Amazon Pay simulator's control API (tools/amazon_pay_sim/README.md)."""

    def __init__(self, sim_url: str, *, timeout: float = 30.0) -> None:
        self.sim_url = sim_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self._session.request(
            method, f"{self.sim_url}{path}", json=None if body is None else dict(body), timeout=self.timeout
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def create_capture(self, amount: str, currency_code: str, *, state: str = "Completed") -> str:
        body = {"amount": amount, "currency_code": currency_code, "state": state}
        return str(self._call("POST", "/simulator/captures", body)["amazon_capture_id"])

    def capture(self, amazon_capture_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self._call("GET", f"/simulator/captures/{amazon_capture_id}")
        return view

    def external_refund(self, amazon_capture_id: str, amount: str, refund_type: str) -> dict[str, Any]:
        body = {"amount": amount, "refund_type": refund_type}
        refund: dict[str, Any] = self._call(
            "POST", f"/simulator/captures/{amazon_capture_id}/external-refund", body
        )
        return refund

    def fault(self, operation: str, fault: str, count: int = 1) -> None:
        self._call("POST", "/simulator/faults", {"operation": operation, "fault": fault, "count": count})

    def ipn_fault(self, fault: str, count: int = 1) -> None:
        """The next `count` IPNs are `drop`ped or `duplicate`d."""
        self._call("POST", "/simulator/ipn/faults", {"fault": fault, "count": count})

    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self._call("GET", "/simulator/calls")["calls"]
        return calls

    def throttling(self, enabled: bool) -> None:
        self._call("POST", "/simulator/throttling", {"enabled": enabled})
