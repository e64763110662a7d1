"""The TLS side of reaching a switch: which authorities to trust, and which certificate to show.

:func:`ssl_context` builds the one :class:`ssl.SSLContext` a client uses, whatever carries its
requests. It needs no HTTP library, so any transport can take what it returns.

Trust (``verify``):

* ``True``: the system's trust store, as the operating system's own programs use it; a CA
  an administrator installed there (a corporate or private CA) is trusted. The environment
  variables ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``, when set, name the authorities instead,
  as they do for OpenSSL's own tools. The store is read through ``truststore`` (installed
  by the ``[http]`` extra: the platform's verifier on macOS and Windows, the system's CA
  files on Linux), else through OpenSSL's default paths. Never certifi's bundle, which
  leaves out what an administrator added.
* a path: the CA certificates in that PEM file, or in that directory (OpenSSL's ``capath``
  layout), and no others.
* an :class:`ssl.SSLContext`: used as it is (``cert`` may not be given with it).
* ``False``: no verification at all; for tests against a throwaway server only.

A client certificate (``cert``), which payment switches often ask for (mutual TLS): the path
of a PEM file holding the certificate and its key, or a ``(certificate, key)`` pair of paths.
"""

from __future__ import annotations

import os
import ssl

from voucher_core.errors import InvalidArgument

__all__ = ["Cert", "Verify", "ssl_context"]

Verify = bool | str | os.PathLike[str] | ssl.SSLContext
Cert = str | os.PathLike[str] | tuple[str | os.PathLike[str], str | os.PathLike[str]]

# Where OpenSSL reads its authorities from unless told otherwise; these two variables tell it.
_ENVIRONMENT = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def ssl_context(verify: Verify = True, cert: Cert | None = None) -> ssl.SSLContext:
    """The client-side TLS context for ``verify`` and ``cert`` (see the module's docstring).

    Raises :class:`~voucher_core.errors.InvalidArgument` (a ``ValueError``) for a CA path or
    a certificate that cannot be loaded, naming the file but never its contents.
    """
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise InvalidArgument("cert cannot be combined with a ready SSLContext; load it there")
        return verify
    if verify is True:
        context = _system_context()
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str | os.PathLike):
        context = _context_from(os.fspath(verify))
    else:
        raise InvalidArgument(f"verify must be a bool, a CA path or an SSLContext, got {verify!r}")
    if cert is not None:
        _load_certificate(context, cert)
    return context


def _system_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is not None or capath is not None:
        try:
            return ssl.create_default_context(cafile=cafile, capath=capath)
        except (OSError, ValueError) as exc:
            named = ", ".join(f"{name}={os.environ.get(name)!r}" for name in _ENVIRONMENT)
            raise InvalidArgument(f"cannot load CA certificates from {named}") from exc
    try:
        import truststore  # noqa: PLC0415  (optional: the [http] extra installs it)
    except ImportError:
        # OpenSSL's default paths: the system's CA store where Python's OpenSSL is the
        # system's own (Linux distributions, the BSDs).
        return ssl.create_default_context()
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _context_from(path: str) -> ssl.SSLContext:
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise InvalidArgument(f"verify: cannot load CA certificates from {path!r}") from exc


def _load_certificate(context: ssl.SSLContext, cert: Cert) -> None:
    if isinstance(cert, tuple):
        if len(cert) != 2:
            raise InvalidArgument("cert must be a path or a (certificate, key) pair of paths")
        certfile, keyfile = os.fspath(cert[0]), os.fspath(cert[1])
    elif isinstance(cert, str | os.PathLike):
        certfile, keyfile = os.fspath(cert), None
    else:
        raise InvalidArgument(f"cert must be a path or a (certificate, key) pair, got {cert!r}")
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ValueError) as exc:
        shown = certfile if keyfile is None else f"{certfile} with key {keyfile}"
        raise InvalidArgument(f"cert: cannot load the client certificate {shown}") from exc
