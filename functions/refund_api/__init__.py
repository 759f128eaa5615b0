"""RefundApi: the storefront's refund API (SPEC §3)."""
