"""The commands that run the upstream simulator: ``demo`` (the whole product against it) and ``simulate``."""

from __future__ import annotations

import argparse

from receiver.settings import Settings


def demo(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.cli.demo import main as demo_main

    return demo_main(settings, args.seconds, args.members, args.rate)


def simulate(args: argparse.Namespace, settings: Settings) -> int:
    from receiver.testing import main as simulator_main

    return simulator_main(list(args.passthrough))
