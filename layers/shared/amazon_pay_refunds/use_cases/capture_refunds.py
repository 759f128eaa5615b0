"""Every refund Amazon reports on a capture, read and classified (core/classification.py) before a
decision depends on it: the ledger's opening, the headroom check before each Refund call, retry
eligibility. The IPN handler classifies the one refund an IPN reports with the same rule.

- `opening_refunds`: when a ledger opens, each refund in the capture's IdList is read (GetRefundDetails),
  so that Pending ones (not in Amazon's RefundedAmount) count and every type is known.
- `survey_capture`: the capture's refunds the ledger does not account for yet (not an attempt of ours, not
  a recorded external refund, or an external entry never read) are read; the external ones are recorded.
  A refund Amazon lists but will not describe (a permanent error) is `unreadable`: the caller holds the
  refund and hands it to a person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from amazon_pay_refunds.core.classification import (
    DECLINED,
    REASON_A_TO_Z,
    REASON_CHARGEBACK,
    UNTYPED_REFUND_TYPE,
    Ours,
    ReportedRefund,
    classify,
    forbids_retry,
    named_refund_id,
)
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import AttemptOutcome, Transition, apply_observation
from amazon_pay_refunds.core.models import (
    AttemptState,
    Chargeback,
    ExternalRefund,
    PaymentApi,
    Refund,
    RefundStatus,
    parse_qualified_id,
    qualified_id,
)
from amazon_pay_refunds.ports import (
    AmazonPayError,
    CaptureDetails,
    CaptureRefundsStore,
    KnownRefunds,
    RefundDetails,
    RefundDetailsSource,
    RefundTransitions,
    StoreBusy,
)

logger = logging.getLogger(__name__)


def reported(
    details: RefundDetails, *, amazon_capture_id: str | None, seller_id: str | None
) -> ReportedRefund:
    """Amazon's RefundDetails (a GetRefundDetails answer or an IPN's) as the classification reads them."""
    return ReportedRefund(
        amazon_refund_id=details.amazon_refund_id,
        refund_reference_id=details.refund_reference_id,
        amount=details.refund_amount.amount,
        currency_code=details.refund_amount.currency_code,
        refund_type=details.refund_type,
        state=details.refund_status.state,
        amazon_capture_id=amazon_capture_id,
        seller_id=seller_id,
    )


def classify_with_store(
    store: CaptureRefundsStore, report: ReportedRefund, known: KnownRefunds | None = None
) -> Ours | None:
    """Which attempt of ours the report is (the refund its reference id names, as stored), or None."""
    refund_id = named_refund_id(report.refund_reference_id)
    if refund_id is None:
        return None
    named = known.refunds.get(refund_id) if known is not None else None
    if named is None:
        named = store.get_refund(refund_id)
    return classify(report, named)


# The cause an attempt's state read with Get Refund (GetRefundDetails) is applied with: the reconciler's
# and the retry workflow's polls, and the survey's re-reads of pending v2 refunds.
POLL_CAUSE = "poll:GetRefundDetails"


def polled_outcome(
    details: RefundDetails, state: AttemptState, *, refund_reference_id: str | None = None
) -> AttemptOutcome:
    """What a Get Refund read says of an attempt, as an observation to apply (monotonic: a racing IPN is
    harmless). `refund_reference_id`: the attempt's own, when the read names none (API v2)."""
    return AttemptOutcome(
        state=state,
        cause=POLL_CAUSE,
        reason_code=details.refund_status.reason_code,
        amazon_refund_id=details.amazon_refund_id,
        refund_reference_id=refund_reference_id or details.refund_reference_id,
    )


V2_REFUNDED_PREFIX = "v2-refunded-"  # the id of an entry explaining part of a charge's refundedAmount
COMPLETED = "Completed"
PENDING = "Pending"


