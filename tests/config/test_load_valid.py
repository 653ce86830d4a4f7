"""A valid projects file resolves to final per-node settings."""

from __future__ import annotations

import pytest

from config import (
    DEFAULT_CAPACITY,
    DEFAULT_SALAD_API_URL,
    PROVIDER_TAINT,
    ApiKeySource,
    Taint,
    load_projects,
)

from .conftest import KEY_A, KEY_B, ConfigDir


def test_keys_come_from_the_key_file_and_the_environment(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - name: salad-team-a
            organization: acme
            project: team-a
            apiKeyFile: keys/a
          - name: salad-team-b
            organization: acme
            project: team-b
            apiKeyEnv: SALAD_KEY_TEAM_B
        """
    )

    config = load_projects(path, {"SALAD_KEY_TEAM_B": KEY_B})

    a, b = config.nodes
    assert a.api_key.get_secret_value() == KEY_A  # trailing newline stripped
    assert a.api_key_source == ApiKeySource(
        kind="file", location=str(config_dir.root / "keys" / "a"), size=len(KEY_A)
    )
    assert b.api_key.get_secret_value() == KEY_B
    assert b.api_key_source == ApiKeySource(
        kind="env", location="SALAD_KEY_TEAM_B", size=len(KEY_B)
    )


def test_a_minimal_node_gets_the_documented_defaults(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - name: salad-team-a
            organization: acme
            project: team-a
            apiKeyFile: keys/a
        """
    )

    (node,) = load_projects(path, {}).nodes

    assert (node.name, node.organization, node.project) == ("salad-team-a", "acme", "team-a")
    assert node.salad_api_url == DEFAULT_SALAD_API_URL
    assert node.api_rate_limit == 240
    assert node.rate_limit_share == 1.0
    assert node.poll_interval == 10.0
    assert node.labels == {}
    assert node.taints == (PROVIDER_TAINT,)
    assert node.capacity == dict(DEFAULT_CAPACITY)
    assert node.capacity["pods"] == "100"
    assert node.default_country_codes == ()
    assert node.default_gpu_classes == ()
    assert node.default_priority is None


def test_defaults_merge_into_every_node_and_the_node_wins(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        saladApiUrl: https://salad.example/api/public/
        apiRateLimit: 600
        defaults:
          labels: {team: ml, tier: gpu}
          taints: [{key: example.com/dedicated, value: ml, effect: NoSchedule}]
          capacity: {cpu: "2000", memory: 8Ti}
          rateLimitShare: 2
          pollInterval: 30
          defaultCountryCodes: [us, ca]
          defaultGpuClasses: [rtx4090]
          defaultPriority: batch
        nodes:
          - name: inherits
            organization: acme
            project: team-a
            apiKeyFile: keys/a
          - name: overrides
            organization: acme
            project: team-b
            apiKeyFile: keys/a
            saladApiUrl: http://localhost:8000/api/public
            labels: {tier: cpu, extra: "yes"}
            taints: []
            providerTaint: false
            capacity: {memory: 1Ti, pods: 20}
            rateLimitShare: 0.5
            pollInterval: 2.5
            defaultCountryCodes: []
            defaultGpuClasses: [a5d5b9e0-7b38-4c1a-9a52-2d9d2b8c0f11]
            defaultPriority: high
        """
    )

    config = load_projects(path, {})
    inherits, overrides = config.nodes

    assert config.salad_api_url == "https://salad.example/api/public"  # trailing / dropped
    assert inherits.salad_api_url == "https://salad.example/api/public"
    assert inherits.api_rate_limit == overrides.api_rate_limit == 600
    assert inherits.labels == {"team": "ml", "tier": "gpu"}
    assert inherits.taints == (
        PROVIDER_TAINT,
        Taint(key="example.com/dedicated", value="ml", effect="NoSchedule"),
    )
    assert inherits.capacity == {**DEFAULT_CAPACITY, "cpu": "2000", "memory": "8Ti"}
    assert (inherits.rate_limit_share, inherits.poll_interval) == (2.0, 30.0)
    assert inherits.default_country_codes == ("us", "ca")
    assert inherits.default_gpu_classes == ("rtx4090",)
    assert inherits.default_priority == "batch"

    assert overrides.salad_api_url == "http://localhost:8000/api/public"
    # Mappings merge key by key ...
    assert overrides.labels == {"team": "ml", "tier": "cpu", "extra": "yes"}
    assert overrides.capacity == {
        **DEFAULT_CAPACITY,
        "cpu": "2000",
        "memory": "1Ti",
        "pods": "20",
    }
    # ... lists and single values replace.
    assert overrides.taints == ()
    assert (overrides.rate_limit_share, overrides.poll_interval) == (0.5, 2.5)
    assert overrides.default_country_codes == ()
    assert overrides.default_gpu_classes == ("a5d5b9e0-7b38-4c1a-9a52-2d9d2b8c0f11",)
    assert overrides.default_priority == "high"


def test_configured_taints_add_to_the_provider_taint(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - name: salad-team-a
            organization: acme
            project: team-a
            apiKeyFile: keys/a
            taints:
              - {key: example.com/gpu, effect: NoExecute}
        """
    )

    (node,) = load_projects(path, {}).nodes

    assert node.taints == (PROVIDER_TAINT, Taint(key="example.com/gpu", effect="NoExecute"))


