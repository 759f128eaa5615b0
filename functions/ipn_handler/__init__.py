"""IpnHandler: Amazon Pay IPNs posted by Amazon SNS to `POST /ipn` (CONTRACT §5)."""
