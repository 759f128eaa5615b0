"""Confirming an SNS subscription: one GET of the verified SubscribeURL (`ports.SubscribeUrlFetcher`)."""

from __future__ import annotations

import requests

from amazon_pay_refunds.ports import SubscriptionNotConfirmed

SUBSCRIBE_TIMEOUT = (3.05, 5.0)


class RequestsSubscribeUrlFetcher:
    """The default confirmation: one GET, verified TLS, no redirects, connect/read timeouts."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self._session = session or requests.Session()

    def __call__(self, url: str) -> None:
        try:
            response = self._session.get(url, timeout=SUBSCRIBE_TIMEOUT, allow_redirects=False)
        except requests.RequestException as error:
            raise SubscriptionNotConfirmed(type(error).__name__) from None
        if response.status_code != 200:
            raise SubscriptionNotConfirmed(f"SNS answered {response.status_code}")
