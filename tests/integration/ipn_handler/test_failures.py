"""(e) Local trust is refused inside Lambda; (f) store failures answer 5xx so that SNS redelivers."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.dynamodb import RefundStore, StoreBusy
from amazon_pay_refunds.core.models import RefundStatus
from functions.ipn_handler import app
from tests.support.ipn_signing import LOCAL_PREFIX, Signer

from .conftest import BUILD_SERVICE, Endpoint, FakeContext, create_refund
from .local_ipns import LocalIpns, trust_local_authority

REFUND_ID = "ord-2002-r1"


def test_local_trust_is_refused_inside_lambda_answered_500_and_logged(
    dynamodb: Any, store: RefundStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    create_refund(store, REFUND_ID)
    signer = Signer.local()
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CA_PEM", signer.ca_pem)
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CERT_URL_PREFIX", LOCAL_PREFIX)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "IpnHandler")
    runtime.reset()
    BUILD_SERVICE.cache_clear()
    # A perfectly signed IPN under the local authority: the deployed handler must still never accept it.
    event = LocalIpns(signer).refund_event(REFUND_ID, "Completed")

    response = app.lambda_handler(event, FakeContext())

    assert response["statusCode"] == 500
    assert '"reason": "configuration_error"' in response["body"]
    logged = [r for r in caplog.records if r.getMessage() == "IPN handler misconfigured"]
    assert len(logged) == 1 and "refused in AWS Lambda" in vars(logged[0])["detail"]
    refund = store.get_refund(REFUND_ID)
    assert refund is not None and refund.status is RefundStatus.REQUESTED


def test_a_rejection_is_logged_with_its_reason_and_counted_by_reason(
    endpoint: Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ipns = trust_local_authority(monkeypatch, endpoint)
    event = ipns.refund_event(REFUND_ID, "Completed")
    event["body"] = event["body"].replace("Completed", "Completes")
    capsys.readouterr()

    answer = endpoint.post(event)

    assert (answer.status, answer.reason) == (403, "signature_invalid")
    rejected = [r for r in caplog.records if r.getMessage() == "IPN rejected"]
    assert [(vars(r)["reason"], vars(r)["status"]) for r in rejected] == [("signature_invalid", 403)]
    assert all("Completes" not in str(r.__dict__) for r in caplog.records)  # never the body
    metrics = capsys.readouterr().out
    assert '"IpnRejected":[1.0]' in metrics and '"reason":"signature_invalid"' in metrics


def throttled(*args: Any, **kwargs: Any) -> Any:
    raise ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "GetItem"
    )


def test_dynamodb_throttling_answers_503_so_that_sns_redelivers(
    endpoint: Endpoint, store: RefundStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_refund(store, REFUND_ID)
    ipns = trust_local_authority(monkeypatch, endpoint)
    monkeypatch.setattr(runtime.store().client, "get_item", throttled)

    answer = endpoint.post(ipns.refund_event(REFUND_ID, "Completed"))

    assert (answer.status, answer.reason) == (503, "store_unavailable")


def test_a_refund_that_keeps_changing_answers_503(
    endpoint: Endpoint, store: RefundStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_refund(store, REFUND_ID)
    ipns = trust_local_authority(monkeypatch, endpoint)

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise StoreBusy(f"refund {REFUND_ID} kept changing")

    monkeypatch.setattr(runtime.store(), "transition", busy)

    answer = endpoint.post(ipns.refund_event(REFUND_ID, "Completed"))

    assert (answer.status, answer.reason) == (503, "store_unavailable")


def test_a_missing_table_answers_503_for_a_notification_that_needs_a_write(
    endpoint: Endpoint, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ipns = trust_local_authority(monkeypatch, endpoint)
    dynamodb.delete_table(TableName="refunds-ipn")
    from tests.support.ipn_signing import amazon_pay_message, api_event

    capture = amazon_pay_message("<CaptureNotification/>", notification_type="PaymentCapture")
    answer = endpoint.post(api_event(ipns.signer.envelope(capture)))

    assert (answer.status, answer.reason) == (503, "store_unavailable")
