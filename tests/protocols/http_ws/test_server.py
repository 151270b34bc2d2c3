"""The listener as a whole: TLS, unix sockets, trusted proxies, shutdown, lifespan."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from protocols.http_ws import HttpWsConfig, HttpWsServer
from protocols.lifespan import Lifespan, LifespanFailure

from .helpers import address, open_raw, read_response, serve

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def scope_recorder() -> tuple[list[Any], Any]:
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await receive()
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    return scopes, app


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the cryptography package."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TestTLS:
    async def test_https_scope_has_scheme_and_tls_extension(self, certificate: Any) -> None:
        cert_path, key_path = certificate
        scopes, app = scope_recorder()
        client_context = ssl.create_default_context(cafile=str(cert_path))
        async with serve(app, ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)) as server:
            reader, writer = await asyncio.open_connection(*address(server), ssl=client_context)
            writer.write(GET)
            response = await read_response(reader)
            writer.close()
        assert response.body == b"ok"
        scope = scopes[0]
        assert scope["scheme"] == "https"
        tls = scope["extensions"]["tls"]
        assert tls["server_cert"] == cert_path.read_text()
        assert tls["tls_version"] in (0x0303, 0x0304)
        assert isinstance(tls["cipher_suite"], int)
        assert tls["client_cert_chain"] == []

    async def test_wss_scope_scheme(self, certificate: Any) -> None:
        cert_path, key_path = certificate
        scopes, app = scope_recorder()
        client_context = ssl.create_default_context(cafile=str(cert_path))
        async with serve(app, ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)) as server:
            host, port = address(server)
            async with connect(f"wss://{host}:{port}/", ssl=client_context):
                pass
        assert scopes[0]["scheme"] == "wss"
        assert "tls" in scopes[0]["extensions"]


class TestUnixSocket:
    async def test_requests_are_served_on_a_unix_socket(self, tmp_path: Path) -> None:
        path = str(tmp_path / "hub.sock")
        scopes, app = scope_recorder()
        async with serve(app, uds=path) as server:
            assert server.bound_addresses == [path]
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(GET)
            response = await read_response(reader)
            writer.close()
        assert response.body == b"ok"
        assert scopes[0]["server"] == (path, None)
        assert scopes[0]["client"] is None


class TestTrustedProxies:
    async def forwarded_scope(self, headers: bytes, **config: Any) -> Any:
        scopes, app = scope_recorder()
        async with serve(app, **config) as server:
            reader, writer = await open_raw(server)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            await read_response(reader)
            writer.close()
        return scopes[0]

    async def test_x_forwarded_headers_from_a_trusted_proxy_set_client_and_scheme(self) -> None:
        scope = await self.forwarded_scope(
            b"X-Forwarded-For: 203.0.113.9, 10.0.0.2\r\nX-Forwarded-Proto: https\r\n",
            forwarded_allow_ips=["127.0.0.1", "10.0.0.0/8"],
        )
        assert scope["client"] == ("203.0.113.9", 0)
        assert scope["scheme"] == "https"

    async def test_rfc7239_forwarded_header_is_honoured(self) -> None:
        scope = await self.forwarded_scope(
            b'Forwarded: for="[2001:db8::1]:4711";proto=https\r\n',
            forwarded_allow_ips=["127.0.0.0/8"],
        )
        assert scope["client"] == ("2001:db8::1", 4711)
        assert scope["scheme"] == "https"

    async def test_forwarding_headers_from_an_untrusted_peer_are_ignored(self) -> None:
        scope = await self.forwarded_scope(
            b"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n",
            forwarded_allow_ips=["10.0.0.1"],
        )
        assert scope["client"][0] == "127.0.0.1"
        assert scope["scheme"] == "http"


class TestGracefulShutdown:
    async def test_port_zero_binds_a_free_port(self) -> None:
        server = HttpWsServer(scope_recorder()[1], HttpWsConfig(port=0))
        await server.start()
        _host, port = server.bound_addresses[0]
        assert port != 0
        assert server.sockets
        await server.wait_closed(0.1)

    async def test_in_flight_request_finishes_and_websocket_gets_1001(self) -> None:
        started = asyncio.Event()
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.accept"})
                await receive()
                return
            started.set()
            await release.wait()
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"finished"})

        server = HttpWsServer(app, HttpWsConfig(port=0))
        await server.start()
        host, port = server.bound_addresses[0]
        async with connect(f"ws://{host}:{port}/") as ws:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(GET)
            await started.wait()
            server.close()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1001
            closing = asyncio.ensure_future(server.wait_closed(5.0))
            release.set()
            response = await read_response(reader)
            await closing
            writer.close()
        assert response.body == b"finished"
        assert (b"connection", b"close") in response.headers
        assert server.connection_count == 0

    async def test_websocket_mid_handshake_is_accepted_then_closed_1001(self) -> None:
        connecting = asyncio.Event()
        release = asyncio.Event()
        messages = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            connecting.set()
            await release.wait()
            await send({"type": "websocket.accept"})
            messages.append(await receive())

        server = HttpWsServer(app, HttpWsConfig(port=0))
        await server.start()
        host, port = server.bound_addresses[0]
        connecting_client = asyncio.ensure_future(connect(f"ws://{host}:{port}/").__aenter__())
        await connecting.wait()
        server.close()
        closing = asyncio.ensure_future(server.wait_closed(5.0))
        release.set()
        ws = await connecting_client
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        await closing
        assert ws.close_code == 1001
        assert messages == [
            {"type": "websocket.disconnect", "code": 1001, "reason": "server shutting down"}
        ]

    async def test_app_tasks_still_running_after_grace_are_cancelled(self) -> None:
        cancelled = asyncio.Event()
        started = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        server = HttpWsServer(app, HttpWsConfig(port=0))
        await server.start()
        _reader, writer = await asyncio.open_connection(*server.bound_addresses[0])
        writer.write(GET)
        await started.wait()
        await server.wait_closed(0.01)
        writer.close()
        assert cancelled.is_set()
        assert not server._listener.tasks  # type: ignore[union-attr]


class TestLifespan:
    async def test_startup_state_reaches_every_scope_and_shutdown_runs(self) -> None:
        events = []
        scopes, http_app = scope_recorder()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "lifespan":
                await http_app(scope, receive, send)
                return
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["pool"] = "ready"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return

        lifespan = Lifespan(app)
        await lifespan.startup()
        async with serve(app, state=lifespan.state) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            await read_response(reader)
            writer.close()
        await lifespan.shutdown()
        assert scopes[0]["state"] == {"pool": "ready"}
        assert events == ["lifespan.startup", "lifespan.shutdown"]

    async def test_startup_failed_raises(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})

        with pytest.raises(LifespanFailure, match="no database"):
            await Lifespan(app).startup()

    async def test_app_without_lifespan_support_is_tolerated(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise ValueError(f"unsupported scope {scope['type']}")

        lifespan = Lifespan(app)
        await lifespan.startup()
        await lifespan.shutdown()
        assert lifespan.supported is False

    async def test_required_lifespan_raises_when_unsupported(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise ValueError("unsupported")

        with pytest.raises(LifespanFailure):
            await Lifespan(app, required=True).startup()

    async def test_second_startup_complete_raises_and_does_not_answer_shutdown(self) -> None:
        errors = []
        events = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "lifespan.startup.complete"})
            try:
                await send({"type": "lifespan.startup.complete"})
            except RuntimeError as exc:
                errors.append(str(exc))
            events.append((await receive())["type"])
            await send({"type": "lifespan.shutdown.complete"})

        lifespan = Lifespan(app)
        await lifespan.startup()
        await lifespan.shutdown()
        assert errors == [
            "Unexpected ASGI message 'lifespan.startup.complete': "
            "'lifespan.startup' was already answered"
        ]
        assert events == ["lifespan.shutdown"]

    async def test_startup_failed_stops_the_lifespan_task(self) -> None:
        finished = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            try:
                await receive()
                await send({"type": "lifespan.startup.failed", "message": "no database"})
                await receive()
            finally:
                finished.append(True)

        with pytest.raises(LifespanFailure):
            await Lifespan(app).startup()
        assert finished == [True]


class TestServerCertificateInScope:
    def test_only_certificate_blocks_reach_the_scope_when_the_key_shares_the_file(self, tmp_path):
        import ssl

        import trustme

        from protocols.http_ws.tls import server_tls_details

        authority = trustme.CA()
        certificate = authority.issue_cert("localhost")
        combined = tmp_path / "combined.pem"
        combined.write_bytes(
            certificate.private_key_pem.bytes()
            + b"".join(blob.bytes() for blob in certificate.cert_chain_pems)
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(combined)
        server_cert, cipher_ids = server_tls_details(context, str(combined))
        assert server_cert is not None
        assert "PRIVATE KEY" not in server_cert
        assert server_cert.count("BEGIN CERTIFICATE") == len(certificate.cert_chain_pems)
        assert cipher_ids
