"""Reaching a switch over TLS as a payment switch asks: a private CA, a client certificate.

A real HTTPS server on loopback (the simulator under uvicorn) with a certificate from a
private CA made for the test (trustme), asking clients for a certificate from the same CA.
The transports and the ``voucher`` command must trust that CA when told (``verify`` or
``--ca-file``, or ``SSL_CERT_FILE`` with the default ``verify=True``), present the client
certificate (``cert``, ``--client-cert``/``--client-key``), and refuse a server they were
not told to trust.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

trustme = pytest.importorskip("trustme")

from voucher_adapters.demo import demo_request  # noqa: E402
from voucher_adapters.simulator import SwitchSimulator  # noqa: E402
from voucher_adapters.simulator.server import RunningServer, ServerTLS, create_app  # noqa: E402
from voucher_adapters.transports.http import (  # noqa: E402
    AsyncHttpTransport,
    BasicAuth,
    HttpTransport,
)
from voucher_adapters.transports.tls import ssl_context  # noqa: E402
from voucher_core.replies import Approved, Unknown  # noqa: E402
from voucher_core.transaction import random_id  # noqa: E402

AUTH = BasicAuth("voucher-demo", "demo")


@attrs.frozen
class Pki:
    ca: str  # the private CA's certificate
    server: str  # the server's certificate and key
    client: str  # the client's certificate and key, one file
    client_cert: str  # the same, as two files
    client_key: str
    stranger: str  # a client certificate from another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("till-0001@example.test")
    stranger = other.issue_cert("till-0002@example.test")

    def write(name: str, *blobs: Any) -> str:
        path = folder / name
        path.write_bytes(b"".join(blob.bytes() for blob in blobs))
        return str(path)

    return Pki(
        ca=write("ca.pem", ca.cert_pem),
        server=write("server.pem", server.private_key_pem, *server.cert_chain_pems),
        client=write("client.pem", client.private_key_pem, *client.cert_chain_pems),
        client_cert=write("client-cert.pem", *client.cert_chain_pems),
        client_key=write("client-key.pem", client.private_key_pem),
        stranger=write("stranger.pem", stranger.private_key_pem, *stranger.cert_chain_pems),
    )


@pytest.fixture(scope="module")
def switch_url(pki: Pki) -> Iterator[str]:
    """An HTTPS simulator that asks every client for a certificate from the private CA."""
    tls = ServerTLS(certfile=pki.server, client_ca=pki.ca)
    with RunningServer(create_app(SwitchSimulator()), tls=tls) as server:
        yield server.url


def sale() -> Any:
    from datetime import UTC, datetime  # noqa: PLC0415

    return demo_request(id=random_id(), time=datetime.now(UTC))


# -- the transports -------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_private_ca_and_a_client_certificate_reach_the_switch(
    pki: Pki, switch_url: str, flavour: str
) -> None:
    options: dict[str, Any] = {"auth": AUTH, "verify": pki.ca, "cert": pki.client}
    if flavour == "sync":
        with HttpTransport(switch_url, **options) as transport:
            reply = transport.provision(sale(), timeout=10.0)
    else:

        async def run() -> Any:
            transport = AsyncHttpTransport(switch_url, **options)
            try:
                return await transport.provision(sale(), timeout=10.0)
            finally:
                await transport.aclose()

        reply = asyncio.run(run())
    assert isinstance(reply, Approved), reply


def test_the_certificate_and_key_may_come_as_two_files(pki: Pki, switch_url: str) -> None:
    cert = (pki.client_cert, pki.client_key)
    with HttpTransport(switch_url, auth=AUTH, verify=pki.ca, cert=cert) as transport:
        assert isinstance(transport.provision(sale(), timeout=10.0), Approved)


@pytest.mark.parametrize("cert", ["none", "stranger"])
def test_without_a_certificate_the_switch_trusts_the_call_gets_no_answer(
    pki: Pki, switch_url: str, cert: str
) -> None:
    given = None if cert == "none" else pki.stranger
    with HttpTransport(switch_url, auth=AUTH, verify=pki.ca, cert=given) as transport:
        reply = transport.provision(sale(), timeout=10.0)
    assert isinstance(reply, Unknown)
    assert "POST /suv/v1/vouchers" in reply.detail


def test_verify_true_does_not_trust_a_private_ca_by_itself(
    pki: Pki, switch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with HttpTransport(switch_url, auth=AUTH, cert=pki.client) as transport:
        reply = transport.provision(sale(), timeout=10.0)
    assert isinstance(reply, Unknown)
    assert "CERTIFICATE_VERIFY_FAILED" in reply.detail


def test_verify_true_honours_ssl_cert_file(
    pki: Pki, switch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca)
    with HttpTransport(switch_url, auth=AUTH, cert=pki.client) as transport:
        assert isinstance(transport.provision(sale(), timeout=10.0), Approved)


def test_verify_true_reads_the_systems_store_not_a_bundle_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = ssl_context(True)
    try:
        import truststore  # noqa: PLC0415
    except ImportError:
        system = ssl.create_default_context()
        assert context.cert_store_stats() == system.cert_store_stats()
    else:
        assert isinstance(context, truststore.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_files_that_cannot_be_loaded_are_named_in_the_error(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match=r"client certificate .*missing\.pem"):
        ssl_context(pki.ca, missing)
    with pytest.raises(ValueError, match="CA certificates"):
        ssl_context(missing)
    with pytest.raises(ValueError, match="SSL_CERT_FILE"):
        os.environ["SSL_CERT_FILE"] = missing
        try:
            ssl_context(True)
        finally:
            del os.environ["SSL_CERT_FILE"]
    with pytest.raises(ValueError, match="ready SSLContext"):
        ssl_context(ssl.create_default_context(), pki.client)
