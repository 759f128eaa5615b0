"""Reconciler: the scheduled pass over stuck refunds and the open-refund metrics (SPEC §6)."""
