"""Reconciler: the scheduled pass over stuck refunds and the open-refund metrics (CONTRACT §6)."""
