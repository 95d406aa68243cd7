"""CURVE (``zmq.auth``) for the result stream: key files, and setting up the sender (server) and receiver (client).

The sender is the CURVE server; receivers need the server's public key and, when the sender lists authorised
clients, their own key pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

__all__ = ["CurveClient", "CurveServer", "create_curve_keys", "setup_client", "setup_server"]


@dataclass
class CurveServer:
    """Sender-side CURVE: its secret key file and, optionally, a folder of authorised client public keys."""

    secret_key_file: Path
    authorized_clients: Path | None = None


@dataclass
class CurveClient:
    """Receiver-side CURVE: the sender's public key file and this receiver's secret key file."""

    server_public_key_file: Path
    secret_key_file: Path


def create_curve_keys(folder: str | Path) -> dict[str, Path]:
    """Write a server and a client key pair into ``folder`` (and the client's public key into
    ``folder/authorized_clients``). Returns the paths by name."""
    from zmq import auth as zauth

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    server_pub, server_sec = zauth.create_certificates(folder, "server")
    client_pub, client_sec = zauth.create_certificates(folder, "client")
    auth = folder / "authorized_clients"
    auth.mkdir(exist_ok=True)
    (auth / "client.key").write_bytes(Path(client_pub).read_bytes())
    for secret in (server_sec, client_sec):
        Path(secret).chmod(0o600)
    return {
        "server_public": Path(server_pub),
        "server_secret": Path(server_sec),
        "client_public": Path(client_pub),
        "client_secret": Path(client_sec),
        "authorized_clients": auth,
    }


def _load_secret(path: Path) -> tuple[bytes, bytes]:
    from zmq import auth as zauth

    if not path.is_file():
        raise FileNotFoundError(f"{path}: CURVE key file not found (create keys with 'kdinspect keys DIR')")
    public, secret = zauth.load_certificate(path)
    if secret is None:
        raise ValueError(f"{path}: not a secret key file (use the '.key_secret' file)")
    return public, secret


def setup_server(ctx: zmq.Context, sock: zmq.Socket, curve: CurveServer) -> Any:
    """Make ``sock`` a CURVE server; returns the started authenticator (stop it when closing)."""
    from zmq import auth as zauth
    from zmq.auth.thread import ThreadAuthenticator

    public, secret = _load_secret(curve.secret_key_file)
    auth = ThreadAuthenticator(ctx)
    auth.start()
    if curve.authorized_clients is not None:
        if not Path(curve.authorized_clients).is_dir():
            auth.stop()
            raise FileNotFoundError(f"{curve.authorized_clients}: folder of authorised client keys not found")
        auth.configure_curve(domain="*", location=str(curve.authorized_clients))
    else:
        auth.configure_curve(domain="*", location=zauth.CURVE_ALLOW_ANY)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


def setup_client(sock: zmq.Socket, curve: CurveClient) -> None:
    """Give ``sock`` this receiver's key pair and the sender's public key."""
    from zmq import auth as zauth

    public, secret = _load_secret(curve.secret_key_file)
    if not Path(curve.server_public_key_file).is_file():
        raise FileNotFoundError(f"{curve.server_public_key_file}: server public key not found")
    server_public, _ = zauth.load_certificate(curve.server_public_key_file)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
