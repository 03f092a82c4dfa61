"""The inbox worker: the dispatch loop (``loop``), one stream's turn (``settle``), one row's apply (``apply``) and the
periodic duties (``duties``)."""
