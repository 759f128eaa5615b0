"""Property tests: in whatever order, duplicated or contradictory, reports arrive, the money rules hold."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from amazon_pay_refunds.core.ledger import EffectKind, LedgerEffect
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    AttemptOutcome,
    ManualActionRequired,
    NewAttemptStarted,
    Observation,
    PermanentlyRefused,
    ResolvedOutOfBand,
    TransitionNotAllowed,
    reservation_state,
)
from amazon_pay_refunds.core.models import FINAL_STATUSES, AttemptState, Refund, RefundStatus
from tests.support.domain import new_refund, step

PENDING, COMPLETED, DECLINED = AttemptState.PENDING, AttemptState.COMPLETED, AttemptState.DECLINED


def amazon_id(attempt: int) -> str:
    return f"S01-1234567-1234567-R00000{attempt}"


def facts(attempt: int, final: AttemptState, reason: str | None) -> list[Observation]:
    """Everything Amazon may report about one attempt: its answer, IPNs and a poll."""
    reference = f"ord-1001-r1_{attempt}"
    return [
        AttemptAccepted(attempt, amazon_id(attempt)),
        AttemptOutcome(
            PENDING, f"ipn:p{attempt}", amazon_refund_id=amazon_id(attempt), refund_reference_id=reference
        ),
        AttemptOutcome(
            final,
            f"ipn:f{attempt}",
            reason,
            amazon_refund_id=amazon_id(attempt),
            refund_reference_id=reference,
        ),
        AttemptOutcome(final, "poll:GetRefundDetails", reason, amazon_refund_id=amazon_id(attempt)),
    ]


def deliveries(observations: list[Observation]) -> st.SearchStrategy[list[Observation]]:
    """Every observation at least once, plus duplicates, in any order."""
    return st.lists(st.sampled_from(observations), max_size=8).flatmap(
        lambda extra: st.permutations(observations + extra)
    )


@dataclass(frozen=True)
class Outcome:
    status: RefundStatus
    reason_code: str | None
    attempt_states: tuple[AttemptState, ...]
    reservation: str


def outcome(refund: Refund) -> Outcome:
    return Outcome(
        refund.status, refund.reason_code, tuple(a.state for a in refund.attempts), reservation_state(refund)
    )


def deliver(refund: Refund, observations: list[Observation], effects: list[EffectKind]) -> Refund:
    for observation in observations:
        transition = step(refund, observation)
        if transition.effect is not None:
            effects.append(transition.effect.kind)
        refund = transition.refund
    return refund


scenarios = st.sampled_from(
    [
        (COMPLETED, None, None),
        (DECLINED, "AmazonRejected", None),
        (DECLINED, "ProcessingFailure", (COMPLETED, None)),
        (DECLINED, "ProcessingFailure", (DECLINED, "ProcessingFailure")),
        (DECLINED, "ProcessingFailure", (DECLINED, "AmazonRejected")),
    ]
)


@settings(max_examples=300)
@given(st.data(), scenarios)
def test_any_order_with_duplicates_converges_to_the_same_outcome(
    data: st.DataObject, scenario: tuple[AttemptState, str | None, tuple[AttemptState, str | None] | None]
) -> None:
    first_final, first_reason, retry = scenario
    first = facts(1, first_final, first_reason)

    def run(
        first_batch: list[Observation], second_batch: list[Observation] | None
    ) -> tuple[Refund, list[EffectKind]]:
        effects: list[EffectKind] = []
        refund = deliver(new_refund(), first_batch, effects)
        if second_batch is not None:
            refund = deliver(refund, [NewAttemptStarted(2), *second_batch], effects)
        return refund, effects

    second = None if retry is None else facts(2, *retry)
    expected, expected_effects = run(first, second)
    shuffled_first = data.draw(deliveries(first))
    shuffled_second = None if second is None else data.draw(deliveries(second + first))
    actual, actual_effects = run(shuffled_first, shuffled_second)
    assert outcome(actual) == outcome(expected)
    assert actual_effects == expected_effects


def pool() -> list[Observation]:
    """Reports and commands, including anomalies (two attempts completing, contradicting reports)."""
    observations: list[Observation] = []
    for attempt in (1, 2):
        answer, pending, completed, _ = facts(attempt, COMPLETED, None)
        declined_pf = facts(attempt, DECLINED, "ProcessingFailure")[2]
        rejected = facts(attempt, DECLINED, "AmazonRejected")[3]
        refused = PermanentlyRefused(attempt, "CaptureNotRefundable")
        observations += [answer, pending, completed, declined_pf, rejected, refused]
    return [
        *observations,
        NewAttemptStarted(2),
        NewAttemptStarted(3),
        ManualActionRequired("RefundOutcomeUnknown", "reconciler:stuck"),
        ResolvedOutOfBand("gift_card", "GC-1"),
    ]


def progress(refund: Refund) -> tuple[int, ...]:
    """Statuses only move forward along this order (retries restart the phase with a higher attempt)."""
    if refund.status in FINAL_STATUSES:
        return (4,)
    if refund.status is RefundStatus.MANUAL_ACTION_REQUIRED:
        return (3,)
    if refund.status is RefundStatus.RETRY_SCHEDULED:
        declined = max(a.attempt for a in refund.attempts if a.state is DECLINED)
        return (0, declined, 2)
    if refund.status is RefundStatus.PENDING:
        return (0, refund.latest_attempt.attempt, 1)
    return (0, 1, 0)


random_streams = st.lists(st.sampled_from(pool()), max_size=20)


def walk(observations: list[Observation]) -> list[tuple[Refund, Refund, LedgerEffect | None]]:
    refund = new_refund()
    steps = []
    for index, observation in enumerate(observations, start=1):
        try:
            transition = step(refund, observation, seconds=index)
        except TransitionNotAllowed:
            continue
        steps.append((refund, transition.refund, transition.effect))
        refund = transition.refund
    return steps


@settings(max_examples=1000)
@given(random_streams)
def test_statuses_never_move_backwards_and_finals_stay_final(observations: list[Observation]) -> None:
    for before, after, _ in walk(observations):
        assert progress(after) >= progress(before)
        if before.is_final:
            assert after.status is before.status


@settings(max_examples=1000)
@given(random_streams)
def test_history_is_append_only_and_records_every_status_change(observations: list[Observation]) -> None:
    for before, after, _ in walk(observations):
        assert after.history[: len(before.history)] == before.history
        if after.status is not before.status:
            assert (after.history[-1].from_, after.history[-1].to) == (before.status, after.status)
        assert after.history[-1].to is after.status


@settings(max_examples=1000)
@given(random_streams)
def test_a_refund_is_counted_completed_or_released_at_most_once(observations: list[Observation]) -> None:
    effects = [effect for _, _, effect in walk(observations) if effect is not None]
    assert len(effects) <= 1


@settings(max_examples=1000)
@given(random_streams)
def test_a_new_attempt_only_starts_after_the_previous_one_was_declined(
    observations: list[Observation],
) -> None:
    for before, after, _ in walk(observations):
        if len(after.attempts) > len(before.attempts):
            assert before.latest_attempt.state is DECLINED
            assert not any(a.state is COMPLETED for a in before.attempts)


final_paths = st.sampled_from(
    [
        [facts(1, COMPLETED, None)[0], facts(1, COMPLETED, None)[2]],
        [PermanentlyRefused(1, "CaptureNotRefundable")],
        [facts(1, DECLINED, "AmazonRejected")[2], ResolvedOutOfBand("gift_card", "GC-1")],
        [
            facts(1, COMPLETED, None)[0],
            ManualActionRequired("RefundOutcomeUnknown", "reconciler:stuck"),
            ResolvedOutOfBand("gift_card", "GC-1"),
        ],
    ]
)


@settings(max_examples=300)
@given(final_paths, random_streams)
def test_nothing_moves_a_final_refund(path: list[Observation], observations: list[Observation]) -> None:
    steps = walk(path + observations)
    final = next(after for _, after, _ in steps if after.is_final)
    assert steps[-1][1].status is final.status
    assert steps[-1][1].reason_code == final.reason_code
