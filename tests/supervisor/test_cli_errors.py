"""Every expected error of the command line is one line saying what to fix, never a
traceback: a test per error class, through ``supervisor.cli.main`` as a user runs it."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.cli import main
from tests.controlplane.cluster import ControlPlane

KEY = "sk-cli-test-0123456789abcdef"


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    (tmp_path / "key").write_text(KEY + "\n")
    path = tmp_path / "projects.yaml"
    path.write_text(
        "nodes:\n  - {name: salad-cli-a, organization: acme, project: team-a, apiKeyFile: key}\n"
    )
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No kubeconfig anywhere, not in a pod; HOME is an empty folder."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("KUBECONFIG", "SALAD_VK_KUBECONFIG", "SALAD_VK_CONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def kubeconfig(
    path: Path,
    *,
    current: str | None = "ctx",
    contexts: dict[str, dict[str, str]] | None = None,
    clusters: dict[str, dict[str, object]] | None = None,
    users: dict[str, dict[str, str]] | None = None,
) -> Path:
    document: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [
            {"name": n, "context": c}
            for n, c in (contexts or {"ctx": {"cluster": "c", "user": "u"}}).items()
        ],
        "clusters": [
            {"name": n, "cluster": c}
            for n, c in (clusters or {"c": {"server": "https://127.0.0.1:1"}}).items()
        ],
        "users": [{"name": n, "user": u} for n, u in (users or {"u": {"token": "t"}}).items()],
    }
    if current is not None:
        document["current-context"] = current
    path.write_text(json.dumps(document))
    return path


def run_fails(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 2) -> str:
    """Run ``argv``; assert it exits ``status`` with stderr of one line and no traceback."""
    assert main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err.rstrip("\n")


# --- where the cluster comes from ------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_a_kubeconfig_flag_naming_no_file_says_so_and_what_to_do(
    projects: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_fails(capsys, ["run", "--config", str(projects), "--kubeconfig", "/nope/kc"])
    assert err == (
        "salad-vk run: kubeconfig /nope/kc (from --kubeconfig) does not exist: pass the path"
        " of a kubeconfig file, or leave --kubeconfig out to use KUBECONFIG, ~/.kube/config"
        " or the in-cluster service account"
    )


@pytest.mark.usefixtures("clean_env")
def test_the_kubeconfig_variable_of_the_process_is_named_when_it_was_the_source(
    projects: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALAD_VK_KUBECONFIG", "/nope/kc")
    err = run_fails(capsys, ["run", "--config", str(projects)])
    assert "kubeconfig /nope/kc (from SALAD_VK_KUBECONFIG) does not exist" in err


@pytest.mark.usefixtures("clean_env")
def test_nothing_to_connect_to_outside_a_cluster_names_every_place_looked(
    projects: Path, capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    err = run_fails(capsys, ["run", "--config", str(projects)])
    assert err == (
        "salad-vk run: no Kubernetes cluster to connect to: --kubeconfig is not given,"
        f" KUBECONFIG is not set, {clean_env}/.kube/config does not exist, and this is not a"
        " pod (KUBERNETES_SERVICE_HOST is not set): pass --kubeconfig FILE"
    )


@pytest.mark.usefixtures("clean_env")
def test_in_a_pod_without_a_service_account_token_says_to_mount_it(
    projects: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    err = run_fails(capsys, ["run", "--config", str(projects)])
    assert err.startswith(
        "salad-vk run: in-cluster service account: /var/run/secrets/kubernetes.io/"
        "serviceaccount/token does not exist: mount the service account token"
    )


@pytest.mark.usefixtures("clean_env")
def test_a_kubeconfig_variable_naming_no_existing_file_says_so(
    projects: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nope/a:/nope/b")
    err = run_fails(capsys, ["run", "--config", str(projects)])
    assert err.startswith(
        "salad-vk run: KUBECONFIG names no kubeconfig file that exists (/nope/a:/nope/b)"
    )


@pytest.mark.usefixtures("clean_env")
def test_home_kube_config_is_used_when_nothing_else_is_given(
    projects: Path, capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    (clean_env / ".kube").mkdir()
    kubeconfig(clean_env / ".kube" / "config", current=None)
    err = run_fails(capsys, ["run", "--config", str(projects)])
    assert err.startswith(f"salad-vk run: kubeconfig {clean_env}/.kube/config sets no current")


BROKEN_KUBECONFIGS: dict[str, tuple[Callable[[Path], object], str]] = {
    "not YAML": (
        lambda p: p.write_text("clusters: [\n"),
        "kubeconfig {path} is not valid YAML (line 2): fix it, or point --kubeconfig at"
        " another file",
    ),
    "not a mapping": (
        lambda p: p.write_text("- a\n- b\n"),
        "kubeconfig {path} is not a kubeconfig (a YAML mapping of clusters, contexts and"
        " users): point --kubeconfig at one",
    ),
    "no current-context": (
        lambda p: kubeconfig(p, current=None),
        "kubeconfig {path} (from --kubeconfig) sets no current-context (contexts: ctx):"
        " choose one with `kubectl config use-context NAME`, or point --kubeconfig at another"
        " file",
    ),
    "a current-context it does not define": (
        lambda p: kubeconfig(p, current="prod"),
        "kubeconfig {path} (from --kubeconfig): current-context 'prod' is not one of its"
        " contexts (ctx): choose one with `kubectl config use-context NAME`",
    ),
    "a context naming no cluster it defines": (
        lambda p: kubeconfig(p, contexts={"ctx": {"cluster": "gone", "user": "u"}}),
        "kubeconfig {path} (from --kubeconfig): context 'ctx' uses cluster 'gone', which is"
        " not defined: add it, or fix the context",
    ),
    "a context naming no user it defines": (
        lambda p: kubeconfig(p, contexts={"ctx": {"cluster": "c", "user": "gone"}}),
        "kubeconfig {path} (from --kubeconfig): context 'ctx' uses user 'gone', which is not"
        " defined: add it, or fix the context",
    ),
    "a cluster without a server": (
        lambda p: kubeconfig(p, clusters={"c": {}}),
        "kubeconfig {path}: cluster 'c' has no server URL: add `server: https://HOST:PORT`",
    ),
    "a cluster whose settings are not a mapping": (
        lambda p: p.write_text(
            "clusters: [{name: c, cluster: x}]\ncontexts: [{name: ctx, context: {cluster: c}}]\n"
            "current-context: ctx\n"
        ),
        "kubeconfig {path}: clusters[0] (c): cluster is not a mapping of settings",
    ),
    "a server that is not a URL": (
        lambda p: kubeconfig(p, clusters={"c": {"server": 5}}),
        "kubeconfig {path}: cluster 'c' has no server URL: add `server: https://HOST:PORT`",
    ),
    "a certificate authority file that is not there": (
        lambda p: kubeconfig(
            p, clusters={"c": {"server": "https://x:6443", "certificate-authority": "ca.crt"}}
        ),
        "kubeconfig {path}: cluster 'c': certificate-authority {dir}/ca.crt does not exist:"
        " fix the path or use certificate-authority-data",
    ),
}


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("case", list(BROKEN_KUBECONFIGS))
def test_a_broken_kubeconfig_is_one_line_naming_the_file_and_the_fix(
    case: str, projects: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write, expected = BROKEN_KUBECONFIGS[case]
    path = tmp_path / "kc"
    write(path)
    err = run_fails(capsys, ["run", "--config", str(projects), "--kubeconfig", str(path)])
    assert err == "salad-vk run: " + expected.format(path=path, dir=tmp_path)


# --- the projects file comes first --------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_a_broken_projects_file_is_reported_in_full_before_any_kubeconfig_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "k").write_text(KEY)
    path = tmp_path / "projects.yaml"
    path.write_text(
        "nodes:\n"
        "  - {name: a, organization: acme, project: team-a, apiKeyFile: k, pollIntervall: 1}\n"
        "  - {name: b, organization: Acme, project: team-b, apiKeyFile: k, providerTaint: off}\n"
    )

    assert main(["run", "--config", str(path), "--kubeconfig", "/nope/kc"]) == 1

    err = capsys.readouterr().err
    assert "Traceback" not in err and "kubeconfig" not in err
    assert err.splitlines() == [
        f"{path}:2: nodes[0].pollIntervall: unknown key 'pollIntervall' (did you mean"
        " 'pollInterval'?)",
        f"{path}:3: nodes[1].providerTaint: must be true or false, unquoted: no other value"
        " (yes, no, on, off, 0, 1, a quoted string) is a boolean in this file",
        f"{path}:3: nodes[1].organization: 'Acme' is not a SaladCloud name: 2-63 lowercase"
        " letters, digits or '-', starting with a letter and ending with a letter or digit",
        f"salad-vk run: 3 problems in {path}; nothing started (salad-vk check-config FILE"
        " checks a file)",
    ]


@pytest.mark.usefixtures("clean_env")
def test_a_missing_key_file_does_not_stop_run_from_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text(
        "nodes:\n  - {name: a, organization: acme, project: team-a, apiKeyFile: missing}\n"
    )
    # It gets past the projects file: what stops it is the kubeconfig.
    err = run_fails(capsys, ["run", "--config", str(path), "--kubeconfig", "/nope/kc"])
    assert "kubeconfig /nope/kc" in err


def test_bad_settings_name_the_flag(projects: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(projects), "--log-format", "yaml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("salad-vk run: command line: --log-format: must be 'text' or 'json'")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.mark.usefixtures("clean_env")
def test_a_metrics_address_in_use_says_so_and_names_the_flag(
    projects: Path, tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    kc = kubeconfig(tmp_path / "kc")
    argv = ["run", "--config", str(projects), "--kubeconfig", str(kc)]
    argv += ["--metrics-address", f"127.0.0.1:{busy_port}", "--log-level", "critical"]
    err = run_fails(capsys, argv)
    assert err == (
        f"salad-vk run: cannot listen on 127.0.0.1:{busy_port} (--metrics-address) for"
        " /metrics, /healthz and /readyz: Address already in use: choose another HOST:PORT"
    )


# --- the other commands --------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_demo_with_a_kubeconfig_that_is_not_there_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = run_fails(capsys, ["demo", "--kubeconfig", "/nope/kc"])
    assert err.startswith("salad-vk demo: kubeconfig /nope/kc (from --kubeconfig) does not exist")


def test_check_config_of_a_file_that_is_not_there(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "/nope/projects.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "/nope/projects.yaml: file does not exist",
        "check-config: 1 problem in /nope/projects.yaml",
    ]


def test_simulate_with_an_options_file_that_is_not_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = run_fails(capsys, ["simulate", "--config", "/nope/sim.yaml"])
    assert err.startswith("salad-vk simulate: ")
    assert "/nope/sim.yaml" in err


@pytest.mark.usefixtures("clean_env")
def test_drain_needs_names_or_all_but_not_both(
    projects: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["drain"], ["drain", "--all", "salad-cli-a"]):
        err = run_fails(capsys, [*argv, "--config", str(projects)])
        assert err == "salad-vk drain: name the nodes to drain, or give --all (not both)"


@pytest.mark.usefixtures("clean_env")
def test_drain_refuses_a_node_that_is_not_in_the_projects_file(
    projects: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_fails(capsys, ["drain", "--config", str(projects), "worker-1"])
    assert err == (
        f"salad-vk drain: worker-1: not in the projects file {projects} (its nodes:"
        " salad-cli-a); only salad-vk's own nodes are drained"
    )


@pytest.mark.usefixtures("clean_env")
def test_drain_without_a_projects_file_says_how_to_name_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = run_fails(capsys, ["drain", "--all"])
    assert err == "salad-vk drain: no projects file: use --config FILE or SALAD_VK_CONFIG"


@pytest.mark.usefixtures("clean_env")
def test_drain_with_a_kubeconfig_that_is_not_there(
    projects: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_fails(capsys, ["drain", "--all", "--config", str(projects), "--kubeconfig", "/no"])
    assert err.startswith("salad-vk drain: kubeconfig /no (from --kubeconfig) does not exist")


def test_an_unknown_log_level_is_refused_by_every_command_alike(
    capsys: pytest.CaptureFixture[str], projects: Path
) -> None:
    for argv in (["simulate"], ["drain", "--all", "--config", str(projects)]):
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--log-level", "loud"])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "'loud' is not a log level: choose from debug, info, warning, error, critical" in err


@pytest.mark.usefixtures("clean_env")
def test_a_certificate_authority_that_is_no_certificate_is_one_line(
    projects: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_certificate = tmp_path / "ca.crt"
    not_a_certificate.write_text("root:x:0:0:root:/root:/bin/sh\n")
    clusters: dict[str, dict[str, object]] = {
        "c": {"server": "https://127.0.0.1:1", "certificate-authority": "ca.crt"}
    }
    kc = kubeconfig(tmp_path / "kc", clusters=clusters)
    err = run_fails(capsys, ["run", "--config", str(projects), "--kubeconfig", str(kc)])
    assert err.startswith(f"salad-vk run: kubeconfig {kc} (from --kubeconfig)")
    assert err.endswith("fix certificate-authority, client-certificate and client-key")


@pytest.mark.usefixtures("clean_env")
def test_a_kubelet_address_in_use_says_so_and_names_the_flag(
    projects: Path,
    control_plane: ControlPlane,
    busy_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "--config", str(projects), "--kubeconfig", str(control_plane.kubeconfig)]
    argv += ["--metrics-address", "127.0.0.1:0", "--log-level", "critical"]
    argv += ["--kubelet-address", f"127.0.0.1:{busy_port}"]
    err = run_fails(capsys, argv)
    assert err.startswith(
        f"salad-vk run: cannot listen on 127.0.0.1:{busy_port} (--kubelet-address) for the"
        " kubelet API: Address already in use"
    )
