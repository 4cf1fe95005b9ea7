"""Web servers on 127.0.0.1 for the download paths: plain HTTP, and HTTPS with a throwaway certificate."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import ipaddress
import ssl
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    redirects: dict[str, str] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path in self.redirects:
            self.send_response(302)
            self.send_header("Location", self.redirects[self.path])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@contextmanager
def serve_folder(folder: Path, tls_folder: Path | None = None, redirects: dict[str, str] | None = None,
                 handler=_QuietHandler):
    """Serve ``folder`` on 127.0.0.1 (HTTPS when ``tls_folder`` is given); yields (base URL, CA file or None)."""
    handler = type("Handler", (handler,), {"redirects": dict(redirects or {})} if redirects else {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    cert = None
    if tls_folder is not None:
        cert, key = _self_signed_certificate(tls_folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if cert else 'http'}://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"  # the commit the test hub says every file is at


class HubHandler(_QuietHandler):
    """The part of the hub API that file downloads use: HEAD/GET /<owner>/<name>/resolve/<revision>/<path>,
    answered from ``<folder>/<owner>/<name>/<path>`` with the commit and ETag headers huggingface_hub reads.
    Repositories listed in ``gated`` answer 403 GatedRepo, as the hub does without an accepted licence."""

    gated: tuple[str, ...] = ()
    requests: list[str] = []

    def _resolve(self):
        parts = self.path.split("?")[0].lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None, None
        return "/".join(parts[:2]), Path(self.directory, parts[0], parts[1], *parts[4:])

    def _answer(self, with_body: bool):
        repo, path = self._resolve()
        self.requests.append(f"{self.command} {self.path}")
        if repo in self.gated:
            self.send_response(403)
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("X-Error-Message", "Access to this model is restricted.")
            self.end_headers()
            return
        if path is None or not path.is_file():
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.end_headers()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", HUB_COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def do_HEAD(self):  # noqa: N802
        self._answer(with_body=False)

    def do_GET(self):  # noqa: N802
        self._answer(with_body=True)


@contextmanager
def serve_hub(folder: Path, gated: tuple[str, ...] = ()):
    """A stand-in for huggingface.co on 127.0.0.1: yields (endpoint URL, list of requests seen)."""
    requests: list[str] = []
    handler = type("Hub", (HubHandler,), {"gated": tuple(gated), "requests": requests})
    with serve_folder(folder, handler=handler) as (base, _):
        yield base, requests
