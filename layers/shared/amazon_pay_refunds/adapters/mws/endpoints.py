"""Amazon Pay v1 regions and their MWS endpoints (live and sandbox)."""

from __future__ import annotations

from dataclasses import dataclass

from .signing import API_VERSION

REGION_HOSTS: dict[str, str] = {
    "us": "mws.amazonservices.com",
    "na": "mws.amazonservices.com",
    "eu": "mws-eu.amazonservices.com",
    "uk": "mws-eu.amazonservices.com",
    "de": "mws-eu.amazonservices.com",
    "jp": "mws.amazonservices.jp",
}

LIVE_SECTION = "OffAmazonPayments"
SANDBOX_SECTION = "OffAmazonPayments_Sandbox"


@dataclass(frozen=True)
class Endpoint:
    """Where calls go: scheme, host (with port when not default) and path."""

    scheme: str
    host: str
    path: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"


def endpoint_for(region: str, *, sandbox: bool) -> Endpoint:
    try:
        host = REGION_HOSTS[region.lower()]
    except KeyError:
        raise ValueError(f"unknown Amazon Pay region {region!r}; one of {sorted(REGION_HOSTS)}") from None
    section = SANDBOX_SECTION if sandbox else LIVE_SECTION
    return Endpoint("https", host, f"/{section}/{API_VERSION}")
