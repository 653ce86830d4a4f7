"""Every problem names the file, the line, the key path and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from config import ConfigError, ConfigProblem, load_projects

from .conftest import KEY_A, ConfigDir

NODE = """\
nodes:
  - name: salad-team-a
    organization: acme
    project: team-a
    apiKeyFile: keys/a
"""
"""A valid file; cases append to it or edit it, so line numbers are easy to count."""


@dataclass(frozen=True)
class Case:
    text: str
    line: int | None
    key_path: str
    says: str
    environ: tuple[tuple[str, str], ...] = ()


CASES = {
    "unknown key, with a suggestion": Case(
        NODE + "    pollIntervall: 5\n", 6, "nodes[0].pollIntervall", "unknown key 'pollIntervall'"
    ),
    "unknown top-level key": Case(
        "saladApiURL: https://x.example\n" + NODE, 1, "saladApiURL", "did you mean 'saladApiUrl'?"
    ),
    "apiKey written in the file": Case(
        NODE + "    apiKey: not-really-a-key\n",
        6,
        "nodes[0].apiKey",
        "set apiKeyFile to its path, or in an environment variable",
    ),
    "apiKey in defaults": Case(
        "defaults:\n  apiKey: x\n" + NODE, 2, "defaults.apiKey", "never written in the projects"
    ),
    "organization breaks the SaladCloud name pattern": Case(
        NODE.replace("organization: acme", "organization: Acme_Corp"),
        3,
        "nodes[0].organization",
        "is not a SaladCloud name",
    ),
    "project breaks the SaladCloud name pattern": Case(
        NODE.replace("project: team-a", "project: team-"),
        4,
        "nodes[0].project",
        "is not a SaladCloud name",
    ),
    "project name too long": Case(
        NODE.replace("project: team-a", "project: " + "p" * 64),
        4,
        "nodes[0].project",
        "2-63 lowercase",
    ),
    "node name is not a DNS subdomain": Case(
        NODE.replace("name: salad-team-a", "name: Salad_Team"),
        2,
        "nodes[0].name",
        "DNS-1123 subdomain",
    ),
    "node name longer than 253": Case(
        NODE.replace("name: salad-team-a", "name: " + "a" * 254),
        2,
        "nodes[0].name",
        "longer than 253",
    ),
    "duplicate node name": Case(
        NODE + NODE.removeprefix("nodes:\n").replace("project: team-a", "project: team-b"),
        6,
        "nodes[1].name",
        "already used by nodes[0], line 2",
    ),
    "two nodes on one project": Case(
        NODE + NODE.removeprefix("nodes:\n").replace("name: salad-team-a", "name: other"),
        8,
        "nodes[1].project",
        "acme/team-a already has node 'salad-team-a'",
    ),
    "both apiKeyFile and apiKeyEnv": Case(
        NODE + "    apiKeyEnv: SALAD_KEY\n", 2, "nodes[0]", "only one of apiKeyFile and apiKeyEnv"
    ),
    "neither apiKeyFile nor apiKeyEnv": Case(
        NODE.replace("    apiKeyFile: keys/a\n", ""), 2, "nodes[0]", "set apiKeyFile or apiKeyEnv"
    ),
    "missing key file": Case(
        NODE.replace("keys/a", "keys/nope"), 5, "nodes[0].apiKeyFile", "does not exist"
    ),
    "empty key file": Case(
        NODE.replace("keys/a", "keys/empty"), 5, "nodes[0].apiKeyFile", "is empty"
    ),
    "key file is a directory": Case(
        NODE.replace("keys/a", "keys"), 5, "nodes[0].apiKeyFile", "is a directory"
    ),
    "key file of two lines": Case(
        NODE.replace("keys/a", "keys/two-lines"), 5, "nodes[0].apiKeyFile", "one line"
    ),
    "key file far too big": Case(
        NODE.replace("keys/a", "keys/big"), 5, "nodes[0].apiKeyFile", "larger than 4096 bytes"
    ),
    "key variable not set": Case(
        NODE.replace("apiKeyFile: keys/a", "apiKeyEnv: SALAD_KEY"),
        5,
        "nodes[0].apiKeyEnv",
        "environment variable SALAD_KEY is not set",
    ),
    "key variable empty": Case(
        NODE.replace("apiKeyFile: keys/a", "apiKeyEnv: SALAD_KEY"),
        5,
        "nodes[0].apiKeyEnv",
        "environment variable SALAD_KEY is empty",
        environ=(("SALAD_KEY", " \n"),),
    ),
    "apiKeyEnv that is not a variable name": Case(
        NODE.replace("apiKeyFile: keys/a", "apiKeyEnv: 'sk live 123'"),
        5,
        "nodes[0].apiKeyEnv",
        "must be the NAME of an environment variable",
    ),
    "providerTaint: off, which YAML 1.1 reads as false": Case(
        NODE + "    providerTaint: off\n",
        6,
        "nodes[0].providerTaint",
        "must be true or false, unquoted",
    ),
    "providerTaint: no": Case(
        NODE + "    providerTaint: no\n", 6, "nodes[0].providerTaint", "must be true or false"
    ),
    "providerTaint: 0": Case(
        NODE + "    providerTaint: 0\n", 6, "nodes[0].providerTaint", "must be true or false"
    ),
    "providerTaint quoted true": Case(
        NODE + '    providerTaint: "true"\n', 6, "nodes[0].providerTaint", "must be true or false"
    ),
    "providerTaint: yes in defaults": Case(
        "defaults:\n  providerTaint: yes\n" + NODE,
        2,
        "defaults.providerTaint",
        "must be true or false",
    ),
    "bad quantity": Case(
        NODE + "    capacity: {memory: 4TB}\n",
        6,
        "nodes[0].capacity.memory",
        "'4TB' is not a Kubernetes quantity",
    ),
    "negative quantity": Case(
        NODE + "    capacity:\n      cpu: '-1'\n", 7, "nodes[0].capacity.cpu", "is negative"
    ),
    "more pods than one list call shows": Case(
        NODE + "    capacity:\n      pods: 101\n", 7, "nodes[0].capacity.pods", "more than 100"
    ),
    "fractional pods": Case(
        NODE + "    capacity:\n      pods: 1500m\n", 7, "nodes[0].capacity.pods", "whole number"
    ),
    "bad resource name": Case(
        "defaults:\n  capacity: {'nvidia.com/': '1'}\n" + NODE,
        2,
        'defaults.capacity["nvidia.com/"]',
        "not a qualified name",
    ),
    "bad taint effect": Case(
        NODE + "    taints:\n      - key: example.com/x\n        effect: NoSchedul\n",
        8,
        "nodes[0].taints[0].effect",
        "must be 'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
    ),
    "taint without effect": Case(
        NODE + "    taints:\n      - key: example.com/x\n",
        7,
        "nodes[0].taints[0].effect",
        "required key is missing",
    ),
    "same taint twice": Case(
        NODE + "    taints:\n      - {key: a, effect: NoSchedule}\n"
        "      - {key: a, value: b, effect: NoSchedule}\n",
        8,
        "nodes[0].taints[1]",
        "taint a:NoSchedule is listed twice (also at [0])",
    ),
    "bad label value": Case(
        NODE + "    labels:\n      team: -ml-\n",
        7,
        "nodes[0].labels.team",
        "not a valid label value",
    ),
    "label value that YAML reads as a number": Case(
        NODE + "    labels:\n      tier: 1\n", 7, "nodes[0].labels.tier", "must be a string"
    ),
    "unknown country code": Case(
        NODE + "    defaultCountryCodes:\n      - us\n      - uk\n",
        8,
        "nodes[0].defaultCountryCodes[1]",
        "'uk' is not a country code SaladCloud accepts",
    ),
    "uppercase country code": Case(
        NODE + "    defaultCountryCodes: [US]\n",
        6,
        "nodes[0].defaultCountryCodes[0]",
        "use lowercase",
    ),
    "country code twice": Case(
        NODE + "    defaultCountryCodes:\n      - us\n      - us\n",
        8,
        "nodes[0].defaultCountryCodes[1]",
        "listed twice",
    ),
    "bad GPU class": Case(
        NODE + "    defaultGpuClasses: [x]\n",
        6,
        "nodes[0].defaultGpuClasses[0]",
        "neither a GPU class id",
    ),
    "bad priority": Case(
        NODE + "    defaultPriority: urgent\n",
        6,
        "nodes[0].defaultPriority",
        "must be 'high', 'medium', 'low' or 'batch'",
    ),
    "poll interval under a second": Case(
        NODE + "    pollInterval: 0.5\n",
        6,
        "nodes[0].pollInterval",
        "greater than or equal to 1",
    ),
    "rate limit share of zero": Case(
        NODE + "    rateLimitShare: 0\n", 6, "nodes[0].rateLimitShare", "greater than 0"
    ),
    "api rate limit below two a minute": Case(
        "apiRateLimit: 1\n" + NODE, 1, "apiRateLimit", "greater than or equal to 2"
    ),
    "api url that is not http": Case(
        "saladApiUrl: ftp://salad.example\n" + NODE, 1, "saladApiUrl", "not an http(s) URL"
    ),
    "api url in clear text": Case(
        "saladApiUrl: http://api.salad.com/api/public\n" + NODE,
        1,
        "saladApiUrl",
        "would send the API key in clear text: use https://",
    ),
    "a node's api url in clear text, to a private address": Case(
        NODE + "    saladApiUrl: http://10.0.0.5:8787/api/public\n",
        6,
        "nodes[0].saladApiUrl",
        "http:// is accepted only for a loopback host",
    ),
    "api url with credentials in it": Case(
        "saladApiUrl: https://me:hunter2@api.salad.com/api/public\n" + NODE,
        1,
        "saladApiUrl",
        "https://…@api.salad.com: a URL must not carry credentials",
    ),
    "api url with a port that is not one": Case(
        "saladApiUrl: https://api.salad.com:99999/api/public\n" + NODE,
        1,
        "saladApiUrl",
        "has a port that is not a number in 1..65535",
    ),
    "allowed namespace that is not a namespace name": Case(
        NODE + "    allowedNamespaces: [team-a, Team_B]\n",
        6,
        "nodes[0].allowedNamespaces[1]",
        "'Team_B' is not a DNS-1123 label",
    ),
    "allowed namespace longer than 63": Case(
        "defaults:\n  allowedNamespaces:\n    - " + "n" * 64 + "\n" + NODE,
        3,
        "defaults.allowedNamespaces[0]",
        "longer than 63 characters",
    ),
    "allowed namespace twice": Case(
        NODE + "    allowedNamespaces:\n      - ml\n      - ml\n",
        8,
        "nodes[0].allowedNamespaces[1]",
        "'ml' is listed twice (also at [0])",
    ),
    "no allowed namespace at all": Case(
        NODE + "    allowedNamespaces: []\n",
        6,
        "nodes[0].allowedNamespaces",
        "lists no namespace, which would refuse every pod",
    ),
    "allowed namespaces not a list": Case(
        NODE + "    allowedNamespaces: team-a\n",
        6,
        "nodes[0].allowedNamespaces",
        "must be a list",
    ),
    "namespace selector with an unknown operator": Case(
        NODE + "    namespaceSelector:\n      matchExpressions:\n"
        "        - {key: team, operator: Equals, values: [a]}\n",
        8,
        "nodes[0].namespaceSelector.matchExpressions[0].operator",
        "must be 'In', 'NotIn', 'Exists' or 'DoesNotExist'",
    ),
    "namespace selector In without values": Case(
        NODE + "    namespaceSelector:\n      matchExpressions:\n"
        "        - key: team\n          operator: In\n",
        8,
        "nodes[0].namespaceSelector.matchExpressions[0].values",
        "operator In needs a non-empty list of values",
    ),
    "namespace selector NotIn with an empty list": Case(
        NODE + "    namespaceSelector:\n      matchExpressions:\n"
        "        - {key: team, operator: NotIn, values: []}\n",
        8,
        "nodes[0].namespaceSelector.matchExpressions[0].values",
        "operator NotIn needs a non-empty list of values",
    ),
    "namespace selector Exists with values": Case(
        "defaults:\n  namespaceSelector:\n    matchExpressions:\n"
        "      - key: salad.com/tenant\n        operator: Exists\n        values: [x]\n" + NODE,
        6,
        "defaults.namespaceSelector.matchExpressions[0].values",
        "operator Exists takes no values",
    ),
    "namespace selector with a bad key": Case(
        NODE + "    namespaceSelector:\n      matchExpressions:\n"
        "        - {key: 'team/', operator: Exists}\n",
        8,
        "nodes[0].namespaceSelector.matchExpressions[0].key",
        "not a qualified name",
    ),
    "namespace selector with a bad label value": Case(
        NODE + "    namespaceSelector:\n      matchLabels:\n        team: -a-\n",
        8,
        "nodes[0].namespaceSelector.matchLabels.team",
        "not a valid label value",
    ),
    "namespace selector key misspelt": Case(
        NODE + "    namespaceSelector:\n      matchLabel: {team: a}\n",
        7,
        "nodes[0].namespaceSelector.matchLabel",
        "did you mean 'matchLabels'?",
    ),
    "nodes missing": Case("saladApiUrl: https://x.example\n", 1, "nodes", "required key"),
    "nodes not a list": Case("nodes: {name: a}\n", 1, "nodes", "must be a list"),
    "node not a mapping": Case("nodes:\n  - salad-team-a\n", 2, "nodes[0]", "must be a mapping"),
    "key written twice": Case(
        NODE + "    project: team-b\n",
        6,
        "nodes[0].project",
        "key written twice in one mapping (first at line 4)",
    ),
    "malformed YAML": Case(NODE + "    labels: {team: ml\n", 7, "", "invalid YAML"),
    "tab indentation": Case(NODE + "\tpollInterval: 5\n", 6, "", "invalid YAML"),
    "two documents": Case(NODE + "---\n" + NODE, 6, "", "expected a single document"),
    "top level is a list": Case("- a\n- b\n", 1, "", "top level must be a mapping"),
    "top level is a scalar": Case("hello\n", 1, "", "top level must be a mapping"),
    "empty file": Case("", None, "", "the file is empty"),
    "only comments": Case("# nothing yet\n", None, "", "the file is empty"),
}


@pytest.fixture
def bad_keys(config_dir: ConfigDir) -> ConfigDir:
    config_dir.key("empty", "\n")
    config_dir.key("two-lines", "first\nsecond\n")
    config_dir.key("big", "k" * 5000)
    return config_dir


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_bad_input_is_one_problem_naming_file_line_and_key_path(
    bad_keys: ConfigDir, case: Case
) -> None:
    path = bad_keys.write(case.text)

    with pytest.raises(ConfigError) as raised:
        load_projects(path, dict(case.environ))

    (problem,) = raised.value.problems
    assert (problem.file, problem.line, problem.key_path) == (str(path), case.line, case.key_path)
    assert case.says in problem.message
    where = str(path) if case.line is None else f"{path}:{case.line}"
    prefix = f"{where}: {case.key_path}: " if case.key_path else f"{where}: "
    assert str(raised.value) == prefix + problem.message


def test_problems_are_collected_in_one_pass_and_listed_by_line(config_dir: ConfigDir) -> None:
    path = config_dir.write(
        """
        apiRateLimit: -1
        nodes:
          - name: a
            organization: acme
            project: team-a
            apiKeyFile: keys/missing
          - name: b
            organization: Acme
            project: team-b
            apiKeyEnv: KEY_B
            apiKeyFile: keys/a
          - name: a
            organization: acme
            project: team-c
            apiKeyEnv: UNSET
        """
    )

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {})

    assert [(p.line, p.key_path) for p in raised.value.problems] == [
        (1, "apiRateLimit"),
        (6, "nodes[0].apiKeyFile"),
        (7, "nodes[1]"),
        (8, "nodes[1].organization"),
        (12, "nodes[2].name"),
        (15, "nodes[2].apiKeyEnv"),
    ]
    assert str(raised.value).count("\n") == 5  # one line per problem


def test_a_missing_key_file_and_a_bad_value_of_the_same_node_come_out_together(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(
        """
        nodes:
          - name: a
            organization: acme
            project: team-a
            apiKeyFile: keys/missing
            pollInterval: 0
        """
    )

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {})

    assert [(p.line, p.key_path) for p in raised.value.problems] == [
        (5, "nodes[0].apiKeyFile"),
        (6, "nodes[0].pollInterval"),
    ]


def test_a_missing_projects_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {})

    assert raised.value.problems == (ConfigProblem(str(path), None, "", "file does not exist"),)


def test_a_file_that_is_not_utf8_names_the_line(config_dir: ConfigDir) -> None:
    path = config_dir.root / "projects.yaml"
    path.write_bytes(NODE.encode() + b"    labels: {team: \xff}\n")

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {})

    (problem,) = raised.value.problems
    assert (problem.line, problem.key_path) == (6, "")
    assert "not UTF-8" in problem.message


def test_an_unreadable_key_file_says_so(config_dir: ConfigDir) -> None:
    path = config_dir.write(NODE)
    # A symlink loop cannot be read even by root, whom file permissions would not stop.
    key = config_dir.root / "keys" / "a"
    key.unlink()
    key.symlink_to(key)

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {})

    (problem,) = raised.value.problems
    assert problem.key_path == "nodes[0].apiKeyFile"
    assert "cannot read key file" in problem.message


SECRET = "sk-live-7f3a9c0e1b2d4f6a8c0e2b4d6f8a0c2e"


@pytest.mark.parametrize(
    ("text", "key_file"),
    [
        pytest.param(NODE + f"    apiKey: {SECRET}\n", None, id="apiKey in the file"),
        pytest.param(
            NODE.replace("apiKeyFile: keys/a", f"apiKeyEnv: '{SECRET} '"),
            None,
            id="key pasted into apiKeyEnv",
        ),
        pytest.param(NODE, f"{SECRET}\n{SECRET}\n", id="key file of two lines"),
        pytest.param(NODE, f"{SECRET} é", id="key file with non-ASCII bytes"),
        pytest.param(NODE, SECRET * 200, id="key file too big"),
    ],
)
def test_no_problem_quotes_a_key(config_dir: ConfigDir, text: str, key_file: str | None) -> None:
    path = config_dir.write(text)
    if key_file is not None:
        config_dir.key("a", key_file)

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {})

    assert SECRET not in str(raised.value)
    assert SECRET not in repr(raised.value)
    assert KEY_A not in str(raised.value)


def test_a_bad_key_in_the_environment_is_not_quoted(config_dir: ConfigDir) -> None:
    path = config_dir.write(NODE.replace("apiKeyFile: keys/a", "apiKeyEnv: SALAD_KEY"))

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {"SALAD_KEY": f"{SECRET}\n{SECRET}"})

    assert "environment variable SALAD_KEY holds whitespace" in str(raised.value)
    assert SECRET not in str(raised.value)
