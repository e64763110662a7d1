"""How the commands that talk to a switch (``provision``, ``queue drain``, ``recover``) reach it
beyond its URL: which CA to trust, which client certificate to show, and OAuth2 client
credentials instead of HTTP Basic.

Secrets never come from the command line, where every user of the machine can read them in
the process list: the OAuth2 client secret is read from ``VOUCHER_CLIENT_SECRET``.
"""

from __future__ import annotations

import argparse
import os

import attrs

from voucher_adapters.transports.tls import Cert, Verify

__all__ = ["CLIENT_SECRET_ENV", "OAuth2Options", "SwitchAccess", "access", "add_access_options"]

CLIENT_SECRET_ENV = "VOUCHER_CLIENT_SECRET"


@attrs.frozen(kw_only=True)
class OAuth2Options:
    """OAuth2 client credentials as the command line gave them."""

    token_url: str
    client_id: str
    client_secret: str = attrs.field(repr=False)
    scope: str | None = None


@attrs.frozen(kw_only=True)
class SwitchAccess:
    """TLS and, when given, OAuth2: what a command needs besides the URL and Basic auth."""

    verify: Verify = True
    cert: Cert | None = None
    oauth2: OAuth2Options | None = None

    def oauth2_auth(self) -> object | None:
        """The :class:`~voucher_adapters.transports.http.OAuth2ClientCredentials` to use, or
        None for HTTP Basic (imported here: the ``[http]`` extra)."""
        if self.oauth2 is None:
            return None
        from voucher_adapters.transports.http import OAuth2ClientCredentials  # noqa: PLC0415

        given = self.oauth2
        return OAuth2ClientCredentials(
            given.token_url, given.client_id, given.client_secret, scope=given.scope
        )


def add_access_options(parser: argparse.ArgumentParser) -> None:
    """``--ca-file``, ``--client-cert``/``--client-key`` and the OAuth2 options."""
    tls = parser.add_argument_group("TLS")
    tls.add_argument(
        "--ca-file",
        metavar="PEM",
        help="trust the CA certificates in this file (or directory) instead of the system's "
        "(default: the system's trust store, or $SSL_CERT_FILE when set)",
    )
    tls.add_argument(
        "--client-cert",
        metavar="PEM",
        help="present this client certificate (mutual TLS); it may hold the key too",
    )
    tls.add_argument("--client-key", metavar="PEM", help="the client certificate's key file")
    oauth = parser.add_argument_group("OAuth2 client credentials (instead of Basic auth)")
    oauth.add_argument("--token-url", metavar="URL", help="the token endpoint")
    oauth.add_argument(
        "--client-id",
        metavar="ID",
        help=f"the OAuth2 client id (the secret is read from ${CLIENT_SECRET_ENV})",
    )
    oauth.add_argument("--scope", help="the scope to ask for (default: none)")


def access(args: argparse.Namespace, parser: argparse.ArgumentParser) -> SwitchAccess:
    """The :class:`SwitchAccess` the options describe; contradictions exit 2 with usage."""
    if args.client_key is not None and args.client_cert is None:
        parser.error("--client-key needs --client-cert")
    cert: Cert | None = None
    if args.client_cert is not None:
        cert = args.client_cert if args.client_key is None else (args.client_cert, args.client_key)
    oauth2: OAuth2Options | None = None
    if args.token_url is not None or args.client_id is not None or args.scope is not None:
        if args.token_url is None or args.client_id is None:
            parser.error("OAuth2 needs both --token-url and --client-id")
        if args.username is not None or args.password is not None:
            parser.error("--token-url/--client-id replace --username/--password; give one pair")
        secret = os.environ.get(CLIENT_SECRET_ENV)
        if not secret:
            parser.error(f"--client-id {args.client_id} needs {CLIENT_SECRET_ENV} set")
        oauth2 = OAuth2Options(
            token_url=args.token_url,
            client_id=args.client_id,
            client_secret=secret,
            scope=args.scope,
        )
    verify: Verify = args.ca_file if args.ca_file is not None else True
    return SwitchAccess(verify=verify, cert=cert, oauth2=oauth2)
