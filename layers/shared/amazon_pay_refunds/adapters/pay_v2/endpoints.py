"""Amazon Pay API v2 hosts per region, and the path prefix per environment (sandbox or live).

A public key id starting with ``SANDBOX-`` or ``LIVE-`` (any letter case) names its environment, and the
path is ``/v2/...``; any other key id needs the environment said explicitly, and the path is
``/sandbox/v2/...`` or ``/live/v2/...`` (as every official SDK builds it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...deadlines import host_without_default_port

API_VERSION = "v2"
REGION_HOSTS: dict[str, str] = {
    "na": "pay-api.amazon.com",
    "eu": "pay-api.amazon.eu",
    "jp": "pay-api.amazon.jp",
}
# The SDKs' aliases: the UK and Germany are served by the EU host, the US by NA.
REGION_ALIASES: dict[str, str] = {"na": "na", "us": "na", "eu": "eu", "de": "eu", "uk": "eu", "jp": "jp"}
SANDBOX_PREFIX = "SANDBOX-"
LIVE_PREFIX = "LIVE-"


def region_code(region: str) -> str:
    try:
        return REGION_ALIASES[region.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown Amazon Pay region {region!r}; one of {sorted(REGION_ALIASES)}") from None


def key_environment(public_key_id: str) -> str | None:
    """ "sandbox" or "live" when the key id names its environment, else None."""
    upper = public_key_id.upper()
    if upper.startswith(SANDBOX_PREFIX):
        return "sandbox"
    if upper.startswith(LIVE_PREFIX):
        return "live"
    return None


def api_path(public_key_id: str, sandbox: bool | None) -> str:
    """``/v2`` for an environment-specific key id, else ``/sandbox/v2`` or ``/live/v2``.

    Conservative where the SDKs are lenient: a key id whose prefix contradicts ``sandbox`` is refused (the
    SDKs silently follow the key), and a legacy key id without ``sandbox`` is refused (the SDKs default
    to live).
    """
    named = key_environment(public_key_id)
    if named is not None:
        if sandbox is not None and sandbox != (named == "sandbox"):
            raise ValueError(f"the public key id is a {named} key, but sandbox={sandbox} was configured")
        return f"/{API_VERSION}"
    if sandbox is None:
        raise ValueError(
            "the public key id names no environment (SANDBOX-/LIVE-): configure sandbox=True or False"
        )
    return f"/{'sandbox' if sandbox else 'live'}/{API_VERSION}"


@dataclass(frozen=True)
class PayV2Endpoint:
    """Where calls go: scheme and host (with a port when not the default), and the region sent as
    ``x-amz-pay-region``. ``sandbox`` is the environment for key ids that do not name one (see
    `api_path`)."""

    scheme: str
    host: str
    region: str
    sandbox: bool | None = None

    def __post_init__(self) -> None:
        if self.scheme not in ("https", "http"):
            raise ValueError("scheme must be https (or http for a local simulator)")
        object.__setattr__(self, "region", region_code(self.region))

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def host_header(self) -> str:
        """``x-amz-pay-host``: the host, with the port only when not the scheme's default (PHP, Java)."""
        return host_without_default_port(self.scheme, self.host)


def endpoint_for(region: str, *, sandbox: bool | None = None) -> PayV2Endpoint:
    """Amazon's endpoint for the region (na/us, eu/de/uk, jp)."""
    code = region_code(region)
    return PayV2Endpoint("https", REGION_HOSTS[code], code, sandbox)
