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
import base64
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus

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


# -- the voucher command ---------------------------------------------------------------------------

VOUCHER = [sys.executable, "-m", "voucher_adapters"]
ROOT = Path(__file__).resolve().parent.parent


def voucher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SSL_CERT_")}
    environment.update(env or {})
    return subprocess.run(
        [*VOUCHER, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def sell(url: str, *more: str, env: dict[str, str] | None = None) -> Any:
    return voucher(
        "provision", "--url", url, "--product", "AIRTIME10", "--amount", "1000",
        "--messaging", "single", "--timeout", "5", "--drain-timeout", "5", *more, env=env,
    )  # fmt: skip


def test_provision_reaches_a_mutual_tls_switch_with_ca_file_and_client_cert(
    pki: Pki, switch_url: str
) -> None:
    done = sell(switch_url, "--ca-file", pki.ca, "--client-cert", pki.client_cert,
                "--client-key", pki.client_key)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "=> DONE, customer approved" in done.stdout


def test_provision_trusts_ssl_cert_file_when_no_ca_file_is_given(pki: Pki, switch_url: str) -> None:
    done = sell(switch_url, "--client-cert", pki.client, env={"SSL_CERT_FILE": pki.ca})
    assert done.returncode == 0, done.stderr
    assert "=> DONE, customer approved" in done.stdout


def test_provision_without_the_private_ca_is_never_approved(pki: Pki, switch_url: str) -> None:
    done = sell(switch_url, "--client-cert", pki.client)
    assert "customer approved" not in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--client-key", "key.pem"], "--client-key needs --client-cert"),
        (["--token-url", "https://idp.example/token"], "needs both --token-url and --client-id"),
        (
            ["--token-url", "https://idp.example/t", "--client-id", "till", "--username", "u"],
            "replace --username/--password",
        ),
        (["--token-url", "https://idp.example/t", "--client-id", "till"], "VOUCHER_CLIENT_SECRET"),
    ],
    ids=["key-alone", "half-oauth2", "oauth2-and-basic", "no-secret"],
)
def test_contradicting_access_options_exit_2_in_one_line(args: list[str], refusal: str) -> None:
    for command in (
        ["provision", "--url", "https://127.0.0.1:1", "--product", "A1", "--amount", "1"],
        ["queue", "drain", "--url", "https://127.0.0.1:1", "--db", "missing.db"],
        ["recover", "--url", "https://127.0.0.1:1", "--db", "missing.db"],
    ):
        done = voucher(*command, *args, env={"VOUCHER_CLIENT_SECRET": ""})
        assert done.returncode == 2, (command, done.stderr)
        assert refusal in done.stderr
        assert "Traceback" not in done.stderr


def test_a_ca_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    done = sell("https://127.0.0.1:1/suv/v1", "--ca-file", str(tmp_path / "none.pem"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"voucher provision: verify: cannot load CA certificates from '{tmp_path / 'none.pem'}'"
    ]


def test_oauth2_client_credentials_from_the_command_line_and_the_environment() -> None:
    from http_faults import Reply, ScriptedSwitch  # noqa: PLC0415

    secret = "s3cret/with+signs"
    with ScriptedSwitch() as switch:
        token = {"access_token": "tok-1", "expires_in": 300, "token_type": "Bearer"}
        switch.script("/oauth/token", Reply(200, json.dumps(token).encode()))
        refusal = {"errorType": "FORMAT_ERROR", "errorMessage": "no", "id": "e1"}
        switch.script("/suv/v1/vouchers", Reply(400, json.dumps(refusal).encode()))
        done = sell(
            switch.url + "/suv/v1",
            *("--token-url", switch.url + "/oauth/token", "--client-id", "till-7"),
            *("--scope", "vouchers"),
            env={"VOUCHER_CLIENT_SECRET": secret},
        )
        grant = switch.to("/oauth/token")
        sales = switch.to("/suv/v1/vouchers")
    assert "Traceback" not in done.stderr, done.stderr
    assert secret not in done.stdout + done.stderr
    assert len(grant) == 1
    basic = base64.b64decode(grant[0].headers["authorization"].removeprefix("Basic ")).decode()
    assert basic == f"till-7:{quote_plus(secret)}"
    assert parse_qs(grant[0].body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["vouchers"],
    }
    assert sales and sales[0].headers["authorization"] == "Bearer tok-1"
    assert json.loads(sales[0].body)["client"]["id"] == "till-7"
