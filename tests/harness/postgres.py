"""A PostgreSQL server of the tests' own: Debian's binaries, a temporary folder, a Unix socket.

One server per test process (each pytest-xdist worker starts its own), one fresh database per
test. It listens on no TCP port at all (``listen_addresses = ''``), only on a socket in its
temporary folder, and is stopped and removed at the end of the session. As root, the server
runs as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"
PASSWORD_USER = "seedance_password"
"""A role that must log in with a password (every other local login is trusted)."""

_VERSION = re.compile(r"/postgresql/(?P<version>[0-9]+(\.[0-9]+)?)/bin/initdb$")


class PostgresMissing(Exception):
    """This machine cannot start a PostgreSQL server (the message says why)."""


def find_binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest installed version, else
    whatever ``initdb`` is on the PATH."""
    installed = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        match = _VERSION.search(str(candidate))
        if match:
            installed.append((float(match["version"]), candidate.parent))
    if installed:
        return max(installed)[1]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    raise PostgresMissing(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
        "apt-get install postgresql"
    )


@dataclass
class PostgresServer:
    """A running server; ``url`` names a database on it."""

    root: Path
    bin_dir: Path
    password: str = field(default_factory=lambda: f"pw-{uuid.uuid4().hex}")

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str = "postgres", *, user: str = SUPERUSER) -> str:
        """The libpq URI of ``database`` over the server's Unix socket."""
        return f"postgresql:///{database}?host={self.socket_dir}&user={user}"

    def password_url(self, database: str, *, password: str) -> str:
        """``database`` as the password-checked role, with ``password`` in the URI."""
        return f"postgresql://{PASSWORD_USER}:{password}@/{database}?host={self.socket_dir}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement as the superuser (psql, so it works inside or outside a loop)."""
        _run([str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
              "-d", self.url(database), "-c", statement])  # fmt: skip

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database, owned by the password-checked role too; dropped on exit
        (closing any connection a test left open on it). Yields its name."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        self.sql(f'CREATE DATABASE "{name}" OWNER {PASSWORD_USER}')
        try:
            yield name
        finally:
            self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_server_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs a binary as the server's user, and that user's ids."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing("running as root, and there is no postgres user to run as") from None
    runuser = shutil.which("runuser")
    if not runuser:
        raise PostgresMissing("running as root, and runuser is missing")
    return [runuser, "-u", "postgres", "--"], account.pw_uid, account.pw_gid


_CONFIG = """
listen_addresses = ''
unix_socket_directories = '{socket_dir}'
max_connections = 200
shared_buffers = 32MB
"""
# Tests need no durability; a benchmark keeps PostgreSQL's defaults (an fsync per commit).
_FAST = """
fsync = off
synchronous_commit = off
full_page_writes = off
"""

_HBA = f"""
local all {PASSWORD_USER} scram-sha-256
local all all trust
"""


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """Start a server in a fresh temporary folder; stop it and remove the folder on exit.

    ``durable``: commits are flushed to disk as in production (for benchmarks); by default
    they are not, which tests do not need."""
    bin_dir = find_binaries()
    prefix, uid, gid = _as_server_user()
    # Directly under the system's temp folder: pytest's own tmp folders are closed to others.
    root = Path(tempfile.mkdtemp(prefix="seedance-pg-"))
    data = root / "data"
    log = root / "server.log"
    server = PostgresServer(root, bin_dir)
    try:
        if uid is not None and gid is not None:
            os.chown(root, uid, gid)
        _run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER,
              "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(_CONFIG.format(socket_dir=root) + ("" if durable else _FAST))
        (data / "pg_hba.conf").write_text(_HBA, encoding="utf-8")
        _run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
              "-t", "60", "start"])  # fmt: skip
        try:
            _setup_roles(server)
            yield server
        finally:
            _run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                  "-w", "stop"])  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _setup_roles(server: PostgresServer) -> None:
    server.sql(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{server.password}'")


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip() or done.stdout}"
        )
