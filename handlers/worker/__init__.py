"""The inbox worker: the apply loop (``loop``), one row's apply (``apply``) and the periodic duties (``duties``)."""
