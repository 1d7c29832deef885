"""A throwaway MariaDB server for the tests: own datadir, loopback TCP port, own socket.

``MariaDBServer.create()`` finds ``mariadbd`` and ``mariadb-install-db`` (PATH, then
/usr/sbin and /sbin; Debian's ``mariadb-server`` package), initialises a datadir in a
temporary directory, and starts the server on 127.0.0.1 and a free port, as root when
the tests run as root (``--user=root``). An ``--init-file`` creates the database and a
user with a random password (re-run, harmlessly, on every start). The server accepts
TLS with a throwaway CA and server certificate (SAN ``IP:127.0.0.1``) made with
``cryptography``. ``stop()`` / ``start()`` let a test take the server down and back.
A second user, ``rotating_user``, owns nothing but may use the main database; its password is
for tests that change it (``rotate_password``), as Secrets Manager's single user rotation does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from cryptography import x509  # comes with moto (a dev dependency): no openssl binary needed
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import URL

from tests.servers import require_executable

INSTALL_HINT = "apt-get install mariadb-server (Debian/Ubuntu) or brew install mariadb"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TlsFiles:
    """A throwaway CA and a server certificate for ``IP:127.0.0.1`` (PEM files)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path) -> TlsFiles:
        """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory``."""
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfnbuild test CA")])
        ca_cert = (
            _certificate(ca_name, ca_name, ca_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        server_cert = (
            _certificate(server_name, ca_name, server_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        files = cls(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server.key")
        files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        files.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        return files


def _certificate(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    """Start a certificate valid from a few minutes ago for two days."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


@dataclass
class MariaDBServer:
    """A running throwaway server; the app user owns ``database`` and ``app_*``."""

    mariadbd: str
    base_dir: Path
    port: int
    user: str = "app"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    database: str = "app"
    rotating_user: str = "app_rotating"
    rotating_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    tls: TlsFiles | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self.base_dir / "data"

    @property
    def socket_path(self) -> Path:
        """The server's unix socket."""
        return self.base_dir / "mysqld.sock"

    @property
    def log_path(self) -> Path:
        """The server's error log."""
        return self.base_dir / "mysqld.log"

    @classmethod
    def create(cls) -> MariaDBServer:
        """Initialise a datadir and start a server; skip/fail when MariaDB is missing."""
        mariadbd = require_executable("mariadbd", INSTALL_HINT)
        install_db = require_executable("mariadb-install-db", INSTALL_HINT)
        # A short path: unix sockets are limited to about 100 characters.
        base_dir = Path(tempfile.mkdtemp(prefix="mdb-"))
        server = cls(mariadbd=mariadbd, base_dir=base_dir, port=free_port())
        try:
            server.tls = TlsFiles.make(base_dir)
            server._install(install_db)
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    def _as_root_args(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install(self, install_db: str) -> None:
        self.datadir.mkdir()
        (self.base_dir / "init.sql").write_text(
            f"CREATE DATABASE IF NOT EXISTS `{self.database}` CHARACTER SET utf8mb4;\n"
            f"CREATE USER IF NOT EXISTS '{self.user}'@'%' IDENTIFIED BY '{self.password}';\n"
            f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO '{self.user}'@'%';\n"
            f"GRANT ALL PRIVILEGES ON `{self.database}\\_%`.* TO '{self.user}'@'%';\n"
            f"CREATE USER IF NOT EXISTS '{self.rotating_user}'@'%' IDENTIFIED BY '{self.rotating_password}';\n"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{self.database}`.* TO '{self.rotating_user}'@'%';\n"
        )
        subprocess.run(
            [
                install_db,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                *self._as_root_args(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        """Start the server (on the same port and datadir) and wait until it serves."""
        tls_args = (
            [f"--ssl-ca={self.tls.ca}", f"--ssl-cert={self.tls.cert}", f"--ssl-key={self.tls.key}"] if self.tls else []
        )
        command = [
            self.mariadbd,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.base_dir / 'mysqld.pid'}",
            f"--log-error={self.log_path}",
            f"--tmpdir={self.base_dir}",
            f"--init-file={self.base_dir / 'init.sql'}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--max-connections=200",
            *tls_args,
            *self._as_root_args(),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited at start-up:\n{self.log_tail()}")
            try:
                self.connect(connect_timeout=1).close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"mariadbd did not serve in {START_TIMEOUT_SECONDS} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Shut the server down (SIGTERM, then SIGKILL after a grace period)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_SECONDS)

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the server's error log."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def connect(self, database: str | None = None, connect_timeout: float = 5) -> pymysql.connections.Connection:
        """Open a PyMySQL connection as the app user over TCP."""
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            database=database or self.database,
            connect_timeout=connect_timeout,
            autocommit=True,
        )

    def rotate_password(self, new_password: str) -> None:
        """Change ``rotating_user``'s password as that user, the way single user rotation does."""
        with (
            contextlib.closing(
                pymysql.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=self.rotating_user,
                    password=self.rotating_password,
                    connect_timeout=5,
                    autocommit=True,
                )
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("SET PASSWORD = PASSWORD(%s)", (new_password,))  # no privilege needed for oneself
        self.rotating_password = new_password

    def url(self, database: str | None = None) -> URL:
        """Return the SQLAlchemy URL of ``database`` (default: the main one)."""
        return URL.create(
            "mysql+pymysql",
            username=self.user,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database=database or self.database,
        )

    def create_database(self) -> str:
        """Create an empty database ``app_<random>`` and return its name."""
        name = f"{self.database}_{secrets.token_hex(6)}"
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        return name

    def drop_database(self, name: str) -> None:
        """Drop the database ``name`` (if the server is up)."""
        with (
            contextlib.suppress(pymysql.err.MySQLError),
            contextlib.closing(self.connect()) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