def untracked_v2_refunds(
    capture: CaptureDetails,
    known: KnownRefunds | None,
    *,
    completed_unrecorded: frozenset[str] = frozenset(),
    unsent: frozenset[tuple[str, int]] = frozenset(),
) -> ReportedRefund | None:
    """A v2 charge's refunds the ledger does not account for, as one external refund, or None.

    Amazon lists no refunds on a v2 charge, only `refundedAmount`, which holds its `Refunded` refunds
    (not the `RefundInitiated` or `Declined` ones). What the ledger cannot explain is someone else's
    (Seller Central, the seller's other systems, an A-to-z claim or a chargeback):

        untracked = refundedAmount
                    - our refunds Completed
                    - our refunds Amazon reports Refunded whose answer is not recorded yet
                      (`completed_unrecorded`: refund ids the survey just read so, see `survey_capture`)
                    - the recorded external entries in state Completed
                    - the most of the rest that our refunds whose attempt is sent but unanswered
                      (`sent_unanswered`) can be: whole amounts only; not those in `unsent`
                      ((refund_id, attempt) known never sent: reserved or created in this
                      invocation, so not at Amazon)

    How each refund by others is counted exactly once (core/ledger.py counts every external entry that is
    not Declined when it is recorded, and `settle_external` only stops counting one Amazon declined):
    - seen first by its IPN while `RefundInitiated`: recorded by its id, Pending, and counted at once. It is
      not in refundedAmount yet, so it explains none of it. When it becomes `Refunded` (its IPN, or the
      survey's re-read of Pending entries, which runs before this rule) the entry moves to Completed and
      from then on explains its amount of refundedAmount: it is never recorded a second time. If it is
      `Declined` instead, it moved no money: the entry is no longer counted and explains nothing.
    - seen first in refundedAmount (its IPN lost, or late): the part nothing above explains is recorded
      as one entry `v2-refunded-{total}` (Completed, so it explains its share from then on; two reads of
      the same total with the same ledger record it once). When an entry of that id is already recorded
      yet the total is still not explained (an attempt of ours that was subtracted while sent but
      unanswered turned out never made), the remainder is `v2-refunded-{total}+{remainder}`: recorded, not
      swallowed by the first entry's id. Its IPN, arriving later, finds no entry by its id, reads
      `Refunded`, and only runs the survey again, which finds nothing left to explain.
    Conservative choices: one of our refunds Amazon already completed whose answer is not recorded yet and
    that the survey did not read (a v1 capture, or a read that failed) is counted as external too (money is
    never assumed to be still there), except while its attempt is sent but unanswered (a timeout, an
    unreadable answer): that attempt may be what refundedAmount holds, and taking it for someone else's
    refused a refund Amazon had made (the simulation found it); resending it under its idempotency key
    creates nothing if Amazon made it, and once its answer is recorded the rule above applies again.
    Such attempts explain at most the largest sum of their amounts that fits in what is unexplained
    (refundedAmount holds whole refunds: `_most_within`); that part is `ambiguous_v2_refunded`, and a new
    attempt it could overdraw is held for a person (submission.check_capture_headroom).
    External entries recorded before entries had a state (none on a v2 charge) explain refundedAmount as
    Completed ones do. The entry carries no type (`UNTYPED_REFUND_TYPE`), so it forbids a
    ProcessingFailure retry on the charge.
    """
    api, _ = parse_qualified_id(capture.amazon_capture_id)
    if api is not PaymentApi.V2 or capture.id_list:
        return None
    unexplained, unanswered = _v2_refunded_unexplained(capture, known, completed_unrecorded, unsent)
    untracked = unexplained - unanswered
    if untracked <= 0:
        return None
    refunded = capture.refunded_amount.amount
    entry_id = f"{V2_REFUNDED_PREFIX}{refunded}"
    if known is not None and any(e.amazon_refund_id == entry_id for e in known.externals):
        entry_id = f"{entry_id}+{untracked}"
    return ReportedRefund(
        amazon_refund_id=entry_id,
        refund_reference_id="",
        amount=untracked,
        currency_code=capture.refunded_amount.currency_code,
        refund_type=UNTYPED_REFUND_TYPE,
        state=COMPLETED,
        amazon_capture_id=capture.amazon_capture_id,
        seller_id=None,
    )


