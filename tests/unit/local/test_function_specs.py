"""The local stack reads each function's concurrency limit from the template as deployed: a literal, or a
parameter's value (the template's default unless the stack overrides it)."""

from __future__ import annotations

from refunds_local.template import TEMPLATE_PATH, function_specs, load_template


def test_reserved_concurrency_follows_the_template_parameters_and_their_overrides() -> None:
    template = load_template(TEMPLATE_PATH)
    by_default = function_specs(template)
    assert by_default["RefundApiFunction"].reserved_concurrency == 20
    assert by_default["IpnHandlerFunction"].reserved_concurrency == 10
    assert by_default["ReconcilerFunction"].reserved_concurrency == 1
    assert by_default["EventPublisherFunction"].reserved_concurrency is None
    overridden = function_specs(template, {"RefundApiReservedConcurrency": "5"})
    assert overridden["RefundApiFunction"].reserved_concurrency == 5
    assert overridden["IpnHandlerFunction"].reserved_concurrency == 10
