"""Amazon Pay v1 sandbox simulator (MWS wire protocol, control API, signed IPNs); never deployed."""

from .simulator import MwsAnswer, Simulator
from .state import RefundChange

__all__ = ["MwsAnswer", "RefundChange", "Simulator"]