def ambiguous_v2_refunded(
    capture: CaptureDetails,
    known: KnownRefunds | None,
    *,
    completed_unrecorded: frozenset[str] = frozenset(),
    unsent: frozenset[tuple[str, int]] = frozenset(),
) -> Decimal:
    """How much of a v2 charge's refundedAmount is either one of our sent-but-unanswered attempts or a
    refund by others, which cannot be told apart (Amazon lists no refunds on a charge): zero for v1."""
    api, _ = parse_qualified_id(capture.amazon_capture_id)
    if api is not PaymentApi.V2 or capture.id_list:
        return Decimal(0)
    _, unanswered = _v2_refunded_unexplained(capture, known, completed_unrecorded, unsent)
    return unanswered  # at most what is unexplained, never negative (`_most_within`)


def _v2_refunded_unexplained(
    capture: CaptureDetails,
    known: KnownRefunds | None,
    completed_unrecorded: frozenset[str],
    unsent: frozenset[tuple[str, int]],
) -> tuple[Decimal, Decimal]:
    """(refundedAmount not explained by our refunds Completed or read Refunded and by the external entries
    in state Completed, the most of it our attempts sent but unanswered and not in `unsent` can be): see
    `untracked_v2_refunds`."""
    refunds = list(known.refunds.values()) if known is not None else []
    externals = list(known.externals) if known is not None else []

    def completed(refund: Refund) -> bool:
        return refund.status is RefundStatus.COMPLETED or refund.refund_id in completed_unrecorded

    ours = sum((r.amount for r in refunds if completed(r)), Decimal(0))
    external = sum(
        (e.amount for e in externals if e.amount is not None and e.state in (COMPLETED, None)), Decimal(0)
    )
    unexplained = capture.refunded_amount.amount - ours - external
    unanswered = [
        r.amount
        for r in refunds
        if not completed(r) and sent_unanswered(r) and (r.refund_id, r.latest_attempt.attempt) not in unsent
    ]
    return unexplained, _most_within(unanswered, unexplained)


# Beyond this many unanswered attempts on a charge the bound is their sum (less counted as others').
MAX_EXACT_UNANSWERED = 12


def _most_within(amounts: list[Decimal], limit: Decimal) -> Decimal:
    """The largest sum of some of `amounts` that is at most `limit` (0 when none fits). refundedAmount holds
    whole refunds: an unanswered attempt of 25.00 cannot be part of 20.00 left unexplained, so those 20.00
    are someone else's. Exact for the few attempts a charge has; beyond `MAX_EXACT_UNANSWERED`, the sum."""
    if limit <= 0:
        return Decimal(0)
    if len(amounts) > MAX_EXACT_UNANSWERED:
        return min(sum(amounts, Decimal(0)), limit)
    sums = {Decimal(0)}
    for amount in amounts:
        sums |= {total + amount for total in sums if total + amount <= limit}
    return max(sums)


def sent_unanswered(refund: Refund) -> bool:
    """The refund's latest attempt may be at Amazon, its answer not recorded (no refund id yet)."""
    attempt = refund.latest_attempt
    return (
        refund.status in (RefundStatus.REQUESTED, RefundStatus.RETRY_SCHEDULED)
        and not refund.reservation_pending
        and attempt.state is AttemptState.REQUESTED
        and attempt.amazon_refund_id is None
    )


def opening_refunds(
    store: CaptureRefundsStore,
    amazon_pay: RefundDetailsSource,
    capture: CaptureDetails,
    seller_id: str,
    *,
    deadline: float,
) -> tuple[ReportedRefund, ...]:
    """The external refunds already on a capture whose ledger is about to open, each one read.

    Raises AmazonPayError when one cannot be read: the ledger is not opened without knowing them.
    """
    found = []
    untracked = untracked_v2_refunds(capture, None)
    if untracked is not None:
        found.append(untracked)
    for amazon_refund_id in capture.id_list:
        details = amazon_pay.get_refund_details(amazon_refund_id, seller_id=seller_id, deadline=deadline)
        report = reported(details, amazon_capture_id=capture.amazon_capture_id, seller_id=seller_id)
        if classify_with_store(store, report) is None:
            found.append(report)
    return tuple(found)


