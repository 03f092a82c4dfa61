"""Helpers the tests share, imported as ``tests.support.<module>`` (the tests are one package)."""
