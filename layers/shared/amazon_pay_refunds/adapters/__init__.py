"""Adapters: the outside world behind the ports (DynamoDB, Amazon Pay v1 over MWS, SNS-delivered IPNs)."""
