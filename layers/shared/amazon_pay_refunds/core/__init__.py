"""Pure refund domain: RefundReferenceId derivation, refund and ledger models, lifecycle and ledger rules,
classification of a capture's refunds, retry eligibility, reconciliation planning.

Nothing in this package does I/O and nothing here imports the rest of the library: the adapters
(adapters/), events.py and the handlers do the I/O; ports.py names what the use cases need.
"""
