"""Amazon Pay API v2 (Checkout v2): signed JSON calls for refunds (Create Refund, Get Refund, Get Charge)."""
