"""Standard infrastructure on loopback, for tests of swain deployed the usual ways.

Each helper runs a real server from the Debian (or any) package in a
temporary folder of its own, on a free loopback port, as a child process
that ends (and whose folder is removed) when the ``with`` block does, even
when the block fails:

* :class:`Nginx`: a reverse proxy balancing over several swain instances
  (round robin, one worker, so consecutive requests alternate), telling which
  instance answered in an ``X-Upstream`` response header;
* :class:`PgBouncer`: a connection pooler in front of a PostgreSQL server;
* :class:`PostgresCluster`: a PostgreSQL cluster of its own (``initdb``), and
  :meth:`PostgresCluster.replica`, a streaming replica of it made with
  ``pg_basebackup -R``.

Servers that refuse to run as root (PostgreSQL, PgBouncer) run as the
``postgres`` operating-system user when the tests run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import free_port

#: where Debian keeps the PostgreSQL server programs, newest first
POSTGRES_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin",
                     "/usr/lib/postgresql/15/bin")
_SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])


def find_program(name: str, extra: Sequence[str] = ()) -> str:
    """The path of a server program (``nginx`` lives in ``/usr/sbin``), or a
    ``FileNotFoundError`` saying which package provides it."""
    path = os.pathsep.join([*extra, os.environ.get("PATH", ""), _SBIN])
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (Debian: apt-get install {name}; "
                                ".ci/run installs it)")
    return found


def postgres_program(name: str) -> str:
    """A PostgreSQL server program (``initdb``, ``pg_ctl``, ``pg_basebackup``)."""
    return find_program(name, [d for d in POSTGRES_BIN_DIRS if Path(d).is_dir()])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None,
                  timeout: float = 30, log: Path | None = None) -> None:
    """Wait until something accepts connections on loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.05)
    detail = log.read_text(errors="replace") if log is not None and log.exists() else ""
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}\n{detail}")


def _service_user() -> dict[str, Any]:
    """``subprocess`` arguments running a server as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _own_folder(prefix: str) -> Path:
    """A fresh folder the server's user owns."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    owner = _service_user()
    if owner:
        os.chown(folder, owner["user"], owner["group"])
    return folder


def _stop(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM,
          timeout: float = 20) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Nginx:
    """``nginx`` balancing ``upstreams`` (``host:port``) on its own loopback port."""

    def __init__(self, upstreams: Sequence[str], extra_location: str = "") -> None:
        self.upstreams = list(upstreams)
        self.extra_location = extra_location
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = Path(tempfile.mkdtemp(prefix="swain-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        d = self.folder
        servers = "\n".join(f"    server {u} max_fails=0;" for u in self.upstreams)
        # root workers would switch to "nobody", who cannot use this private folder
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream swain {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://swain;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      add_header X-Upstream $upstream_addr always;
      {self.extra_location}
    }}
  }}
}}
"""

    def start(self) -> Nginx:
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config(), encoding="utf-8")
        log = self.folder / "error.log"
        self.process = subprocess.Popen(
            [find_program("nginx"), "-p", str(self.folder), "-c", str(conf), "-e", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.process, log=log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, signal.SIGQUIT)  # graceful: finish requests in flight
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PgBouncer:
    """``pgbouncer`` in ``pool_mode`` in front of the PostgreSQL server at
    ``host:port``, accepting any user in ``users`` without a password (trust)."""

    def __init__(self, host: str, port: int, users: Sequence[str] = ("postgres",),
                 pool_mode: str = "transaction", pool_size: int = 4,
                 settings: dict[str, str] | None = None) -> None:
        self.server = (host, port)
        self.users = list(users)
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.settings = dict(settings or {})
        self.port = free_port()
        self.folder = _own_folder("swain-pgbouncer-")
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        d = self.folder
        extra = "".join(f"{k} = {v}\n" for k, v in self.settings.items())
        return f"""[databases]
