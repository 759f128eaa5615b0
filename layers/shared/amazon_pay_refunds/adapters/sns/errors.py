"""Why an SNS message was refused: three exceptions, each with a machine-readable reason.

`MalformedNotification` → HTTP 400, `NotAuthentic` → 403, `CertificateUnavailable` → 503 (transient: SNS
redelivers). Messages name fields and rules, never values from the body, so they are safe to log.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # The body is not a well-formed SNS message (400).
    BODY_TOO_LARGE = "body_too_large"
    BODY_NOT_UTF8 = "body_not_utf8"
    BODY_NOT_JSON = "body_not_json"
    BODY_NOT_OBJECT = "body_not_object"
    DUPLICATE_FIELD = "duplicate_field"
    FIELD_MISSING = "field_missing"
    FIELD_INVALID = "field_invalid"
    MESSAGE_TYPE_UNKNOWN = "message_type_unknown"
    TIMESTAMP_INVALID = "timestamp_invalid"
    SIGNATURE_NOT_BASE64 = "signature_not_base64"
    # The verified Message is not a well-formed Amazon Pay notification (400).
    NOTIFICATION_NOT_JSON = "notification_not_json"
    NOTIFICATION_NOT_OBJECT = "notification_not_object"
    NOTIFICATION_XML_INVALID = "notification_xml_invalid"
    NOTIFICATION_XML_FORBIDDEN = "notification_xml_forbidden"
    # Not authentic, or not for this deployment (403).
    HEADER_MISMATCH = "header_mismatch"
    SIGNATURE_VERSION_UNSUPPORTED = "signature_version_unsupported"
    CERT_URL_MALFORMED = "cert_url_malformed"
    CERT_URL_ENCODING = "cert_url_encoding"
    CERT_URL_SCHEME = "cert_url_scheme"
    CERT_URL_USERINFO = "cert_url_userinfo"
    CERT_URL_PORT = "cert_url_port"
    CERT_URL_HOST = "cert_url_host"
    CERT_URL_QUERY = "cert_url_query"
    CERT_URL_FRAGMENT = "cert_url_fragment"
    CERT_URL_PATH = "cert_url_path"
    CERTIFICATE_HOST_UNKNOWN = "certificate_host_unknown"
    CERTIFICATE_TLS_FAILED = "certificate_tls_failed"
    CERTIFICATE_REDIRECT = "certificate_redirect"
    CERTIFICATE_NOT_FOUND = "certificate_not_found"
    CERTIFICATE_TOO_LARGE = "certificate_too_large"
    CERTIFICATE_NOT_PEM = "certificate_not_pem"
    CERTIFICATE_SUBJECT = "certificate_subject"
    CERTIFICATE_UNTRUSTED = "certificate_untrusted"
    CERTIFICATE_KEY_UNSUPPORTED = "certificate_key_unsupported"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    SIGNATURE_INVALID = "signature_invalid"
    MESSAGE_STALE = "message_stale"
    MESSAGE_FROM_FUTURE = "message_from_future"
    SUBSCRIBE_URL_INVALID = "subscribe_url_invalid"
    TOPIC_NOT_ALLOWED = "topic_not_allowed"
    SELLER_NOT_ALLOWED = "seller_not_allowed"
    # Could not decide now; SNS should try again (503): timeouts, refused or reset connections, a resolver
    # that cannot answer now, the certificate URL answering 5xx, 408 or 429.
    CERTIFICATE_FETCH_FAILED = "certificate_fetch_failed"


MALFORMED_REASONS = frozenset(
    {
        Reason.BODY_TOO_LARGE,
        Reason.BODY_NOT_UTF8,
        Reason.BODY_NOT_JSON,
        Reason.BODY_NOT_OBJECT,
        Reason.DUPLICATE_FIELD,
        Reason.FIELD_MISSING,
        Reason.FIELD_INVALID,
        Reason.MESSAGE_TYPE_UNKNOWN,
        Reason.TIMESTAMP_INVALID,
        Reason.SIGNATURE_NOT_BASE64,
        Reason.NOTIFICATION_NOT_JSON,
        Reason.NOTIFICATION_NOT_OBJECT,
        Reason.NOTIFICATION_XML_INVALID,
        Reason.NOTIFICATION_XML_FORBIDDEN,
    }
)
UNAVAILABLE_REASONS = frozenset({Reason.CERTIFICATE_FETCH_FAILED})
NOT_AUTHENTIC_REASONS = frozenset(Reason) - MALFORMED_REASONS - UNAVAILABLE_REASONS


class SnsVerificationError(Exception):
    """Base of the three outcomes that refuse a message; `reason` names the rule, `http_status` the answer."""

    http_status = 500
    reasons: frozenset[Reason] = frozenset()

    def __init__(self, reason: Reason, message: str) -> None:
        if reason not in self.reasons:
            raise ValueError(f"{reason.value} is not a reason for {type(self).__name__}")
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.detail = message


class MalformedNotification(SnsVerificationError):
    """The body is not a well-formed SNS message or Amazon Pay notification (HTTP 400)."""

    http_status = 400
    reasons = MALFORMED_REASONS


class NotAuthentic(SnsVerificationError):
    """Signature, certificate, certificate URL, headers, freshness, topic or seller refused (HTTP 403)."""

    http_status = 403
    reasons = NOT_AUTHENTIC_REASONS


class CertificateUnavailable(SnsVerificationError):
    """The signing certificate could not be fetched just now (HTTP 503, so that SNS redelivers)."""

    http_status = 503
    reasons = UNAVAILABLE_REASONS