def ledger_seed(
    store: CaptureRefundsStore,
    amazon_pay: RefundDetailsSource,
    capture: CaptureDetails,
    seller_id: str,
    *,
    allow_over_refund: bool,
    deadline: float,
    pending: tuple[ReportedRefund, ...] = (),
    ledger_id: str | None = None,
) -> LedgerSeed:
    """What opens a capture's (or v2 charge's) ledger: Amazon's capture with the refunds already on it
    (`opening_refunds`), plus `pending`: refunds by others known by id that Amazon's capture does not
    show yet (a v2 refund still `RefundInitiated`, read after `capture`), recorded with the opening so
    no survey can see the ledger without them. `ledger_id`: the ledger's id when the caller knows it
    (default: the capture's, as the Amazon Pay router qualifies it). The one home of a ledger's
    opening: the request path (RefundService) and the IPN handler both open ledgers through it.

    Raises AmazonPayError when a refund on the capture cannot be read."""
    already = opening_refunds(store, amazon_pay, capture, seller_id, deadline=deadline)
    return LedgerSeed(
        amazon_capture_id=ledger_id or capture.amazon_capture_id,
        seller_id=seller_id,
        currency_code=capture.capture_amount.currency_code,
        captured=capture.capture_amount.amount,
        refunds=already + pending,
        allow_over_refund=allow_over_refund,
        charge_permission_id=capture.charge_permission_id,
    )


class SurveyStore(CaptureRefundsStore, RefundTransitions, Protocol):
    """What a survey needs of the store: the capture's refunds, and (API v2) recording what a re-read of
    a pending refund learned."""


@dataclass(frozen=True)
class CaptureSurvey:
    """The capture's refunds after reading every one the ledger did not account for.

    `externals` are every external refund on the capture (recorded ones, and those read now); `known` is
    the ledger afterwards (None when the capture has no ledger: nothing was recorded); `unreadable` the
    AmazonRefundIds Amazon lists but refused to describe, with its error code.
    """

    capture: CaptureDetails
    known: KnownRefunds | None
    externals: tuple[ExternalRefund, ...]
    unreadable: tuple[tuple[str, str], ...] = ()
    # Attempts of ours Amazon already made whose answer was never recorded: (refund_id, attempt).
    ours_unrecorded: frozenset[tuple[str, int]] = frozenset()
    # API v2: the chargebacks recorded on the charge's permission (CHARGEBACK IPNs), oldest first.
    chargebacks: tuple[Chargeback, ...] = ()
    # API v2: refundedAmount that is either an unanswered attempt of ours or a refund by others.
    ambiguous: Decimal = Decimal(0)

    @property
    def retry_forbidden(self) -> str | None:
        """Why Amazon's procedure forbids a ProcessingFailure retry on this capture now, if it does: the
        reason and the refund, e.g. `AmazonA-ZRefund found: S01-...-R000003` (A-to-z ones first), or the
        chargeback recorded on a v2 charge's permission (`Chargeback found: {chargeback id}`): any one,
        whatever its state (conservative; docs/DESIGN.md says how the Disputes API could relax it)."""
        found = [
            (reason, external.amazon_refund_id)
            for external in self.externals
            if (reason := forbids_retry(external.refund_type if external.is_read else None)) is not None
        ]
        found += [(REASON_CHARGEBACK, chargeback.chargeback_id) for chargeback in self.chargebacks]
        if not found:
            return None
        # A-to-z first, then chargebacks (a refund's type or a CHARGEBACK IPN), then untyped refunds.
        rank = {REASON_A_TO_Z: 0, REASON_CHARGEBACK: 1}
        reason, amazon_refund_id = min(found, key=lambda f: rank.get(f[0], 2))
        return f"{reason}: {amazon_refund_id}"

    @property
    def hold_reason(self) -> str | None:
        """Why no refund may be sent on this capture until a person looked at it, if any."""
        if not self.unreadable:
            return None
        amazon_refund_id, code = self.unreadable[0]
        return f"External refund {amazon_refund_id} unreadable ({code})"


