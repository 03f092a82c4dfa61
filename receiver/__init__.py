"""corpsync's edge and composition root: HTTP, crypto, envelopes, inbox intake, worker, CLI, config."""

__version__ = "0.1.0"
