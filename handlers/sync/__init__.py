"""Full sync: when it runs (``scheduler``), why (``drift``), one run (``fullsync``) and its merge (``reconcile``)."""
