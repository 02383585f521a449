"""Contract tests for zoo plugins (a pytest plugin, entry point ``pytest11``)."""
