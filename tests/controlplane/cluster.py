"""Start and stop etcd + kube-apiserver + kube-controller-manager + kube-scheduler.

Everything listens on 127.0.0.1 only, on ports picked free at start. The processes
are recorded (PID plus kernel start time) in ``DIR/controlplane.json`` so ``down``
stops exactly what ``up`` started, even if a PID has since been reused by an
unrelated process.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import binaries, pki

STATE_FILE = "controlplane.json"
_SERVICE_CIDR = "10.0.0.0/24"
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """A component failed to start; the message carries the tail of its log."""


@dataclass(frozen=True)
class ControlPlane:
    dir: Path
    kubeconfig: Path
    server: str


@dataclass(frozen=True)
class _Process:
    name: str
    pid: int
    start_ticks: int


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_ticks(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields resume after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this child when the process that started it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _kubeconfig(path: Path, server: str, ca: Path, client: pki.Pair, user: str) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "salad-vk-test",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [
            {"name": "salad-vk-test", "context": {"cluster": "salad-vk-test", "user": user}}
        ],
        "current-context": "salad-vk-test",
    }
    # JSON is valid YAML; every kubeconfig reader accepts it.
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


def _read_state(folder: Path) -> list[_Process]:
    try:
        data = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [_Process(p["name"], int(p["pid"]), int(p["start_ticks"])) for p in data["processes"]]


def _write_state(folder: Path, processes: list[_Process], server: str) -> None:
    data = {
        "server": server,
        "kubeconfig": str(folder / "kubeconfig"),
        "processes": [p.__dict__ for p in processes],
    }
    (folder / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n")


def _alive(process: _Process) -> bool:
    return _start_ticks(process.pid) == process.start_ticks


def running(folder: Path) -> list[str]:
    """Names of the recorded components of ``folder`` that are still running."""
    return [p.name for p in _read_state(folder) if _alive(p)]


def _log_tail(folder: Path, name: str, lines: int = 30) -> str:
    try:
        text = (folder / "logs" / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _get(url: str, context: ssl.SSLContext | None) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def up(
    folder: Path,
    *,
    node_monitor_grace_period: float | None = None,
    default_toleration_seconds: int | None = None,
    die_with_parent: bool = False,
    timeout: float = 180.0,
) -> ControlPlane:
    """Start a control plane in ``folder``; return once every component answers healthy.

    ``die_with_parent`` ties the components' lives to the calling process (the pytest
    fixture uses it, so a killed test run leaves nothing behind); the CLI leaves it
    off so the components outlive ``up``.
    """
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    still = running(folder)
    if still:
        raise ControlPlaneError(
            f"a control plane is already running in {folder} ({', '.join(still)}); "
            f"run `python -m tests.controlplane down --dir {folder}` first"
        )
    exe = binaries.build()
    certs = pki.generate(folder / "pki")
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)

    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    kcm_port, sched_port = _free_port(), _free_port()
    server = f"https://127.0.0.1:{api_port}"
    _kubeconfig(folder / "kubeconfig", server, certs.ca.cert, certs.admin, "admin")
    _kubeconfig(
        folder / "controller-manager.kubeconfig",
        server,
        certs.ca.cert,
        certs.controller_manager,
        "system:kube-controller-manager",
    )
    _kubeconfig(
        folder / "scheduler.kubeconfig",
        server,
        certs.ca.cert,
        certs.scheduler,
        "system:kube-scheduler",
    )

    tolerations: list[str] = []
    if default_toleration_seconds is not None:
        tolerations = [
            f"--default-not-ready-toleration-seconds={default_toleration_seconds}",
            f"--default-unreachable-toleration-seconds={default_toleration_seconds}",
        ]
    monitoring: list[str] = []
    if node_monitor_grace_period is not None:
        period = max(0.5, min(5.0, node_monitor_grace_period / 5))
        monitoring = [
            f"--node-monitor-grace-period={node_monitor_grace_period}s",
            f"--node-monitor-period={period}s",
        ]

    commands: dict[str, list[str]] = {
        "etcd": [
            str(exe.etcd),
            "--name=default",
            f"--data-dir={folder / 'etcd-data'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            # A test cluster's data is thrown away; fsync would only make it slow.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(exe.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={folder / 'apiserver-certs'}",
            f"--tls-cert-file={certs.apiserver.cert}",
            f"--tls-private-key-file={certs.apiserver.key}",
            f"--client-ca-file={certs.ca.cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={certs.service_account_pub}",
            f"--service-account-signing-key-file={certs.service_account_key}",
            f"--service-cluster-ip-range={_SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # The apiserver would publish 127.0.0.1 as the `kubernetes` Service
            # endpoint, which endpoint validation rejects as loopback.
            "--endpoint-reconciler-type=none",
            # How the apiserver reaches a node's kubelet API (logs, /pods, stats): with
            # its own client certificate, preferring InternalIP as virtual nodes have
            # no other address. Without a --kubelet-certificate-authority it does not
            # verify the node's serving certificate, as in most clusters.
            f"--kubelet-client-certificate={certs.kubelet_client.cert}",
            f"--kubelet-client-key={certs.kubelet_client.key}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--profiling=false",
            *tolerations,
        ],
        "kube-controller-manager": [
            str(exe.kube_controller_manager),
            f"--kubeconfig={folder / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={folder / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={folder / 'controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            f"--cert-dir={folder / 'controller-manager-certs'}",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={certs.service_account_key}",
            f"--root-ca-file={certs.ca.cert}",
            f"--cluster-signing-cert-file={certs.ca.cert}",
            f"--cluster-signing-key-file={certs.ca.key}",
            "--profiling=false",
            *monitoring,
        ],
        "kube-scheduler": [
            str(exe.kube_scheduler),
            f"--kubeconfig={folder / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={folder / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={folder / 'scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
            f"--cert-dir={folder / 'scheduler-certs'}",
            "--leader-elect=false",
            "--profiling=false",
        ],
    }

    client_tls = ssl.create_default_context(cafile=str(certs.ca.cert))
    client_tls.load_cert_chain(str(certs.admin.cert), str(certs.admin.key))
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    checks: dict[str, Callable[[], bool]] = {
        "etcd": lambda: (
            (_get(f"http://127.0.0.1:{etcd_port}/health", None) or "").find('"health":"true"') >= 0
        ),
        "kube-apiserver": lambda: _get(f"{server}/readyz", client_tls) == "ok",
        "kube-controller-manager": lambda: (
            _get(f"https://127.0.0.1:{kcm_port}/healthz", insecure) == "ok"
        ),
        "kube-scheduler": lambda: _get(f"https://127.0.0.1:{sched_port}/healthz", insecure) == "ok",
    }

    started: list[_Process] = []
    deadline = time.monotonic() + timeout
    try:
        for name, command in commands.items():
            with (logs / f"{name}.log").open("ab") as log:
                child = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if die_with_parent else None,  # noqa: PLW1509
                )
            ticks = _start_ticks(child.pid)
            started.append(_Process(name, child.pid, ticks if ticks is not None else -1))
            _write_state(folder, started, server)
            _wait(name, checks[name], child, deadline, folder)
            if name == "kube-apiserver":
                _bind_kubelet_client(server, client_tls)
    except BaseException:
        _stop(started)
        raise
    return ControlPlane(dir=folder, kubeconfig=folder / "kubeconfig", server=server)


def _wait(
    name: str,
    healthy: Callable[[], bool],
    child: subprocess.Popen[bytes],
    deadline: float,
    folder: Path,
) -> None:
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ControlPlaneError(
                f"{name} exited with code {child.returncode}; last log lines:\n"
                + _log_tail(folder, name)
            )
        if healthy():
            return
        time.sleep(0.2)
    raise ControlPlaneError(
        f"{name} not healthy in time; last log lines:\n{_log_tail(folder, name)}"
    )


KUBELET_CLIENT_BINDING = "salad-vk-test:apiserver-kubelet-client"


def _bind_kubelet_client(server: str, context: ssl.SSLContext) -> None:
    """Let the apiserver's kubelet client identity use the kubelet API, as kubeadm does:
    bind it to the built-in ``system:kubelet-api-admin`` role."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": KUBELET_CLIENT_BINDING},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:kubelet-api-admin",
        },
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": pki.KUBELET_CLIENT_USER,
            }
        ],
    }
    request = urllib.request.Request(
        f"{server}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        data=json.dumps(binding).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context):
            pass
    except urllib.error.HTTPError as error:
        if error.code != 409:  # already there: a control plane restarted on its data
            raise ControlPlaneError(
                f"cannot bind the kubelet client role: {error.code} {error.read()[:300]!r}"
            ) from None


def _stop(processes: list[_Process], grace: float = 10.0) -> list[str]:
    """Stop what is still ours in reverse start order, SIGKILL after ``grace`` each.

    One at a time: an apiserver whose etcd is already gone hangs in its graceful
    shutdown until killed, while in order the whole plane stops in about a second.
    """
    ours = [p for p in reversed(processes) if _alive(p)]
    for process in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(process) and time.monotonic() < deadline:
            _reap(process)
            time.sleep(0.05)
        if _alive(process):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        while _alive(process):
            _reap(process)
            time.sleep(0.05)
        _reap(process)
    return [p.name for p in ours]


def _reap(process: _Process) -> None:
    """Collect ``process`` if it is our exited child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(process.pid, os.WNOHANG)


def down(folder: Path) -> list[str]:
    """Stop the processes ``up`` recorded in ``folder``; remove nothing, not even files."""
    return _stop(_read_state(folder.resolve()))