* = host={self.server[0]} port={self.server[1]}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {d}/userlist.txt
admin_users = {self.users[0]}
stats_users = {self.users[0]}
pool_mode = {self.pool_mode}
default_pool_size = {self.pool_size}
max_client_conn = 500
pidfile = {d}/pgbouncer.pid
logfile = {d}/pgbouncer.log
{extra}"""

    def start(self) -> PgBouncer:
        d = self.folder
        (d / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in self.users),
                                        encoding="utf-8")
        (d / "pgbouncer.ini").write_text(self.config(), encoding="utf-8")
        owner = _service_user()
        if owner:
            for name in ("userlist.txt", "pgbouncer.ini"):
                os.chown(d / name, owner["user"], owner["group"])
        self.process = subprocess.Popen(
            [find_program("pgbouncer"), str(d / "pgbouncer.ini")], cwd=d,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            **owner)
        try:
            wait_for_port(self.port, self.process, log=d / "pgbouncer.log")
        except BaseException:
            self.stop()
            raise
        return self

    def url(self, database: str, user: str | None = None) -> str:
        return f"postgresql://{user or self.users[0]}@127.0.0.1:{self.port}/{database}"

    def admin(self, command: str) -> list[dict[str, Any]]:
        """Run an admin console command (``SHOW STATS``…) and return its rows."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.users[0],
                             dbname="pgbouncer", autocommit=True) as conn:
            cursor = conn.execute(command, prepare=False)
            names = [c.name for c in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, signal.SIGINT)  # safe shutdown: waits for transactions
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresCluster:
    """A PostgreSQL cluster in a temporary folder on its own loopback port: a new
    one (``initdb``, trust authentication, replication allowed from loopback), or,
    with ``primary``, a streaming replica of that one (``pg_basebackup -R``)."""

    def __init__(self, primary: PostgresCluster | None = None) -> None:
        self.primary = primary
        self.port = free_port()
        self.folder = _own_folder("swain-pg-replica-" if primary else "swain-pg-")
        self.data = self.folder / "data"
        self.started = False

    def _run(self, *command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                cwd=self.folder, **_service_user())
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> PostgresCluster:
        try:
            if self.primary is None:
                self._run(postgres_program("initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
                with (self.data / "pg_hba.conf").open("a", encoding="utf-8") as hba:
                    hba.write("host replication all 127.0.0.1/32 trust\n")
            else:
                self._run(postgres_program("pg_basebackup"), "-h", "127.0.0.1", "-p",
                          str(self.primary.port), "-U", "postgres", "-D", str(self.data),
                          "-R", "-X", "stream", "-c", "fast", "--no-sync")
            options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 "
                       f"-c unix_socket_directories={self.folder} -c fsync=off "
                       "-c full_page_writes=off "
                       "-c max_connections=60 -c shared_buffers=32MB")
            self._run(postgres_program("pg_ctl"), "-D", str(self.data), "-l",
                      str(self.folder / "server.log"), "-o", options, "-w", "-t", "60", "start")
            self.started = True
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        """A swain URL to database ``postgres`` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=database, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []

    def replica(self) -> PostgresCluster:
        """A streaming replica of this cluster (not started)."""
        return PostgresCluster(primary=self)

    def wait_replayed(self, replica: PostgresCluster, timeout: float = 30) -> None:
        """Wait until ``replica`` has replayed everything this primary wrote so far."""
        target = self.query("SELECT pg_current_wal_insert_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replayed = replica.query("SELECT pg_last_wal_replay_lsn() >= "
                                     f"'{target}'::pg_lsn")[0][0]
            if replayed:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the replica did not replay up to {target} in {timeout}s")

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(postgres_program("pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "-t", "30", "stop")
            self.started = False
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: end the postmaster itself
            with contextlib.suppress(ValueError, OSError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def primary_and_replica() -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    """A new cluster and a streaming replica of it, both removed afterwards."""
    with PostgresCluster() as primary, primary.replica() as replica:
        yield primary, replica
