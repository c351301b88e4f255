"""Sensors: tasks that check a condition and, when it does not hold yet, wait for it (deferred)."""
