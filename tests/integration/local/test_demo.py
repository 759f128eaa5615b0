"""`python -m refunds_local.demo`: runs the scenarios on a local stack, prints timelines, exit code says."""

from __future__ import annotations

import pytest

from refunds_local import demo


def test_a_scenario_that_ends_as_expected_prints_its_timeline_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert demo.main(["--scenario", "over-refund refused"]) == 0
    out = capsys.readouterr().out
    assert "== over-refund refused" in out
    assert "-> 422 RefundExceedsCapture" in out
    assert "Requested -> Pending" in out
    assert "event " in out and "Refund Requested" in out
    assert "1 of 1 scenarios as expected" in out


def test_a_scenario_that_does_not_end_as_expected_is_named_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def expects_the_impossible(run: demo.Demo) -> None:
        """A refund of more than was captured, expected to be accepted."""
        capture_id = run.capture("10.00")
        run.expect_answer(run.request_refund(run.refund_id(1), capture_id, "10.01"), 202)

    scenarios = [demo.Scenario("impossible", expects_the_impossible), *demo.SCENARIOS[2:3]]
    monkeypatch.setattr(demo, "SCENARIOS", scenarios)
    assert demo.main([]) == 1
    out = capsys.readouterr().out
    assert "1 of 2 scenarios as expected" in out
    assert "FAILED impossible: answered 422 RefundExceedsCapture, expected 202" in out


def test_an_unknown_scenario_is_refused() -> None:
    with pytest.raises(SystemExit):
        demo.main(["--scenario", "no such scenario"])
