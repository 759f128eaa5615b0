"""Use cases: what each function does, over the domain (pure) and the adapters (store, Amazon Pay)."""
