"""RetryWorkflow steps, starter and resumption over in-memory doubles."""
