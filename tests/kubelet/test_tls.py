"""The kubelet API's TLS: serving certificate and client CA, reloaded without a restart."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509

from supervisor.kubelet.tls import ServingTls, self_signed

from .certs import Authority

pytestmark = pytest.mark.anyio


async def peer_name(request: web.Request) -> web.Response:
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    names = [value for rdn in (peer or {}).get("subject", ()) for key, value in rdn]
    return web.Response(text=",".join(names) or "anonymous")


@asynccontextmanager
async def serving(tls: ServingTls) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", peer_name)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=await tls.load())
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()
        tls.close()


async def call(url: str, *, trust: Path | bool, client: tuple[Path, Path] | None = None) -> str:
    if isinstance(trust, Path):
        verify = ssl.create_default_context(cafile=str(trust))
    else:
        verify = ssl.create_default_context()
        verify.check_hostname = False
        verify.verify_mode = ssl.CERT_NONE
    if client is not None:
        verify.load_cert_chain(str(client[0]), str(client[1]))
    try:
        async with httpx.AsyncClient(verify=verify) as http:
            return (await http.get(url)).text
    except httpx.HTTPError as error:
        return f"refused: {type(error).__name__}"


def test_the_self_signed_certificate_is_for_the_node_addresses() -> None:
    cert_pem, key_pem = self_signed(["192.0.2.2", "2001:db8::1", "salad.internal"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {
        "192.0.2.2",
        "2001:db8::1",
    }
    assert "salad.internal" in names.get_values_for_type(x509.DNSName)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


async def test_client_certificates_of_the_current_client_ca_are_accepted_after_a_reload(
    tmp_path: Path,
) -> None:
    first, second = Authority("ca-1", tmp_path), Authority("ca-2", tmp_path)
    alice, bob = first.issue("alice"), second.issue("bob")
    bundle: list[str | None] = [first.pem]

    async def client_ca() -> str | None:
        return bundle[0]

    tls = ServingTls(cert_file=None, key_file=None, addresses=["127.0.0.1"], client_ca=client_ca)
    async with serving(tls) as url:
        before = [await call(url, trust=False, client=c) for c in (alice, bob, None)]
        bundle[0] = second.pem
        assert await tls.refresh() is True
        after = [await call(url, trust=False, client=c) for c in (alice, bob, None)]
        assert await tls.refresh() is False, "nothing changed since"

    assert before == ["alice", "refused: ReadError", "anonymous"]
    assert after == ["refused: ReadError", "bob", "anonymous"]


async def test_a_client_ca_that_could_not_be_read_at_start_applies_once_it_can(
    tmp_path: Path,
) -> None:
    authority = Authority("ca-late", tmp_path)
    alice = authority.issue("alice")
    bundle: list[str | None] = [None]

    async def client_ca() -> str | None:
        return bundle[0]

    tls = ServingTls(cert_file=None, key_file=None, addresses=["127.0.0.1"], client_ca=client_ca)
    async with serving(tls) as url:
        assert await call(url, trust=False) == "anonymous", "a token-only client is served"
        bundle[0] = authority.pem
        assert await tls.refresh() is True
        assert await call(url, trust=False, client=alice) == "alice"


async def test_serving_certificate_files_are_reloaded_when_they_change(tmp_path: Path) -> None:
    old, new = Authority("old-ca", tmp_path), Authority("new-ca", tmp_path)
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    for source, target in zip(
        old.issue("127.0.0.1", server=True), (cert_file, key_file), strict=True
    ):
        target.write_bytes(source.read_bytes())
    (tmp_path / "old.pem").write_text(old.pem)
    (tmp_path / "new.pem").write_text(new.pem)

    async def no_client_ca() -> str | None:
        return None

    tls = ServingTls(cert_file=cert_file, key_file=key_file, addresses=[], client_ca=no_client_ca)
    async with serving(tls) as url:
        before = await call(url, trust=tmp_path / "old.pem")
        renewed = new.issue("127.0.0.1", server=True)
        key_file.write_bytes(renewed[1].read_bytes())
        broken = await tls.refresh()  # a new key with the old certificate: not loadable
        still = await call(url, trust=tmp_path / "old.pem")
        cert_file.write_bytes(renewed[0].read_bytes())
        reloaded = await tls.refresh()
        after = await call(url, trust=tmp_path / "new.pem")
        stale = await call(url, trust=tmp_path / "old.pem")

    assert before == "anonymous", "no client CA: no certificate asked, tokens only"
    assert broken is False and still == "anonymous", "a half-written pair keeps the old one"
    assert reloaded is True and after == "anonymous"
    assert stale.startswith("refused")
