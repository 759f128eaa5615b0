"""Deterministic simulation of the refund service under chaos (seeded scheduler, virtual time, moto, the
Amazon Pay simulator in process); see harness.py. Replay one seed: `python -m tests.simulation SEED`."""
