"""A private PostgreSQL cluster that checks passwords (the shared test server trusts every local connection), from
the binaries the embedded server ships with."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

PASSWORD = "right-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def password_cluster() -> Iterator[str]:
    """A running cluster whose ``postgres`` role logs in with PASSWORD over TCP (scram-sha-256); yields its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pgserver
        from pgserver import utils

    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"
    root = Path(tempfile.mkdtemp(prefix="corpsync-pw-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the user pgserver makes for the same reason
        utils.ensure_user_exists("pgserver")
        utils.ensure_prefix_permissions(bin_dir)
        utils.ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        utils.ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        as_user = ["runuser", "-u", "pgserver", "--"]
        shutil.chown(root, "pgserver")
    (root / "pw").write_text(PASSWORD + "\n")
    os.chmod(root / "pw", 0o644)
    data, port = root / "data", _free_port()
    run = [*as_user]
    subprocess.run(
        [*run, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
         f"--pwfile={root / 'pw'}"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root}"
    ctl = [*run, str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
    subprocess.run([*ctl, "-o", options, "-l", str(root / "log"), "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
