"""What the chart does about missing Secrets and about uninstalling."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import ConfigError, load_projects
from supervisor.cli import build_parser

from .chart import CHART, VALUE_SETS, Manifest, notes, of_kind, one, render
from .release import mounted_projects_file


def hook_job(values: dict[str, object]) -> Manifest:
    return one(render(values), "Job", "-drain")


def test_key_secrets_are_mounted_optional_so_one_missing_secret_starts_the_pod() -> None:
    objects = render(VALUE_SETS["five nodes"])
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    secrets = [v["secret"] for v in volumes if "secret" in v]
    assert len(secrets) == 5
    assert all(secret["optional"] is True for secret in secrets)


def test_the_process_loads_a_node_whose_secret_is_not_mounted_as_a_node_without_a_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text(mounted_projects_file(render(VALUE_SETS["one node"]), tmp_path))

    (loaded,) = load_projects(path, {}, allow_missing_keys=True).nodes

    assert loaded.api_key_missing is not None
    # check-config, without --allow-missing-keys, still calls it an error.
    with pytest.raises(ConfigError, match="does not exist"):
        load_projects(path, {})


def test_a_pre_delete_hook_job_drains_every_node_with_the_releases_identity_and_config() -> None:
    values = VALUE_SETS["five nodes"]
    objects = render(values)
    job = one(objects, "Job", "-drain")
    deployment = one(objects, "Deployment")

    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-delete"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 180 + 60
    pod = spec["template"]["spec"]
    supervisor_pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == supervisor_pod["serviceAccountName"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"] == supervisor_pod["securityContext"]
    (container,) = pod["containers"]
    assert container["image"] == supervisor_pod["containers"][0]["image"]
    assert container["securityContext"] == supervisor_pod["containers"][0]["securityContext"]
    # The same projects ConfigMap, and no key Secret: draining needs only node names.
    config_maps = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
    assert config_maps == [
        v["configMap"]["name"] for v in supervisor_pod["volumes"] if "configMap" in v
    ]
    assert not [v for v in pod["volumes"] if "secret" in v]

    args = build_parser().parse_args(container["args"])
    assert (args.command, args.all, args.nodes) == ("drain", True, [])
    assert str(args.config) == "/etc/salad-vk/config/projects.yaml"
    assert args.timeout_seconds == 180
    assert args.log_level == "debug"


def test_the_hook_pod_is_not_selected_by_the_metrics_service() -> None:
    objects = render(VALUE_SETS["one node"])
    selector = one(objects, "Service")["spec"]["selector"]
    labels = hook_job(VALUE_SETS["one node"])["spec"]["template"]["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in selector.items())


def test_the_drain_timeout_is_a_value_and_the_hook_can_be_turned_off() -> None:
    longer = {**VALUE_SETS["one node"], "uninstallDrain": {"timeoutSeconds": 600}}
    job = hook_job(longer)
    assert job["spec"]["activeDeadlineSeconds"] == 660
    assert "--timeout-seconds=600" in job["spec"]["template"]["spec"]["containers"][0]["args"]

    off = {**VALUE_SETS["one node"], "uninstallDrain": {"enabled": False}}
    assert of_kind(render(off), "Job") == []


def test_notes_say_what_helm_uninstall_does_either_way() -> None:
    on = " ".join(notes(VALUE_SETS["one node"]).split())
    assert "first drains every node (a pre-delete hook Job running `salad-vk drain --all`" in on
    assert "`helm uninstall --no-hooks` skips the drain" in on

    off = " ".join(notes({**VALUE_SETS["one node"], "uninstallDrain": {"enabled": False}}).split())
    assert "will NOT delete any SaladCloud container group" in off
    assert "keep running, and billed" in off


def test_values_yaml_turns_the_hook_on_by_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["uninstallDrain"] == {"enabled": True, "timeoutSeconds": 180}
