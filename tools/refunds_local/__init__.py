"""The embedded local stack: moto in-process, the simulator, and the API over real HTTP."""
