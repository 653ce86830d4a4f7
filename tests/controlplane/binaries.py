"""Build (or find) the control-plane binaries: etcd and three Kubernetes components.

The binaries come from the official Go modules, compiled with the machine's Go:
``k8s.io/kubernetes`` cannot be ``go install``-ed directly because its go.mod points
its ``k8s.io/*`` staging modules at local directories, so a small wrapper module
requires ``k8s.io/kubernetes`` and maps every staging module to its published
``v0.<minor>.<patch>`` tag. etcd gets a wrapper of its own: its gRPC and protobuf
versions differ from Kubernetes', and one module graph cannot hold both.

Results are cached per version under ``~/.cache/salad-vk/controlplane/<version>/``;
a second build finds them and returns in milliseconds. If ``KUBEBUILDER_ASSETS``
names a folder (the controller-runtime envtest convention), binaries found there are
used as they are.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
BINARIES = ("etcd", *COMPONENTS)

_STAGING_REQUIREMENT = re.compile(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*$", re.MULTILINE)


class BuildError(RuntimeError):
    """The Go build failed; the message carries the command and its output tail."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the four executables a control plane needs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path

    @classmethod
    def in_folder(cls, folder: Path) -> Binaries:
        return cls(*(folder / name for name in BINARIES))

    def path(self, name: str) -> Path:
        return {
            "etcd": self.etcd,
            "kube-apiserver": self.kube_apiserver,
            "kube-controller-manager": self.kube_controller_manager,
            "kube-scheduler": self.kube_scheduler,
        }[name]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "salad-vk" / "controlplane"


def cache_dir(version: str = KUBERNETES_VERSION) -> Path:
    return cache_root() / version


def _log(message: str) -> None:
    print(f"[controlplane] {message}", file=sys.stderr, flush=True)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _stamp(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / "BUILD-INFO.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _wanted_version(binary: str) -> str:
    return ETCD_VERSION if binary == "etcd" else KUBERNETES_VERSION


def missing(folder: Path) -> list[str]:
    """Binaries absent from ``folder`` or built from another pinned version."""
    stamp = _stamp(folder)
    return [
        name
        for name in BINARIES
        if not _is_executable(folder / name) or stamp.get(name) != _wanted_version(name)
    ]


def find() -> Binaries | None:
    """Binaries ready to run without building anything, or None."""
    folder = cache_dir()
    assets = _assets_folder()
    if assets is not None and all(_is_executable(assets / b) for b in BINARIES):
        return Binaries.in_folder(assets)
    if not missing(folder):
        return _merge_with_assets(Binaries.in_folder(folder), assets)
    return None


def _assets_folder() -> Path | None:
    value = os.environ.get("KUBEBUILDER_ASSETS")
    return Path(value) if value else None


def _merge_with_assets(built: Binaries, assets: Path | None) -> Binaries:
    """Prefer a binary from KUBEBUILDER_ASSETS over our own build of it."""
    if assets is None:
        return built
    chosen = [
        assets / name if _is_executable(assets / name) else built.path(name) for name in BINARIES
    ]
    return Binaries(*chosen)


def build() -> Binaries:
    """Return the binaries, compiling whatever is neither cached nor in KUBEBUILDER_ASSETS."""
    ready = find()
    if ready is not None:
        return ready
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    assets = _assets_folder()
    with _exclusive(folder / ".lock"):
        needed = [b for b in missing(folder) if assets is None or not _is_executable(assets / b)]
        if needed:
            _build_into(folder, needed)
    return _merge_with_assets(Binaries.in_folder(folder), assets)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One build at a time per cache folder, across processes (CI and a developer shell)."""
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # A go.mod "toolchain" line must never make us download another Go.
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOWORK": "off",
        }
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    _log("$ " + " ".join(cmd))
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise BuildError(f"{' '.join(cmd)} failed with exit code {result.returncode}:\n{tail}")
    _log(f"  done in {time.monotonic() - started:.0f}s")


def _module_file(module: str, version: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"go mod download {module}@{version} failed:\n{result.stderr[-4000:]}")
    info = json.loads(result.stdout)
    return Path(info["GoMod"]).read_text()


def _version_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _build_into(folder: Path, needed: list[str]) -> None:
    if shutil.which("go") is None:
        raise BuildError("`go` is not on PATH; the control plane is built from Go modules")
    _log(f"building {', '.join(needed)} into {folder} (first time only; takes minutes)")
    components = [b for b in needed if b in COMPONENTS]
    if components:
        _build_kubernetes(folder, components)
    if "etcd" in needed:
        _build_etcd(folder)


def _write_stamp(folder: Path, names: list[str]) -> None:
    stamp = _stamp(folder)
    stamp.update({name: _wanted_version(name) for name in names})
    (folder / "BUILD-INFO.json").write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")


def _build_kubernetes(folder: Path, components: list[str]) -> None:
    work = folder / "src" / "kubernetes"
    work.mkdir(parents=True, exist_ok=True)
    env = _go_env()
    (work / "go.mod").write_text("module saladvk.local/controlplane\n\ngo 1.26.0\n")
    upstream = _module_file("k8s.io/kubernetes", KUBERNETES_VERSION, work, env)
    staging_tag = "v0." + ".".join(KUBERNETES_VERSION.lstrip("v").split(".")[1:])
    replaces = "\n".join(
        f"\t{module} => {module} {staging_tag}"
        for module in sorted(set(_STAGING_REQUIREMENT.findall(upstream)))
    )
    (work / "go.mod").write_text(
        "module saladvk.local/controlplane\n\ngo 1.26.0\n\n"
        f"require k8s.io/kubernetes {KUBERNETES_VERSION}\n\nreplace (\n{replaces}\n)\n"
    )
    packages = [f"k8s.io/kubernetes/cmd/{c}" for c in components]
    _run(["go", "get", *(f"{p}@{KUBERNETES_VERSION}" for p in packages)], work, env)
    out = work / "bin"
    out.mkdir(exist_ok=True)
    _run(
        ["go", "build", "-trimpath", "-ldflags", _version_ldflags(), "-o", f"{out}/", *packages],
        work,
        env,
    )
    for component in components:
        # Rename into place only after a complete build, so a killed build never
        # leaves a half-written binary that looks cached.
        (out / component).replace(folder / component)
    _write_stamp(folder, components)


def _build_etcd(folder: Path) -> None:
    work = folder / "src" / "etcd"
    work.mkdir(parents=True, exist_ok=True)
    env = _go_env()
    (work / "go.mod").write_text("module saladvk.local/etcdbuild\n\ngo 1.26.0\n")
    _run(["go", "get", f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}"], work, env)
    target = work / "etcd"
    _run(
        [
            "go",
            "build",
            "-trimpath",
            "-ldflags",
            "-s -w",
            "-o",
            str(target),
            "go.etcd.io/etcd/server/v3",
        ],
        work,
        env,
    )
    target.replace(folder / "etcd")
    _write_stamp(folder, ["etcd"])
