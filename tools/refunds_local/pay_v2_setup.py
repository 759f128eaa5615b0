"""The local stack's Amazon Pay API v2 seller key: generated at start (never stored in the repository),
registered with the simulator, and put into the seller's entry of the local credentials secret
(`public_key_id`, `private_key`: adapters/mws/credentials.py). The functions reach the simulator's v2 side
through REFUNDS_LOCAL_AMAZON_PAY_V2_ENDPOINT (set by the stack beside REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from amazon_pay_sim import Simulator

# `SANDBOX-` names the key's environment, so calls go to `/v2/...` (adapters/pay_v2/endpoints.api_path).
LOCAL_V2_PUBLIC_KEY_ID = "SANDBOX-LOCALSTACKV2KEY0000000000"


def with_v2_key(simulator: Simulator, secret: dict[str, Any], seller_id: str) -> dict[str, Any]:
    """`secret` with a fresh v2 key for `seller_id` (its MWS keys kept), the public half registered."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    simulator.add_v2_key(LOCAL_V2_PUBLIC_KEY_ID, public_pem, seller_id)
    sellers = dict(secret.get("sellers", {}))
    sellers[seller_id] = {
        **sellers.get(seller_id, {}),
        "public_key_id": LOCAL_V2_PUBLIC_KEY_ID,
        "private_key": private_pem,
    }
    return {**secret, "sellers": sellers}
