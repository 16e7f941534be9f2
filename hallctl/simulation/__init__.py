"""The simulation side: byte-compatible simulators for every device kind, their control API, the demo.

Nothing in the production path imports this package: the daemon loads it only when
the config has a ``simulate = true`` device (``hallctl demo`` and the tests).
"""
