"""RefundApi: the storefront's refund API (CONTRACT §3)."""
