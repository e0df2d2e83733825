"""``iort serve`` behind Debian's nginx as a TLS reverse proxy, all on loopback (issue 17;
docs/deployment.md, "TLS behind a reverse proxy"): a login over https gets a Secure
``__Host-`` cookie (X-Forwarded-Proto believed from the trusted proxy), the client address is
taken from X-Forwarded-For only when the proxy sends it, and the Host allowlist holds through
the proxy.

nginx runs from a temporary prefix (``-p tmpdir -c nginx.conf``, ``daemon off``, pid and logs
there) with a self-signed certificate made by ``openssl``. The proxy here sets X-Forwarded-For
to a fixed documentation address (RFC 5737) standing in for the browser's, since every client of
the test is on loopback; a client that reaches the server directly from another loopback address
is not trusted, and the X-Forwarded-For it sends is ignored.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from web_testkit import PASSWORD, SEAL_KEY, SESSION_SECRET, USERS

from openiort.records import users as users_module
from openiort.records.chain import bind_key
from openiort.records.db import make_engine, prepare_database, session_scope
from openiort.records.models import LoginAttempt

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(
    NGINX is None or OPENSSL is None,
    reason="nginx or openssl missing (scripts/install-system-deps.sh installs them)",
)
HOST_NAME = "iort.test"
BROWSER_ADDRESS = "198.51.100.7"  # what the proxy reports as the client (RFC 5737)
START_S = 90.0


@dataclass(frozen=True)
class Proxied:
    https_url: str
    direct_url: str
    database_url: str
    cert: Path


def _tls(cert: Path) -> ssl.SSLContext:
    """A client context that trusts the test's self-signed certificate only."""
    return ssl.create_default_context(cafile=str(cert))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, **kwargs: object) -> None:
    deadline = time.monotonic() + START_S
    while True:
        try:
            if httpx.get(url, timeout=2, **kwargs).status_code == 200:  # type: ignore[arg-type]
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n" + log.read_text(errors="replace"))
        time.sleep(0.3)


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{https_port} ssl;
        server_name {host};
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        client_max_body_size 1m;
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For {client};
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    assert NGINX is not None and OPENSSL is not None
    root = tmp_path_factory.mktemp("tls")
    database_url = f"sqlite:///{root / 'records.sqlite3'}"
    engine = prepare_database(database_url)
    bind_key(engine, SEAL_KEY)
    with session_scope(engine) as s:
        for name, role in USERS.items():
            users_module.create_user(s, name, role, PASSWORD)
    engine.dispose()
    subprocess.run(
        [
            OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={HOST_NAME}",
            "-addext", f"subjectAltName=DNS:{HOST_NAME},IP:127.0.0.1",
            "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    app_port, https_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "OPENIORT_DATA_DIR": str(root / "data"),
        "OPENIORT_SEAL_KEY": SEAL_KEY.decode(),
        "OPENIORT_SESSION_SECRET": SESSION_SECRET.decode(),
    }
    iort = Path(sys.executable).parent / "iort"
    app_log = root / "server.log"
    with open(app_log, "wb") as out:
        app = subprocess.Popen(
            [
                str(iort), "serve", "--host", "127.0.0.1", "--port", str(app_port),
                "--database-url", database_url, "--files-dir", str(root / "plans"),
                "--forwarded-allow-ips", "127.0.0.1", "--allowed-host", HOST_NAME,
            ],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
    conf = root / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=root, https_port=https_port, app_port=app_port, host=HOST_NAME,
            client=BROWSER_ADDRESS,
        )
    )  # fmt: skip
    nginx_log = root / "nginx.out"
    proxy: subprocess.Popen[bytes] | None = None
    try:
        _wait(f"http://127.0.0.1:{app_port}/healthz", app, app_log)
        with open(nginx_log, "wb") as out:
            proxy = subprocess.Popen(
                [NGINX, "-p", str(root), "-c", str(conf)], stdout=out, stderr=out
            )
        _wait(
            f"https://127.0.0.1:{https_port}/healthz", proxy, root / "error.log",
            verify=_tls(root / "cert.pem"),
        )  # fmt: skip
        yield Proxied(
            f"https://127.0.0.1:{https_port}",
            f"http://127.0.0.1:{app_port}",
            database_url,
            root / "cert.pem",
        )
    finally:
        for proc in (proxy, app):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _address_keys(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            table = LoginAttempt.__table__
            return {k for k in conn.scalars(sa.select(table.c.key)) if k.startswith("addr:")}
    finally:
        engine.dispose()


def test_login_over_https_gets_a_secure_host_cookie(proxied: Proxied) -> None:
    with httpx.Client(base_url=proxied.https_url, verify=_tls(proxied.cert)) as client:
        r = client.post("/api/session", json={"username": "phys", "password": PASSWORD})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-openiort_session=")
        assert "Secure" in cookie and "HttpOnly" in cookie
        assert r.headers["strict-transport-security"].startswith("max-age=")
        assert client.get("/api/session").status_code == 200


def test_client_address_comes_from_the_trusted_proxy_only(proxied: Proxied) -> None:
    spoofed = "203.0.113.66"
    with httpx.Client(base_url=proxied.https_url, verify=_tls(proxied.cert)) as client:
        r = client.post(
            "/api/session",
            json={"username": "onc", "password": "wrong password"},
            headers={"X-Forwarded-For": spoofed},  # replaced by the proxy
        )
        assert r.status_code == 401, r.text
    # Straight to the server from a loopback address that is not the trusted proxy.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=proxied.direct_url, transport=transport) as client:
        r = client.post(
            "/api/session",
            json={"username": "surg", "password": "wrong password"},
            headers={"X-Forwarded-For": spoofed, "Host": "127.0.0.1"},
        )
        assert r.status_code == 401, r.text
    keys = _address_keys(proxied.database_url)
    assert f"addr:{BROWSER_ADDRESS}" in keys  # through the proxy: its X-Forwarded-For
    assert "addr:127.0.0.2" in keys  # directly: the connection's own address
    assert f"addr:{spoofed}" not in keys


def test_host_allowlist_holds_through_the_proxy(proxied: Proxied) -> None:
    with httpx.Client(base_url=proxied.https_url, verify=_tls(proxied.cert)) as client:
        assert client.get("/healthz", headers={"Host": HOST_NAME}).status_code == 200
        r = client.post(
            "/api/session",
            json={"username": "phys", "password": PASSWORD},
            headers={"Host": "attacker.example"},
        )
        assert r.status_code == 400
        assert "set-cookie" not in r.headers
