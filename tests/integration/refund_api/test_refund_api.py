"""CONTRACT §3 through lambda_handler: API Gateway proxy events, moto's table and secret, the simulator."""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_sim import Simulator
from amazon_pay_sim import responses as sim_responses
from amazon_pay_sim.simulator import DEFAULT_SECRET_KEY, MwsAnswer
from amazon_pay_sim.state import MwsError
from tests.support.refund_api_stack import MWS_AUTH_TOKEN, SELLER_ID, TABLE, Api, refund_body, refund_calls

Capture = Callable[..., str]
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
AMAZON_REJECTED = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}'


# --- POST /refunds: accepted ----------------------------------------------------------------------


def test_new_refund_is_accepted_pending_with_amazons_refund_id(api: Api, capture: Capture) -> None:
    answer = api.post_refund(refund_body(capture()))
    assert answer.status == 202
    assert answer.body["status"] == "Pending"
    attempt = answer.body["attempts"][0]
    assert attempt["refund_reference_id"] == "ord-1001-r1_1"
    assert attempt["amazon_refund_id"].startswith("S01-")
    assert attempt["state"] == "Pending"


def test_accepted_refund_reads_back_with_its_audit_trail(api: Api, capture: Capture) -> None:
    api.post_refund(refund_body(capture()))
    answer = api.get_refund("ord-1001-r1")
    assert answer.status == 200
    assert [(h["from"], h["to"], h["cause"]) for h in answer.body["history"]] == [
        (None, "Requested", "api:POST /refunds"),
        ("Requested", "Pending", "amazon:Refund"),
    ]
    assert answer.body["seller_id"] == SELLER_ID
    assert answer.body["metadata"] == {"order_id": "1001"}


