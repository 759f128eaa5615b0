"""SNS message verification and Amazon Pay IPN parsing, usable on its own."""

from .certificates import (
    CertificateCache,
    CertificateFetcher,
    CertificateResponse,
    RequestsCertificateFetcher,
    TrustedCertificate,
    check_sns_certificate_url,
    check_sns_subscribe_url,
    is_sns_certificate_url,
    load_strict_pem_certificate,
)
from .errors import CertificateUnavailable, MalformedNotification, NotAuthentic, Reason, SnsVerificationError
from .ipn import AmazonPayNotification, DeploymentBinding, notification_xml, parse_notification
from .message import MessageType, SnsMessage, parse_sns_message, string_to_sign
from .trust import (
    CertificateTrust,
    LocalAuthorityTrust,
    PublicAuthorityTrust,
    SnsCertificateTrust,
    system_trust_roots,
    trust_from_environment,
)
from .verifier import DEFAULT_MAX_AGE, IpnAuthenticator, SnsVerifier, VerifiedIpn, verify_ipn

__all__ = [
    "DEFAULT_MAX_AGE",
    "AmazonPayNotification",
    "CertificateCache",
    "CertificateFetcher",
    "CertificateResponse",
    "CertificateTrust",
    "CertificateUnavailable",
    "DeploymentBinding",
    "IpnAuthenticator",
    "LocalAuthorityTrust",
    "MalformedNotification",
    "MessageType",
    "NotAuthentic",
    "PublicAuthorityTrust",
    "Reason",
    "RequestsCertificateFetcher",
    "SnsCertificateTrust",
    "SnsMessage",
    "SnsVerificationError",
    "SnsVerifier",
    "TrustedCertificate",
    "VerifiedIpn",
    "check_sns_certificate_url",
    "check_sns_subscribe_url",
    "is_sns_certificate_url",
    "load_strict_pem_certificate",
    "notification_xml",
    "parse_notification",
    "parse_sns_message",
    "string_to_sign",
    "system_trust_roots",
    "trust_from_environment",
    "verify_ipn",
]
