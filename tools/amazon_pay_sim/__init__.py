"""Amazon Pay v1 sandbox simulator (MWS wire protocol, control API, signed IPNs); never deployed."""