def test_a_taint_with_the_provider_key_and_effect_replaces_the_provider_taint(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(
        """
        defaults:
          taints: [{key: virtual-kubelet.io/provider, value: salad, effect: NoSchedule}]
        nodes:
          - name: salad-team-a
            organization: acme
            project: team-a
            apiKeyFile: keys/a
        """
    )

    (node,) = load_projects(path, {}).nodes

    assert node.taints == (
        Taint(key="virtual-kubelet.io/provider", value="salad", effect="NoSchedule"),
    )


def test_provider_taint_can_be_turned_off_in_defaults_and_back_on_per_node(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(
        """
        defaults: {providerTaint: false}
        nodes:
          - {name: off, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: on, organization: acme, project: team-b, apiKeyFile: keys/a,
             providerTaint: true}
        """
    )

    off, on = load_projects(path, {}).nodes

    assert off.taints == ()
    assert on.taints == (PROVIDER_TAINT,)


def test_only_true_and_false_are_booleans_so_norway_stays_a_country(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(
        """
        nodes:
          - name: salad-team-a
            organization: acme
            project: team-a
            apiKeyFile: keys/a
            defaultCountryCodes: [no, se, fi]
            labels: {enabled: on}
        """
    )

    (node,) = load_projects(path, {}).nodes

    assert node.default_country_codes == ("no", "se", "fi")
    assert node.labels == {"enabled": "on"}


def test_capacity_accepts_numbers_and_keeps_quantities_as_written(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(
        """
        nodes:
          - name: salad-team-a
            organization: acme
            project: team-a
            apiKeyFile: keys/a
            capacity: {pods: 50, cpu: 0.5, memory: 512Mi, example.com/fpga: 1e3}
        """
    )

    (node,) = load_projects(path, {}).nodes

    assert node.capacity["pods"] == "50"
    assert node.capacity["cpu"] == "0.5"
    assert node.capacity["memory"] == "512Mi"
    assert node.capacity["example.com/fpga"] == "1e3"


def test_relative_key_files_are_found_next_to_the_projects_file(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: b, organization: acme, project: team-b,
             apiKeyFile: KEYDIR/b}
        """.replace("KEYDIR", str(config_dir.root / "keys"))
    )
    config_dir.key("b", f"  {KEY_B}\r\n")

    a, b = load_projects(path, {}).nodes

    assert a.api_key.get_secret_value() == KEY_A
    assert b.api_key.get_secret_value() == KEY_B  # surrounding whitespace stripped


def test_an_empty_node_list_is_valid(config_dir: ConfigDir) -> None:
    path = config_dir.write("nodes: []\n")

    config = load_projects(path, {})

    assert config.nodes == ()
    assert config.watched_paths() == (path,)


def test_keys_never_appear_in_repr_or_str(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: b, organization: acme, project: team-b, apiKeyEnv: KEY_B}
        """
    )

    config = load_projects(path, {"KEY_B": KEY_B})

    for text in (repr(config), str(config), *(repr(n) for n in config.nodes)):
        assert KEY_A not in text
        assert KEY_B not in text


def test_nodes_sharing_a_key_are_grouped_by_its_digest(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: b, organization: acme, project: team-b, apiKeyEnv: KEY_B}
          - {name: c, organization: other, project: team-c, apiKeyEnv: KEY_A}
        """
    )

    config = load_projects(path, {"KEY_A": KEY_A, "KEY_B": KEY_B})

    groups = {digest: [n.name for n in nodes] for digest, nodes in config.key_groups().items()}
    assert sorted(groups.values()) == [["a", "c"], ["b"]]
    a, b, _ = config.nodes
    assert a.api_key_digest != b.api_key_digest
    assert KEY_A not in a.api_key_digest


def test_yaml_anchors_and_merge_keys_work(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - &first {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {<<: *first, name: b, project: team-b}
        """
    )

    a, b = load_projects(path, {}).nodes

    assert (a.name, a.project, b.name, b.project) == ("a", "team-a", "b", "team-b")
    assert b.organization == "acme"


def test_tenancy_limits_come_from_defaults_and_a_node_replaces_them_whole(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(
        """
        defaults:
          allowedNamespaces: [ml-jobs, ml-batch]
          namespaceSelector:
            matchLabels: {salad.com/tenant: ml}
        nodes:
          - name: inherits
            organization: acme
            project: team-a
            apiKeyFile: keys/a
          - name: overrides
            organization: acme
            project: team-b
            apiKeyFile: keys/a
            allowedNamespaces: [research]
            namespaceSelector:
              matchExpressions:
                - {key: salad.com/tier, operator: In, values: [gpu, cpu]}
                - {key: salad.com/frozen, operator: DoesNotExist}
        """
    )

    inherits, overrides = load_projects(path, {}).nodes

    assert inherits.allowed_namespaces == ("ml-jobs", "ml-batch")
    assert inherits.namespace_selector == {"matchLabels": {"salad.com/tenant": "ml"}}
    assert overrides.allowed_namespaces == ("research",)
    # A selector is one condition: the node's replaces the default, nothing merges.
    assert overrides.namespace_selector == {
        "matchExpressions": [
            {"key": "salad.com/tier", "operator": "In", "values": ["gpu", "cpu"]},
            {"key": "salad.com/frozen", "operator": "DoesNotExist"},
        ]
    }


def test_without_tenancy_limits_a_node_serves_every_namespace(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: b, organization: acme, project: team-b, apiKeyFile: keys/a,
             namespaceSelector: {}}
        """
    )

    a, b = load_projects(path, {}).nodes

    assert (a.allowed_namespaces, a.namespace_selector) == (None, None)
    # An empty selector matches every namespace, as it does in Kubernetes.
    assert (b.allowed_namespaces, b.namespace_selector) == (None, {})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787/api/public",
        "http://127.42.0.9/api/public",
        "http://localhost:8787/api/public",
        "http://LOCALHOST/api/public",
        "http://[::1]:8787/api/public",
        "https://10.0.0.5:8443/api/public",
    ],
)
def test_plain_http_is_accepted_for_loopback_only(config_dir: ConfigDir, url: str) -> None:
    path = config_dir.write(
        f"""
        saladApiUrl: {url}
        nodes:
          - {{name: a, organization: acme, project: team-a, apiKeyFile: keys/a}}
        """
    )

    assert load_projects(path, {}).salad_api_url == url