def survey_capture(
    store: SurveyStore,
    amazon_pay: RefundDetailsSource,
    capture: CaptureDetails,
    seller_id: str,
    *,
    deadline: float,
    now: Callable[[], datetime],
    unsent: frozenset[tuple[str, int]] = frozenset(),
) -> CaptureSurvey:
    """Read and classify the capture's refunds the ledger does not account for; record the external ones.

    On a v2 charge (Amazon lists no refunds there) the refunds the ledger knows as still pending are read
    again first (`_reread_pending_v2`): by-id external entries still Pending, and our attempts Amazon last
    reported Pending. What Amazon says now is applied, so that `untracked_v2_refunds` (Get Charge's
    refundedAmount) explains each refund once and the headroom is right before a Create Refund or a retry.
    `unsent`: attempts of ours ((refund_id, attempt)) known never to have been sent (see
    `untracked_v2_refunds`).

    Raises AmazonPayError when Amazon's answer is unknown (retryable): nothing can be decided yet.
    """
    capture_id = capture.amazon_capture_id
    known = store.known_refunds(capture_id)
    completed_unrecorded: frozenset[str] = frozenset()
    if known is not None and parse_qualified_id(capture_id)[0] is PaymentApi.V2:
        completed_unrecorded, changed = _reread_pending_v2(
            store, amazon_pay, capture_id, known, seller_id, deadline=deadline, now=now
        )
        if changed:
            known = store.known_refunds(capture_id) or known
    ours = (
        {a.amazon_refund_id for r in known.refunds.values() for a in r.attempts if a.amazon_refund_id}
        if known is not None
        else set()
    )
    recorded = {e.amazon_refund_id: e for e in known.externals} if known is not None else {}
    read_now: list[ExternalRefund] = []
    unreadable: list[tuple[str, str]] = []
    ours_unrecorded: set[tuple[str, int]] = set()
    for amazon_refund_id in capture.id_list:
        entry = recorded.get(amazon_refund_id)
        if amazon_refund_id in ours or (entry is not None and entry.is_read):
            continue
        try:
            details = amazon_pay.get_refund_details(amazon_refund_id, seller_id=seller_id, deadline=deadline)
        except AmazonPayError as error:
            if error.retryable:
                raise
            unreadable.append((amazon_refund_id, error.code))
            continue
        report = reported(details, amazon_capture_id=capture_id, seller_id=seller_id)
        attempt = classify_with_store(store, report, known)
        if attempt is not None:
            ours_unrecorded.add((attempt.refund_id, attempt.attempt))
            continue  # one of our attempts whose answer was lost: the IPN or the reconciler binds it
        external = ExternalRefund(amazon_refund_id, report.amount, report.refund_type, now(), report.state)
        read_now.append(external)
        if known is not None:
            store.record_external_refund(
                capture_id,
                amazon_refund_id,
                report.amount,
                report.currency_code,
                report.refund_type,
                at=external.recorded_at,
                state=report.state,
            )
            logger.warning(
                "capture %s: refund %s (%s, %s) that the ledger did not know is recorded as external",
                capture_id, amazon_refund_id, report.refund_type, report.state,
            )  # fmt: skip
    untracked = (
        untracked_v2_refunds(capture, known, completed_unrecorded=completed_unrecorded, unsent=unsent)
        if known is not None
        else None
    )
    if untracked is not None and known is not None:
        external = ExternalRefund(
            untracked.amazon_refund_id, untracked.amount, UNTYPED_REFUND_TYPE, now(), untracked.state
        )
        read_now.append(external)
        store.record_external_refund(
            capture_id,
            untracked.amazon_refund_id,
            untracked.amount,
            untracked.currency_code,
            UNTYPED_REFUND_TYPE,
            at=external.recorded_at,
            state=untracked.state,
        )
        logger.warning(
            "charge %s: %s refunded by others is recorded as external", capture_id, untracked.amount
        )
    if read_now and known is not None:
        known = store.known_refunds(capture_id) or known
    externals = tuple(known.externals) if known is not None else ()
    listed = {e.amazon_refund_id for e in externals}
    externals += tuple(e for e in read_now if e.amazon_refund_id not in listed)
    chargebacks = _chargebacks(store, capture, known, seller_id)
    ambiguous = ambiguous_v2_refunded(
        capture, known, completed_unrecorded=completed_unrecorded, unsent=unsent
    )
    return CaptureSurvey(
        capture, known, externals, tuple(unreadable), frozenset(ours_unrecorded), chargebacks, ambiguous
    )


