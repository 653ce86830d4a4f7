"""The kubelet API's TLS: a serving certificate, the cluster's client CA, both reloaded.

The listening socket keeps one ``SSLContext`` for its whole life; its ``sni_callback``
(called for every handshake, with or without SNI) puts the *current* context on the
connection. Reloading the serving certificate or the client CA is then building a new
context: connections already open keep theirs, the next handshake gets the new one,
and the listener never restarts.

* Serving certificate: the files given (``--kubelet-tls-cert-file``/``-key-file``, for
  example a mounted cert-manager Secret), re-read when their content changes; else a
  self-signed one made at start for the node addresses. The API server does not
  verify a kubelet's serving certificate unless started with
  ``--kubelet-certificate-authority`` (docs/kubelet-api.md).
* Client CA: ``client-ca-file`` of the ConfigMap ``kube-system/
  extension-apiserver-authentication``, which the API server keeps current; a client
  certificate is verified against it during the handshake. Without it, no client
  certificate is asked for, and only bearer tokens authenticate.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodes.kube import KubeClient, KubeError, KubeNotFound

log = logging.getLogger(__name__)

CLIENT_CA_CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
_VALIDITY = datetime.timedelta(days=365)

CaSource = Callable[[], Awaitable[str | None]]


def self_signed(addresses: Sequence[str], *, name: str = "salad-vk") -> tuple[bytes, bytes]:
    """A serving certificate and its key (PEM) for ``addresses`` (IPs or DNS names)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    alternatives: list[x509.GeneralName] = [x509.DNSName(name)]
    for address in dict.fromkeys(addresses):
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            alternatives.append(x509.DNSName(address))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def configmap_client_ca(kube: KubeClient) -> CaSource:
    """Reads the cluster's client CA bundle; None when there is none to read."""

    async def read() -> str | None:
        try:
            configmap = await kube.get(CLIENT_CA_CONFIGMAP)
        except KubeNotFound:
            return None
        bundle = (configmap.get("data") or {}).get("client-ca-file")
        return str(bundle) if bundle else None

    return read


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


class ServingTls:
    """The TLS context of the listener, and what keeps it current."""

    def __init__(
        self,
        *,
        cert_file: Path | None,
        key_file: Path | None,
        addresses: Sequence[str],
        client_ca: CaSource,
        reload_interval: float = 30.0,
    ) -> None:
        self._cert_file = cert_file
        self._key_file = key_file
        self._addresses = tuple(addresses)
        self._client_ca_source = client_ca
        self._reload_interval = reload_interval
        self._own = tempfile.TemporaryDirectory(prefix="salad-vk-tls-")
        self._pair: tuple[Path, Path] | None = None
        self._pair_digest = ""
        self._client_ca: str | None = None
        self.current: ssl.SSLContext | None = None
        self.listener: ssl.SSLContext | None = None
        self.reloads = 0
        """Contexts built since start (the first one included)."""

    @property
    def client_ca(self) -> str | None:
        return self._client_ca

    def close(self) -> None:
        self._own.cleanup()

    # --- building ----------------------------------------------------------------------

    def _serving_pair(self) -> tuple[Path, Path, str]:
        if self._cert_file is not None and self._key_file is not None:
            cert, key = self._cert_file.read_bytes(), self._key_file.read_bytes()
            return self._cert_file, self._key_file, _digest(cert, key)
        if self._pair is None:
            cert, key = self_signed(self._addresses)
            folder = Path(self._own.name)
            cert_path, key_path = folder / "tls.crt", folder / "tls.key"
            key_path.touch(mode=0o600)
            key_path.write_bytes(key)
            cert_path.write_bytes(cert)
            self._pair = (cert_path, key_path)
            self._pair_digest = _digest(cert, key)
        return self._pair[0], self._pair[1], self._pair_digest

    def _build(self, cert: Path, key: Path, client_ca: str | None) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert), str(key))
        # Tokens need no certificate: ask for one, verify it if it comes. Always so, even
        # before the client CA could be read: a connection's verify mode comes from the
        # listener's context, which is never swapped, and a CA read later must apply
        # (until then a certificate cannot verify, and a token still works).
        context.verify_mode = ssl.CERT_OPTIONAL
        if client_ca:
            context.load_verify_locations(cadata=client_ca)
        return context

    def _swap_in(self, ssl_object: ssl.SSLObject, _name: str | None, _: ssl.SSLContext) -> None:
        if self.current is not None:
            ssl_object.context = self.current

    async def load(self) -> ssl.SSLContext:
        """Read everything once and return the listener's context (raises if the
        serving certificate cannot be loaded: the server cannot start without one)."""
        self._client_ca = await self._read_client_ca()
        if self._client_ca is None:
            log.warning(
                "the cluster's client CA (%s, key client-ca-file) cannot be read: client "
                "certificates are not accepted, so the API server cannot reach the kubelet "
                "API; only bearer tokens authenticate",
                CLIENT_CA_CONFIGMAP,
            )
        cert, key, digest = self._serving_pair()
        self.current = self._build(cert, key, self._client_ca)
        self._serving_digest = digest
        self.reloads += 1
        listener = self._build(cert, key, self._client_ca)
        listener.sni_callback = self._swap_in
        self.listener = listener
        return listener

    async def _read_client_ca(self) -> str | None:
        try:
            return await self._client_ca_source()
        except KubeError as error:
            log.warning("reading the cluster's client CA failed: %s", error)
            return self._client_ca

    async def refresh(self) -> bool:
        """Rebuild the context if the client CA or the serving certificate changed;
        returns whether it did. A pair that does not load keeps the old context."""
        client_ca = await self._read_client_ca()
        try:
            cert, key, digest = self._serving_pair()
        except OSError as error:
            log.warning("cannot read the kubelet serving certificate: %s", error)
            return False
        if client_ca == self._client_ca and digest == self._serving_digest:
            return False
        try:
            context = self._build(cert, key, client_ca)
        except (OSError, ssl.SSLError, ValueError) as error:
            log.warning("the new kubelet serving certificate or client CA does not load: %s", error)
            return False
        if client_ca != self._client_ca:
            log.info("the cluster's client CA changed; reloaded")
        if digest != self._serving_digest:
            log.info("the kubelet serving certificate changed; reloaded")
        self._client_ca, self._serving_digest, self.current = client_ca, digest, context
        self.reloads += 1
        return True

    async def follow(self) -> None:
        """Refresh every ``reload_interval`` seconds until cancelled."""
        while True:
            await anyio.sleep(self._reload_interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("reloading the kubelet API's TLS failed; trying again")
