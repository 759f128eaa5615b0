"""Pure refund domain: RefundReferenceId derivation, refund and ledger models, lifecycle and ledger rules.

Nothing in this package does I/O; adapters (store/, mws/, events.py) and handlers do.
"""
