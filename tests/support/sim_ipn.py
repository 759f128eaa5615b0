"""A small IPN receiver (http.server in a thread) and helpers to verify what the simulator posted."""

from __future__ import annotations

from amazon_pay_refunds.adapters.sns import (
    DeploymentBinding,
    LocalAuthorityTrust,
    SnsVerifier,
    VerifiedIpn,
    verify_ipn,
)
from amazon_pay_sim import Simulator
from amazon_pay_sim.receiver import Posted


def local_verifier(sim: Simulator) -> SnsVerifier:
    """Trusts the simulator's CA; fetches the signing certificate from the simulator over HTTP."""
    return SnsVerifier(LocalAuthorityTrust(sim.ca_certificate_pem, sim.certificate_url_prefix))


def verify_posted(
    posted: Posted, verifier: SnsVerifier, *, seller_id: str = "A1LOCALSELLER", headers: bool = True
) -> VerifiedIpn:
    return verify_ipn(
        posted.body,
        headers=posted.headers if headers else None,
        verifier=verifier,
        binding=DeploymentBinding.of(seller_ids={seller_id}),
    )
