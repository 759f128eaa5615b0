"""The operators' command line, `refunds`."""
