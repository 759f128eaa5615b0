"""IpnHandler: Amazon Pay IPNs posted by Amazon SNS to `POST /ipn` (SPEC §5)."""