def _reread_pending_v2(
    store: SurveyStore,
    amazon_pay: RefundDetailsSource,
    charge_id: str,
    known: KnownRefunds,
    seller_id: str,
    *,
    deadline: float,
    now: Callable[[], datetime],
) -> tuple[frozenset[str], bool]:
    """Get Refund for each refund on the v2 charge the ledger still knows as pending, and apply it:
    - a by-id external entry still Pending (recorded from its IPN): `Refunded` → Completed, `Declined` →
      Declined (no longer counted: core/ledger.py) with `update_external_refund_state`;
    - an attempt of ours still Pending: `Refunded` is applied as the reconciler's poll is (cause
      `poll:GetRefundDetails`; monotonic, so a racing IPN is harmless). A `Declined` one is left to its
      IPN, the reconciler or the retry workflow (which apply the deployment's retry limit): its
      reservation stays held meanwhile, which is the safe side.
    Returns the refund ids of ours Amazon reports Completed (whether or not that was recorded: the store
    may be busy) and whether anything was recorded. A retryable error is raised (nothing can be decided);
    a permanent one leaves that refund as it was (still counted: the safe side)."""
    completed: set[str] = set()
    changed = False

    def read(amazon_refund_id: str) -> RefundDetails | None:
        try:
            return amazon_pay.get_refund_details(
                qualified_id(PaymentApi.V2, amazon_refund_id), seller_id=seller_id, deadline=deadline
            )
        except AmazonPayError as error:
            if error.retryable:
                raise
            logger.warning("charge %s: refund %s unreadable (%s)", charge_id, amazon_refund_id, error.code)
            return None

    for entry in known.externals:
        if entry.state != PENDING or entry.amazon_refund_id.startswith(V2_REFUNDED_PREFIX):
            continue
        details = read(entry.amazon_refund_id)
        state = details.refund_status.state if details is not None else None
        if state in (COMPLETED, DECLINED):
            assert state is not None
            changed |= store.update_external_refund_state(charge_id, entry.amazon_refund_id, state, at=now())
    for refund in known.refunds.values():
        if refund.is_final:
            continue
        for attempt in refund.attempts:
            if attempt.state is not AttemptState.PENDING or attempt.amazon_refund_id is None:
                continue
            details = read(attempt.amazon_refund_id)
            if details is None or details.refund_status.state != COMPLETED:
                continue
            completed.add(refund.refund_id)
            outcome = polled_outcome(
                details, AttemptState.COMPLETED, refund_reference_id=attempt.refund_reference_id
            )
            try:
                transition = store.transition(refund.refund_id, _observing(outcome, now))
            except StoreBusy:
                continue  # still subtracted from refundedAmount through `completed`
            changed |= transition.changed
    return frozenset(completed), changed


def _observing(outcome: AttemptOutcome, now: Callable[[], datetime]) -> Callable[[Refund], Transition]:
    return lambda current: apply_observation(current, outcome, at=now())


def _chargebacks(
    store: CaptureRefundsStore, capture: CaptureDetails, known: KnownRefunds | None, seller_id: str
) -> tuple[Chargeback, ...]:
    """The chargebacks recorded on a v2 charge's permission, which the Get Charge just made names (so a
    ledger opened before the permission was kept needs no other read); the ledger learns it then."""
    permission = capture.charge_permission_id
    if permission is None:
        return ()
    if known is not None and known.charge_permission_id is None:
        store.note_charge_permission(capture.amazon_capture_id, permission)
    return store.chargebacks(seller_id, permission)
