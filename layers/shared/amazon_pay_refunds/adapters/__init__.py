"""Protocol adapters: how the service talks to the outside (Amazon Pay v1 and v2, SNS, DynamoDB)."""
