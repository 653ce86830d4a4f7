"""Where the control-plane binaries come from: the cache, or KUBEBUILDER_ASSETS."""

import json
from pathlib import Path

import pytest

from tests.controlplane import binaries


def _fake_binaries(folder: Path, names: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)


def test_kubebuilder_assets_holding_every_binary_are_used_without_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = tmp_path / "assets"
    _fake_binaries(assets, binaries.BINARIES)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", "")  # building would need `go`: prove nothing is built

    found = binaries.build()

    assert found == binaries.Binaries.in_folder(assets)


def test_an_envtest_folder_lends_what_it_has_and_the_cache_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets, cache = tmp_path / "assets", tmp_path / "cache"
    _fake_binaries(assets, ("etcd", "kube-apiserver"))
    built = cache / "salad-vk" / "controlplane" / binaries.KUBERNETES_VERSION
    _fake_binaries(built, binaries.BINARIES)
    stamp = {name: binaries.KUBERNETES_VERSION for name in binaries.COMPONENTS}
    (built / "BUILD-INFO.json").write_text(json.dumps({**stamp, "etcd": binaries.ETCD_VERSION}))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))

    found = binaries.build()

    assert found.etcd == assets / "etcd"
    assert found.kube_apiserver == assets / "kube-apiserver"
    assert found.kube_scheduler == built / "kube-scheduler"


def test_a_cached_binary_of_another_pinned_version_is_not_taken(tmp_path: Path) -> None:
    _fake_binaries(tmp_path, binaries.BINARIES)
    (tmp_path / "BUILD-INFO.json").write_text('{"etcd": "v0.0.1"}')
    assert set(binaries.missing(tmp_path)) == set(binaries.BINARIES)
