"""TLS with client certificates (trustme) and the PROXY protocol, on real sockets."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from protocols.tcp.proxy import TlvType, encode_v1, encode_v2

from .helpers import Recorder, connect, read_eof, serve


class Certificates:
    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_path = str(directory / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        self.server_path = str(directory / "server.pem")
        self.ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            self.server_path
        )
        self.device = self.ca.issue_cert("device-42.example.com", common_name="device-42")

    def server_options(self, **options: Any) -> dict[str, Any]:
        return {
            "ssl_certfile": self.server_path,
            "ssl_ca_certs": self.ca_path,
            "ssl_cert_reqs": ssl.CERT_OPTIONAL,
            **options,
        }

    def client_context(self, with_certificate: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_path)
        if with_certificate:
            self.device.configure_cert(context)
        return context


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("tcp-tls"))


async def tls_connect(
    port: int, context: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=context)


class TestTLS:
    async def test_a_client_certificate_reaches_the_scope(self, certificates: Certificates) -> None:
        app = Recorder()
        async with serve(app, framing="line", **certificates.server_options()) as (_, port):
            reader, writer = await tls_connect(port, certificates.client_context())
            writer.write(b"secure\n")
            assert await reader.readline() == b"secure\n"
            tls = app.scopes[0]["extensions"]["tls"]
            assert tls["client_cert_name"].startswith("CN=device-42,")
            assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
            assert tls["tls_version"] in (0x0303, 0x0304)
            assert tls["server_cert"].startswith("-----BEGIN")
            writer.close()

    async def test_without_a_client_certificate_the_chain_is_empty(
        self, certificates: Certificates
    ) -> None:
        app = Recorder()
        async with serve(app, framing="line", **certificates.server_options()) as (_, port):
            reader, writer = await tls_connect(port, certificates.client_context(False))
            writer.write(b"anonymous\n")
            assert await reader.readline() == b"anonymous\n"
            assert app.scopes[0]["extensions"]["tls"]["client_cert_chain"] == []
            writer.close()

    async def test_a_required_certificate_that_is_missing_fails_the_handshake_only(
        self, certificates: Certificates
    ) -> None:
        app = Recorder()
        options = certificates.server_options(ssl_cert_reqs=ssl.CERT_REQUIRED)
        async with serve(app, framing="line", **options) as (_server, port):
            reader, writer = await tls_connect(port, certificates.client_context(False))
            writer.write(b"let me in\n")
            try:
                async with asyncio.timeout(5):
                    answer = await reader.readline()
            except (ssl.SSLError, ConnectionError):
                answer = b""
            assert answer == b""
            good_reader, good_writer = await tls_connect(port, certificates.client_context())
            good_writer.write(b"me\n")
            assert await good_reader.readline() == b"me\n"
            good_writer.close()
            assert len(app.scopes) == 1

    async def test_tls_ends_the_connection_on_eof_send(self, certificates: Certificates) -> None:
        async def last_word(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            await send({"type": "tcp.send", "bytes": b"bye", "eof": True})
            assert (await receive())["type"] == "tcp.disconnect"

        options = certificates.server_options()
        async with serve(last_word, framing="line", half_close=True, **options) as (_, port):
            reader, _ = await tls_connect(port, certificates.client_context())
            assert await read_eof(reader) == b"bye\n"


class TestProxyProtocol:
    async def test_a_v1_header_from_an_allowed_peer_names_the_original_client(self) -> None:
        app = Recorder()
        async with serve(app, framing="line", proxy_protocol=("127.0.0.1",)) as (_, port):
            reader, writer = await connect(port)
            writer.write(encode_v1(("203.0.113.7", 40000), ("198.51.100.1", 7000)) + b"hi\n")
            assert await reader.readline() == b"hi\n"
            scope = app.scopes[0]
            assert scope["client"] == ("203.0.113.7", 40000)
            assert scope["server"] == ("198.51.100.1", 7000)
            proxy = scope["extensions"]["tcp.proxy"]
            assert proxy["version"] == 1
            assert proxy["peer"] == writer.get_extra_info("sockname")[:2]
            writer.close()

    async def test_a_v2_header_from_an_allowed_network_carries_its_tlvs(self) -> None:
        app = Recorder()
        header = encode_v2(("203.0.113.7", 1), ("198.51.100.1", 2), {TlvType.UNIQUE_ID: b"id1"})
        async with serve(app, framing="line", proxy_protocol=("127.0.0.0/8",)) as (_, port):
            reader, writer = await connect(port)
            writer.write(header + b"hi\n")
            assert await reader.readline() == b"hi\n"
            assert app.scopes[0]["client"] == ("203.0.113.7", 1)
            assert app.scopes[0]["extensions"]["tcp.proxy"]["tlvs"] == {0x05: b"id1"}
            writer.close()

    async def test_a_header_from_a_peer_not_allowed_is_just_data(self) -> None:
        app = Recorder()
        async with serve(app, framing="line", proxy_protocol=("10.0.0.0/8",)) as (_, port):
            reader, writer = await connect(port)
            header = encode_v1(("203.0.113.7", 40000), ("198.51.100.1", 7000))
            writer.write(header)
            assert await reader.readline() == header
            assert app.scopes[0]["client"] == writer.get_extra_info("sockname")[:2]
            assert "tcp.proxy" not in app.scopes[0]["extensions"]
            writer.close()

    async def test_an_allowed_peer_without_a_header_is_closed_before_the_app_runs(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level("INFO", "protocols.tcp")
        app = Recorder()
        async with serve(app, framing="line", proxy_protocol=("127.0.0.1",)) as (_, port):
            reader, writer = await connect(port)
            writer.write(b"$POS,1,2,3\n")
            assert await read_eof(reader) == b""
        assert app.scopes == []
        assert "bad PROXY header: expected a PROXY protocol header" in caplog.text

    async def test_an_allowed_peer_that_sends_nothing_times_out(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level("INFO", "protocols.tcp")
        options = {"proxy_protocol": ("127.0.0.1",), "handshake_timeout": 0.05}
        async with serve(Recorder(), **options) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
        assert "no PROXY header within 0.05 s" in caplog.text

    async def test_the_per_client_limit_counts_the_original_client(self) -> None:
        app = Recorder()
        options = {"proxy_protocol": ("127.0.0.1",), "max_connections_per_client": 1}
        async with serve(app, framing="line", **options) as (_, port):
            clients = []
            for host in ("203.0.113.1", "203.0.113.2"):
                reader, writer = await connect(port)
                writer.write(encode_v1((host, 1), ("198.51.100.1", 2)) + b"in\n")
                assert await reader.readline() == b"in\n"
                clients.append(writer)
            reader, writer = await connect(port)
            writer.write(encode_v1(("203.0.113.1", 2), ("198.51.100.1", 2)))
            assert await read_eof(reader) == b""

    async def test_a_proxy_header_comes_before_the_tls_handshake(
        self, certificates: Certificates
    ) -> None:
        app = Recorder()
        options = certificates.server_options(proxy_protocol=("127.0.0.1",))
        async with serve(app, framing="line", **options) as (_, port):
            reader, writer = await connect(port)
            writer.write(encode_v2(("203.0.113.9", 5), ("198.51.100.1", 6)))
            await writer.start_tls(certificates.client_context())
            writer.write(b"both\n")
            assert await reader.readline() == b"both\n"
            scope = app.scopes[0]
            assert scope["client"] == ("203.0.113.9", 5)
            assert scope["extensions"]["tls"]["client_cert_name"].startswith("CN=device-42,")
            writer.close()