def test_amazon_receives_the_derived_reference_id_amount_and_note(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture()
    api.post_refund(refund_body(capture_id))
    [call] = refund_calls(simulator)
    assert call["params"]["RefundReferenceId"] == "ord-1001-r1_1"
    assert call["params"]["AmazonCaptureId"] == capture_id
    assert call["params"]["RefundAmount.Amount"] == "12.50"


def test_jpy_refund_without_decimals_is_accepted(api: Api, capture: Capture, simulator: Simulator) -> None:
    answer = api.post_refund(refund_body(capture("5000", "JPY"), amount="1200", currency_code="JPY"))
    assert answer.status == 202
    assert answer.body["amount"] == "1200"
    assert refund_calls(simulator)[0]["params"]["RefundAmount.Amount"] == "1200"


def test_jpy_amount_with_decimals_is_a_validation_error(api: Api, capture: Capture) -> None:
    answer = api.post_refund(refund_body(capture("5000", "JPY"), amount="1200.00", currency_code="JPY"))
    assert answer.status == 422
    assert answer.body["error"]["details"][0]["field"] == "amount"


def test_amazon_rejected_simulation_is_not_a_refusal_but_pending(api: Api, capture: Capture) -> None:
    answer = api.post_refund(refund_body(capture(), seller_refund_note=AMAZON_REJECTED))
    assert answer.status == 202
    assert answer.body["status"] == "Pending"  # the decline arrives later, by IPN


def test_refund_answers_and_stores_the_reservation_on_the_ledger(api: Api, capture: Capture) -> None:
    capture_id = capture("100.00")
    api.post_refund(refund_body(capture_id, amount="30.00"))
    ledger = api.get_capture(capture_id).body
    assert (ledger["captured"], ledger["in_flight"], ledger["available"]) == ("100.00", "30.00", "70.00")


def test_seller_id_defaults_to_the_configured_seller(api: Api, capture: Capture) -> None:
    answer = api.post_refund(refund_body(capture()))
    assert answer.body["seller_id"] == SELLER_ID


def test_unknown_seller_id_is_refused_with_unknown_seller(api: Api, capture: Capture) -> None:
    answer = api.post_refund(refund_body(capture(), seller_id="A9NOTCONFIGURED"))
    assert (answer.status, answer.error_code) == (422, "UnknownSeller")


# --- idempotency ----------------------------------------------------------------------------------


def test_same_request_again_answers_200_with_the_same_refund(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    body = refund_body(capture())
    first = api.post_refund(body)
    again = api.post_refund(body)
    assert again.status == 200
    assert again.body == first.body
    assert len(refund_calls(simulator)) == 1


def test_same_request_with_explicit_default_seller_is_the_same_request(api: Api, capture: Capture) -> None:
    body = refund_body(capture())
    api.post_refund(body)
    assert api.post_refund({**body, "seller_id": SELLER_ID}).status == 200


def test_same_refund_id_with_another_body_is_an_idempotency_conflict(api: Api, capture: Capture) -> None:
    body = refund_body(capture())
    api.post_refund(body)
    answer = api.post_refund({**body, "amount": "12.00"})
    assert (answer.status, answer.error_code) == (409, "IdempotencyConflict")


# --- the capture's ledger -------------------------------------------------------------------------


def test_refund_exceeding_the_capture_is_refused_with_the_available_amount(
    api: Api, capture: Capture
) -> None:
    capture_id = capture("20.00")
    api.post_refund(refund_body(capture_id, "r1", "15.00"))
    answer = api.post_refund(refund_body(capture_id, "r2", "10.00"))
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert answer.body["error"]["details"] == {
        "requested": "10.00",
        "available": "5.00",
        "currency_code": "USD",
        "refund_id_reusable": True,
    }


def test_first_refund_larger_than_the_capture_is_refused_and_not_stored(api: Api, capture: Capture) -> None:
    answer = api.post_refund(refund_body(capture("10.00"), amount="10.01"))
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert api.get_refund("ord-1001-r1").status == 404


def test_refunds_amazon_already_made_on_the_capture_count_against_it(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture("50.00")
    simulator.external_refund(capture_id, "45.00", "AmazonA-ZRefund")
    answer = api.post_refund(refund_body(capture_id, amount="10.00"))
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert answer.body["error"]["details"]["available"] == "5.00"


def test_refund_in_another_currency_than_the_capture_is_a_currency_mismatch(
    api: Api, capture: Capture
) -> None:
    answer = api.post_refund(refund_body(capture("100.00", "EUR")))
    assert (answer.status, answer.error_code) == (422, "CurrencyMismatch")


def test_currency_mismatch_on_a_known_capture_is_refused_from_the_ledger(api: Api, capture: Capture) -> None:
    capture_id = capture("100.00")
    api.post_refund(refund_body(capture_id, "r1", "10.00"))
    answer = api.post_refund(refund_body(capture_id, "r2", "10.00", currency_code="EUR"))
    assert (answer.status, answer.error_code) == (422, "CurrencyMismatch")


def test_capture_not_completed_is_not_refundable(api: Api, capture: Capture, simulator: Simulator) -> None:
    answer = api.post_refund(refund_body(capture(state="Pending")))
    assert (answer.status, answer.error_code) == (422, "CaptureNotRefundable")
    assert refund_calls(simulator) == []


def test_later_refunds_use_the_ledger_and_look_at_the_capture_only_to_check_its_refunds(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore
) -> None:
    capture_id = capture()
    api.post_refund(refund_body(capture_id, "r1", "10.00"))
    api.post_refund(refund_body(capture_id, "r2", "10.00"))
    # One GetCaptureDetails opened the ledger (r1); r2 reserved on it, then one more read Amazon's list
    # of the capture's refunds just before its Refund call (the headroom check) and found nothing new.
    actions = [c["action"] for c in simulator.calls()]
    assert actions == ["GetCaptureDetails", "Refund", "GetCaptureDetails", "Refund"]
    ledger = store.get_ledger(capture_id)
    assert ledger is not None and ledger.external == 0


# --- Amazon's permanent refusals ------------------------------------------------------------------


def test_amazons_permanent_refusal_fails_the_refund_with_amazons_code(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture("100.00")
    api.post_refund(refund_body(capture_id, "r1", "10.00"))  # opens the ledger
    simulator.close_capture(capture_id)
    answer = api.post_refund(refund_body(capture_id, "r2", "10.00"))
    assert (answer.status, answer.error_code) == (422, "CaptureNotRefundable")
    assert answer.body["error"]["details"]["refund"]["status"] == "Failed"
    assert api.get_refund("r2").body["reason_code"] == "CaptureNotRefundable"


def test_refused_refund_releases_its_reservation(api: Api, capture: Capture, simulator: Simulator) -> None:
    capture_id = capture("100.00")
    api.post_refund(refund_body(capture_id, "r1", "10.00"))
    simulator.close_capture(capture_id)
    api.post_refund(refund_body(capture_id, "r2", "50.00"))
    assert api.get_capture(capture_id).body["available"] == "90.00"


def test_a_refund_an_unreported_a_to_z_refund_leaves_no_room_for_is_refused_before_amazon(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture("100.00")
    api.post_refund(refund_body(capture_id, "r1", "10.00"))  # our ledger: 90.00 available
    simulator.external_refund(capture_id, "95.00", "AmazonA-ZRefund")  # we have not heard of it yet
    answer = api.post_refund(refund_body(capture_id, "r2", "90.00"))
    # Amazon would accept it (its cap allows +15 %); the capture's refund list shows the A-to-z refund first.
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert [c["action"] for c in simulator.calls()].count("Refund") == 1
    assert api.get_capture(capture_id).body["external"] == "95.00"
    assert api.get_refund("r2").body["status"] == "Failed"


# --- Amazon unreachable: the intent is durable ----------------------------------------------------


@pytest.mark.parametrize("fault", ["503", "500", "throttle"])
def test_amazon_failing_on_refund_leaves_the_refund_requested_and_accepted(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, fault: str
) -> None:
    capture_id = capture("100.00")
    simulator.add_fault("Refund", fault, count=50)
    api.remaining_seconds = 6.0  # a 3 s budget for Amazon
    answer = api.post_refund(refund_body(capture_id, amount="40.00"))
    assert answer.status == 202
    assert answer.body["status"] == "Requested"
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None and not stored.reservation_pending
    assert api.get_capture(capture_id).body["in_flight"] == "40.00"


def test_amazon_timing_out_on_refund_leaves_the_refund_requested_and_accepted(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture()
    simulator.add_fault("Refund", "timeout", count=50, hold_seconds=5)
    api.remaining_seconds = 5.0
    answer = api.post_refund(refund_body(capture_id))
    assert (answer.status, answer.body["status"]) == (202, "Requested")
    assert api.get_capture(capture_id).body["in_flight"] == "12.50"


def test_capture_lookup_unreachable_stores_the_intent_without_reservation(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore
) -> None:
    capture_id = capture()
    simulator.add_fault("GetCaptureDetails", "503", count=50)
    api.remaining_seconds = 5.0
    answer = api.post_refund(refund_body(capture_id))
    assert (answer.status, answer.body["status"]) == (202, "Requested")
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None and stored.reservation_pending
    assert refund_calls(simulator) == []  # never sent without a reservation
    assert api.get_capture(capture_id).status == 404


# --- validation -----------------------------------------------------------------------------------


def test_body_that_is_not_json_is_a_400(api: Api) -> None:
    answer = api.call("POST", "/refunds", "/refunds", raw_body="{not json")
    assert (answer.status, answer.error_code) == (400, "MalformedRequest")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 12.5),
        ("amount", "12.505"),
        ("amount", "-1.00"),
        ("amount", "0.00"),
        ("amount", "1e3"),
        ("refund_id", "has_underscore"),
        ("refund_id", "x" * 29),
        ("amazon_capture_id", "S01-123-456-C1"),
        ("currency_code", "XXX"),
        ("seller_refund_note", "n" * 256),
        ("soft_descriptor", "d" * 17),
        ("metadata", {"nested": {"a": "b"}}),
        ("metadata", {f"k{i}": "v" for i in range(21)}),
    ],
)
def test_invalid_field_is_a_422_naming_the_field(
    api: Api, capture: Capture, field: str, value: object
) -> None:
    answer = api.post_refund({**refund_body("S01-1234567-1234567-C000001"), field: value})
    assert (answer.status, answer.error_code) == (422, "ValidationError")
    assert answer.body["error"]["details"][0]["field"].split(".")[0] == field


def test_unknown_field_is_a_422_naming_it(api: Api) -> None:
    answer = api.post_refund({**refund_body("S01-1234567-1234567-C000001"), "reason": "x"})
    assert (answer.status, answer.error_code) == (422, "ValidationError")
    assert [d["field"] for d in answer.body["error"]["details"]] == ["reason"]


def test_every_invalid_field_is_named(api: Api) -> None:
    answer = api.post_refund({"refund_id": "a_b", "amount": 1})
    fields = {d["field"] for d in answer.body["error"]["details"]}
    assert fields == {"refund_id", "amount", "amazon_capture_id", "currency_code"}


def test_unknown_route_answers_in_the_api_error_shape(api: Api) -> None:
    answer = api.call("GET", "/nothing", "/nothing")
    assert (answer.status, answer.error_code) == (404, "NotFound")


# --- reads ----------------------------------------------------------------------------------------


def test_unknown_refund_is_not_found(api: Api) -> None:
    answer = api.get_refund("never-requested")
    assert (answer.status, answer.error_code) == (404, "RefundNotFound")


def test_unknown_capture_is_not_found(api: Api) -> None:
    answer = api.get_capture("S01-1234567-1234567-C999999")
    assert (answer.status, answer.error_code) == (404, "CaptureNotFound")


def test_capture_ledger_lists_refunds_and_external_refunds(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture("100.00")
    external = simulator.external_refund(capture_id, "5.00", "AmazonA-ZRefund")
    api.post_refund(refund_body(capture_id, "r1", "10.00"))
    ledger = api.get_capture(capture_id).body
    assert ledger["external"] == "5.00"
    assert ledger["available"] == "85.00"
    assert ledger["refunds"] == [{"refund_id": "r1", "amount": "10.00", "status": "Pending"}]
    assert [e["amazon_refund_id"] for e in ledger["external_refunds"]] == [external["amazon_refund_id"]]


# --- resolve --------------------------------------------------------------------------------------


def test_resolving_a_refund_that_needs_no_manual_action_is_an_invalid_state(
    api: Api, capture: Capture
) -> None:
    api.post_refund(refund_body(capture()))
    answer = api.resolve("ord-1001-r1", {"method": "gift_card", "note": "Gift card sent"})
    assert (answer.status, answer.error_code) == (409, "InvalidRefundState")
    assert answer.body["error"]["details"]["status"] == "Pending"


def test_resolving_an_unknown_refund_is_not_found(api: Api) -> None:
    answer = api.resolve("never-requested", {"method": "gift_card", "note": "x"})
    assert (answer.status, answer.error_code) == (404, "RefundNotFound")


def test_resolve_with_an_unknown_method_is_a_validation_error(api: Api) -> None:
    answer = api.resolve("ord-1001-r1", {"method": "cash", "note": "x"})
    assert (answer.status, answer.error_code) == (422, "ValidationError")
    assert answer.body["error"]["details"][0]["field"] == "method"


def test_manual_action_refund_is_resolved_out_of_band(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore
) -> None:
    from datetime import UTC, datetime

    from amazon_pay_refunds.core.lifecycle import AttemptOutcome, apply_observation
    from amazon_pay_refunds.core.models import AttemptState

    api.post_refund(refund_body(capture(), seller_refund_note=AMAZON_REJECTED))
    declined = AttemptOutcome(
        AttemptState.DECLINED, "ipn:n-1", "AmazonRejected", refund_reference_id="ord-1001-r1_1"
    )
    store.transition("ord-1001-r1", lambda r: apply_observation(r, declined, at=datetime.now(UTC)))
    answer = api.resolve("ord-1001-r1", {"method": "gift_card", "note": "Gift card sent"})
    assert (answer.status, answer.body["status"]) == (200, "ResolvedOutOfBand")
    assert answer.body["history"][-1]["cause"] == "operator:resolve"


def test_resolving_again_answers_the_resolved_refund(api: Api, capture: Capture, store: RefundStore) -> None:
    from datetime import UTC, datetime

    from amazon_pay_refunds.core.lifecycle import AttemptOutcome, apply_observation
    from amazon_pay_refunds.core.models import AttemptState

    api.post_refund(refund_body(capture()))
    declined = AttemptOutcome(
        AttemptState.DECLINED, "ipn:n-1", "AmazonRejected", refund_reference_id="ord-1001-r1_1"
    )
    store.transition("ord-1001-r1", lambda r: apply_observation(r, declined, at=datetime.now(UTC)))
    api.resolve("ord-1001-r1", {"method": "store_credit", "note": "Credit"})
    again = api.resolve("ord-1001-r1", {"method": "store_credit", "note": "Credit"})
    assert (again.status, again.body["status"]) == (200, "ResolvedOutOfBand")
    assert len(again.body["history"]) == 4


# --- secrets --------------------------------------------------------------------------------------


def test_secrets_never_appear_in_logs_or_answers(
    api: Api,
    capture: Capture,
    simulator: Simulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A full request, a refusal and an unreachable Amazon, with every log line and answer kept."""
    handler_module = importlib.import_module("functions.refund_api.app")
    structured = io.StringIO()  # the handler's Powertools logger writes JSON lines, with its extra keys
    json_lines = logging.StreamHandler(structured)
    json_lines.setFormatter(handler_module.logger.registered_formatter)
    service_logger = logging.getLogger(handler_module.logger.service)
    service_logger.addHandler(json_lines)
    # The library's lines (Amazon's errors among them) go out the same way in Lambda (structured_library_logs)
    library_logger = logging.getLogger("amazon_pay_refunds")
    library_logger.addHandler(json_lines)
    # Everything of ours down to DEBUG. (botocore's own DEBUG wire log prints GetSecretValue's answer: it
    # must never be switched on in a deployment, and is left at INFO here.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="amazon_pay_refunds")
    try:
        capture_id = capture("100.00")
        answers = [api.post_refund(refund_body(capture_id, "r1", "10.00"))]
        simulator.close_capture(capture_id)
        answers.append(api.post_refund(refund_body(capture_id, "r2", "10.00")))
        simulator.add_fault("Refund", "503", count=50)
        api.remaining_seconds = 5.0
        answers.append(api.post_refund(refund_body(capture_id, "r3", "10.00")))
        answers.append(api.get_capture(capture_id))
    finally:
        service_logger.removeHandler(json_lines)
        library_logger.removeHandler(json_lines)
    captured = capsys.readouterr()
    everything = "\n".join(
        [
            structured.getvalue(),
            captured.out,
            captured.err,
            caplog.text,
            json.dumps([a.body for a in answers]),
        ]
    )
    assert [a.status for a in answers] == [202, 422, 202, 200]
    assert '"amazon_error_code":"ServiceUnavailable"' in structured.getvalue()  # the logs were captured
    for secret in (DEFAULT_SECRET_KEY, MWS_AUTH_TOKEN):
        assert secret not in everything


def test_amounts_are_stored_as_exact_decimals(api: Api, capture: Capture, store: RefundStore) -> None:
    api.post_refund(refund_body(capture(), amount="0.10"))
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None and stored.amount == Decimal("0.10")


# --- hostile answers from Amazon's side -----------------------------------------------------------


@pytest.mark.parametrize("position", [900, 990, 1000, 1010])
def test_a_secret_amazon_echoes_across_the_message_limit_never_reaches_the_storefront(
    api: Api, capture: Capture, simulator: Simulator, monkeypatch: pytest.MonkeyPatch, position: int
) -> None:
    """A verbose error text (a proxy, a debug page) echoing the MWSAuthToken around character 1,000."""
    real = simulator.handle_mws

    def verbose(method: str, host: str, path: str, body: bytes) -> MwsAnswer:
        answer = real(method, host, path, body)
        if b"Action=Refund&" not in body:
            return answer
        message = "x" * (position - len(MWS_AUTH_TOKEN) // 2) + f" token={MWS_AUTH_TOKEN} " + "y" * 50
        error = MwsError("InvalidParameterValue", 400, message)
        return MwsAnswer(400, sim_responses.error_response(error, "rid-verbose"))

    monkeypatch.setattr(simulator, "handle_mws", verbose)
    answer = api.post_refund(refund_body(capture("100.00")))

    assert (answer.status, answer.error_code) == (422, "InvalidParameterValue")
    shown = answer.body["error"]["details"]["amazon_message"]
    assert len(shown) <= 1000
    half = len(MWS_AUTH_TOKEN) // 2
    for piece in (MWS_AUTH_TOKEN[:half], MWS_AUTH_TOKEN[half:], MWS_AUTH_TOKEN[:12], MWS_AUTH_TOKEN[-12:]):
        assert piece not in json.dumps(answer.body)


def test_an_answer_in_an_encoding_no_parser_reads_leaves_the_refund_requested(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore
) -> None:
    """Amazon made the refund, but its answer declares UTF-7: the outcome is unknown, never a 500."""
    capture_id = capture("100.00")
    simulator.add_fault("Refund", "accept-then-unreadable", count=50)
    api.remaining_seconds = 6.0

    answer = api.post_refund(refund_body(capture_id, amount="40.00"))

    assert (answer.status, answer.body["status"]) == (202, "Requested")
    assert simulator.capture_view(capture_id)["refunds"], "the simulator did not make the refund"
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None and stored.status.value == "Requested"
    assert api.get_capture(capture_id).body["in_flight"] == "40.00"


def test_a_capture_amount_no_store_can_hold_is_a_malformed_answer_not_a_500(
    api: Api, capture: Capture, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetCaptureDetails answering CaptureAmount 1e999999999: Decimal reads it, DynamoDB cannot store it."""
    real = simulator.handle_mws
    inflated_answers: list[str] = []

    def inflated(method: str, host: str, path: str, body: bytes) -> MwsAnswer:
        answer = real(method, host, path, body)
        if b"Action=GetCaptureDetails&" not in body or answer.status != 200:
            return answer
        text = re.sub(r"(<CaptureAmount>.*?<Amount>)[^<]*", r"\g<1>1e999999999", answer.body, flags=re.DOTALL)
        inflated_answers.append(text)
        return MwsAnswer(200, text)

    monkeypatch.setattr(simulator, "handle_mws", inflated)
    api.remaining_seconds = 5.0

    answer = api.post_refund(refund_body(capture("100.00")))

    assert inflated_answers and "<Amount>1e999999999</Amount>" in inflated_answers[0]
    assert (answer.status, answer.body["status"]) == (202, "Requested")
    assert refund_calls(simulator) == []  # never sent without a reservation


# --- who called, on the refund's history -----------------------------------------------------------


def test_an_api_key_callers_key_id_is_recorded_and_never_the_key(
    api: Api, capture: Capture, store: RefundStore
) -> None:
    """The event's identity (events/refund_api/post_refunds.json) carries the key "local-dev-key" and its
    id "abcd1234ef": the history names the id; neither the answer nor the stored item holds the key."""
    answer = api.post_refund(refund_body(capture()))
    assert answer.body["history"][0]["caller"] == "api-key:abcd1234ef"
    assert "local-dev-key" not in json.dumps(answer.body)
    key = {"pk": {"S": "REFUND#ord-1001-r1"}, "sk": {"S": "REFUND"}}
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=TABLE, Key=key)["Item"]
    assert "api-key:abcd1234ef" in json.dumps(item)
    assert "local-dev-key" not in json.dumps(item)


def test_a_signed_callers_principal_is_recorded_on_creation_and_on_resolve(
    api: Api, capture: Capture, store: RefundStore
) -> None:
    from datetime import UTC, datetime

    from amazon_pay_refunds.core.lifecycle import AttemptOutcome, apply_observation
    from amazon_pay_refunds.core.models import AttemptState

    storefront = "arn:aws:sts::123456789012:assumed-role/storefront-backend/i-0abc"
    operator = "arn:aws:iam::123456789012:user/jane-operator"

    handler = api.handler

    def signed_by(arn: str) -> Callable[..., Any]:
        def handle(event: dict[str, Any], context: Any) -> Any:
            event["requestContext"]["identity"].update(userArn=arn, apiKey=None, apiKeyId=None)
            return handler(event, context)

        return handle

    api.handler = signed_by(storefront)
    api.post_refund(refund_body(capture(), seller_refund_note=AMAZON_REJECTED))
    declined = AttemptOutcome(
        AttemptState.DECLINED, "ipn:n-1", "AmazonRejected", refund_reference_id="ord-1001-r1_1"
    )
    store.transition("ord-1001-r1", lambda r: apply_observation(r, declined, at=datetime.now(UTC)))
    api.handler = signed_by(operator)
    history = api.resolve("ord-1001-r1", {"method": "gift_card", "note": "Gift card sent"}).body["history"]
    assert [(h["to"], h.get("caller")) for h in history] == [
        ("Requested", storefront),
        ("Pending", None),
        ("ManualActionRequired", None),
        ("ResolvedOutOfBand", operator),
    ]
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None and stored.history[-1].caller == operator
