"""The RetryWorkflow end to end on the local stack: moto runs the state machine, the simulator is Amazon."""
