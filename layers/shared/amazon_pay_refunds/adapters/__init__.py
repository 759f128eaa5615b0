"""Adapters: the outside world behind the ports (DynamoDB, Amazon Pay v1 and v2, SNS-delivered IPNs)."""
