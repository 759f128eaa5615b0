"""Helpers shared by tests in more than one folder (doubles of the ports, signed SNS messages, settings).

Test modules import from here, never from another test folder (tests/unit/x importing tests/integration/y).
"""
