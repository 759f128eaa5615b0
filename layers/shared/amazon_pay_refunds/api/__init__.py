"""The HTTP layer the Lambda handlers use: request bodies and models, error mapping, OpenAPI."""
