"""The commands that run the upstream simulator: ``demo`` (the whole product against it) and ``simulate``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from receiver.cli.common import CommandFailed
from receiver.settings import Settings


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """The demo; an app dir given explicitly (flag or CORPSYNC_APP_DIR) receives the simulated corps, and must not
    hold corps of its own."""
    from receiver.cli.demo import main as demo_main

    app_dir: Path | None = None
    if getattr(args, "sub_app_dir", None) or args.app_dir or os.environ.get("CORPSYNC_APP_DIR"):
        app_dir = settings.app_dir
        if (app_dir / "corps").is_dir() and any((app_dir / "corps").iterdir()):
            raise CommandFailed(
                f"demo writes its simulated corps into the app dir, and {app_dir} already has corps; "
                "give it an empty directory"
            )
        app_dir.mkdir(parents=True, exist_ok=True)
    return demo_main(settings, args.seconds, args.members, args.rate, app_dir=app_dir)


def simulate(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.testing import main as simulator_main

    return simulator_main(list(args.passthrough))
