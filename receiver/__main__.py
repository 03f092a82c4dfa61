"""``python -m receiver`` runs the corpsync command line."""

from receiver.cli import main

raise SystemExit(main())
