"""Amazon's checks before any operation: signature, key, seller, timestamp, version, action, parameters."""

from __future__ import annotations

from datetime import timedelta

from amazon_pay_sim import Simulator
from tests.support.sim import HOST, FakeClock, call, post, signed_body


def test_a_correctly_signed_call_is_answered(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus")
    assert (answer.status, answer.field("Status")) == (200, "GREEN")


def test_a_signature_made_with_the_wrong_secret_is_refused(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", secret_key="not-the-secret")
    assert (answer.status, answer.code) == (403, "SignatureDoesNotMatch")


def test_a_call_without_signature_is_refused(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, now=clock())
    del body["Signature"]
    answer = post(sim, body)
    assert (answer.status, answer.code) == (403, "SignatureDoesNotMatch")


def test_the_signature_covers_the_host_header_with_its_port(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, host="sim.test", now=clock())
    answer = post(sim, body, host=HOST)
    assert (answer.status, answer.code) == (403, "SignatureDoesNotMatch")


def test_the_host_is_compared_in_lower_case(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, now=clock())
    assert post(sim, body, host=HOST.upper()).status == 200


def test_a_parameter_changed_after_signing_breaks_the_signature(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetCaptureDetails", {"AmazonCaptureId": "S01-1-1-C1"}, now=clock())
    body["AmazonCaptureId"] = "S01-1-1-C2"
    assert post(sim, body).code == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", access_key="NOSUCHKEY")
    assert (answer.status, answer.code) == (403, "InvalidAccessKeyId")


def test_a_seller_id_that_does_not_belong_to_the_key_is_denied(sim: Simulator, clock: FakeClock) -> None:
    sim.add_seller("A2OTHERSELLER", "OTHERKEY", "other-secret")
    answer = call(sim, clock, "GetServiceStatus", seller_id="A2OTHERSELLER")
    assert (answer.status, answer.code) == (401, "AccessDenied")


def test_a_second_seller_calls_with_its_own_key(sim: Simulator, clock: FakeClock) -> None:
    sim.add_seller("A2OTHERSELLER", "OTHERKEY", "other-secret")
    answer = call(
        sim,
        clock,
        "GetServiceStatus",
        seller_id="A2OTHERSELLER",
        access_key="OTHERKEY",
        secret_key="other-secret",
    )
    assert answer.status == 200


def test_a_timestamp_more_than_15_minutes_old_is_refused(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, now=clock() - timedelta(minutes=15, seconds=1))
    answer = post(sim, body)
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")
    assert "expired" in (answer.field("Message") or "")


def test_a_timestamp_more_than_15_minutes_ahead_is_refused(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, now=clock() + timedelta(minutes=16))
    assert post(sim, body).code == "InvalidParameterValue"


def test_a_timestamp_14_minutes_off_is_accepted(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, now=clock() - timedelta(minutes=14))
    assert post(sim, body).status == 200


def test_a_malformed_timestamp_is_refused(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", {"Timestamp": "yesterday"})
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")


def test_a_missing_timestamp_is_a_missing_parameter(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", {"Timestamp": ""})
    assert (answer.status, answer.code) == (400, "MissingParameter")


def test_another_api_version_is_refused(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", {"Version": "2010-01-01"})
    assert answer.code == "InvalidAddress"


def test_an_unknown_action_is_an_invalid_address(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "Authorize")
    assert (answer.status, answer.code) == (404, "InvalidAddress")


def test_another_path_is_an_invalid_address(sim: Simulator, clock: FakeClock) -> None:
    answer = post(sim, signed_body("GetServiceStatus", {}, now=clock()), path="/OffAmazonPayments/2013-01-01")
    assert (answer.status, answer.code) == (404, "InvalidAddress")


def test_only_hmac_sha256_signatures_are_accepted(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", {"SignatureMethod": "HmacSHA1"})
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")


def test_only_signature_version_2_is_accepted(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", {"SignatureVersion": "1"})
    assert answer.code == "InvalidParameterValue"


def test_a_missing_required_operation_parameter_is_reported(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetRefundDetails")
    assert (answer.status, answer.code) == (400, "MissingParameter")
    assert "AmazonRefundId" in (answer.field("Message") or "")


def test_an_unknown_parameter_is_refused(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": "x", "CaptureNote": "typo"})
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")


def test_a_parameter_given_twice_is_refused(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, now=clock())
    raw = "&".join(f"{k}={v}" for k, v in body.items()).encode() + b"&Action=GetServiceStatus"
    answer = sim.handle_mws("POST", HOST, "/OffAmazonPayments_Sandbox/2013-01-01", raw)
    assert (answer.status, "InvalidParameterValue" in answer.body) == (400, True)


def test_an_error_answer_carries_a_request_id(sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", secret_key="wrong")
    assert (
        answer.root.tag == "{http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01}ErrorResponse"
    )
    assert answer.field("RequestId")
