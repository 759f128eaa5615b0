"""Amazon Pay v1 (MWS OffAmazonPayments, 2013-01-01) protocol layer."""
