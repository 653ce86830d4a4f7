{{/* Names, labels and the projects file, shared by every template. */}}

{{- define "salad-vk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object names: the release name, with the chart name unless it already holds it. */}}
{{- define "salad-vk.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects carry the namespace too: two releases of the same name in
two namespaces must not share (and fight over) one ClusterRole or FlowSchema. */}}
{{- define "salad-vk.clusterName" -}}
{{- list .Release.Namespace (include "salad-vk.fullname" .) | compact | join "-" | trunc 240 | trimSuffix "-" -}}
{{- end -}}

{{- define "salad-vk.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "salad-vk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "salad-vk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "salad-vk.labels" -}}
helm.sh/chart: {{ include "salad-vk.chart" . }}
{{ include "salad-vk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "salad-vk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "salad-vk.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "salad-vk.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the projects-file ConfigMap and the API-key Secrets are mounted. */}}
{{- define "salad-vk.configDir" -}}/etc/salad-vk/config{{- end -}}
{{- define "salad-vk.keysDir" -}}/etc/salad-vk/keys{{- end -}}

{{/* The distinct Secret names the nodes take their API keys from, as a JSON list in
first-use order. Each is mounted whole, once: a node added later with another key of
an already mounted Secret then needs no new volume, so no pod restart. */}}
{{- define "salad-vk.keySecrets" -}}
{{- $names := list -}}
{{- range .Values.nodes -}}
{{- $names = append $names .apiKeySecret.name -}}
{{- end -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{/* A volume name (a DNS label) for a Secret name (a DNS subdomain, maybe longer). */}}
{{- define "salad-vk.keyVolume" -}}
{{- printf "apikeys-%s" (sha256sum . | trunc 12) -}}
{{- end -}}

{{/* Refuse values the process would refuse at start-up, so `helm install` says so
instead of a crash-looping pod. */}}
{{- define "salad-vk.checks" -}}
{{- $names := dict -}}
{{- $projects := dict -}}
{{- range $index, $node := .Values.nodes -}}
{{- if hasKey $names $node.name -}}
{{- fail (printf "nodes[%d].name: node name %q is used twice (also nodes[%v])" $index $node.name (get $names $node.name)) -}}
{{- end -}}
{{- $_ := set $names $node.name $index -}}
{{- $pair := printf "%s/%s" $node.organization $node.project -}}
{{- if hasKey $projects $pair -}}
{{- fail (printf "nodes[%d].project: project %s already has a node (nodes[%v]); two nodes on one project would fight over its container groups" $index $pair (get $projects $pair)) -}}
{{- end -}}
{{- $_ := set $projects $pair $index -}}
{{- end -}}
{{- $scope := include "salad-vk.referenceScope" . | fromJson -}}
{{- if and .Values.rbac.create (not .Values.rbac.clusterWideSecretAccess) $scope.open -}}
{{- $index := int (first $scope.open) -}}
{{- fail (printf "nodes[%d] (%s) has no allowedNamespaces, so it serves pods of every namespace and salad-vk would need to read Secrets and ConfigMaps in all of them: list the namespaces it serves in nodes[%d].allowedNamespaces or nodeDefaults.allowedNamespaces (the chart then grants reads in just those), or set rbac.clusterWideSecretAccess: true to grant get on every Secret and ConfigMap of the cluster" $index (index .Values.nodes $index).name $index) -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled .Values.networkPolicy.egress.enabled (not .Values.networkPolicy.egress.apiServer) -}}
{{- fail "networkPolicy.egress.apiServer: list the Kubernetes API server's addresses ({cidr, port}: the endpoints of the `kubernetes` Service, as `kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes` shows them); with egress restricted and none listed, salad-vk could not reach the API server" -}}
{{- end -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownGraceSeconds) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be larger than shutdownGraceSeconds (%v): the kubelet would kill the process while SaladCloud calls are still finishing" .Values.terminationGracePeriodSeconds .Values.shutdownGraceSeconds) -}}
{{- end -}}
{{- end -}}

{{/* The projects file (docs/configuration.md): the nodes as given, each with the
path where its Secret's key is mounted in place of `apiKeySecret`. Scalars are
written as JSON, which YAML reads back unchanged (a node named "123" stays a string). */}}
{{- define "salad-vk.projectsFile" -}}
saladApiUrl: {{ .Values.saladApiUrl | toJson }}
apiRateLimit: {{ int .Values.apiRateLimit }}
{{- with .Values.nodeDefaults }}
defaults:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if not .Values.nodes }}
nodes: []
{{- else }}
nodes:
{{- range .Values.nodes }}
  - name: {{ .name | toJson }}
    organization: {{ .organization | toJson }}
    project: {{ .project | toJson }}
    apiKeyFile: {{ printf "%s/%s/%s" (include "salad-vk.keysDir" $) .apiKeySecret.name .apiKeySecret.key | toJson }}
    {{- with omit . "name" "organization" "project" "apiKeySecret" }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The release's identity, written by the process as the label node-restriction.kubernetes.io/salad-vk
on every Node and node Lease it serves (--managed-by), and checked by the admission
policy: the namespace and full name, hashed down to a label value when too long. */}}
{{- define "salad-vk.managedBy" -}}
{{- $id := printf "%s.%s" .Release.Namespace (include "salad-vk.fullname" .) -}}
{{- if le (len $id) 63 -}}
{{- $id -}}
{{- else -}}
{{- printf "%s-%s" ($id | trunc 52 | trimSuffix "-" | trimSuffix ".") (sha256sum $id | trunc 10) -}}
{{- end -}}
{{- end -}}

{{/* The node names the admission policies treat as this release's, as a JSON list:
the nodes in the values, the Nodes labelled with this release's identity that exist
when Helm renders (a node removed from `nodes` keeps its pods writable while it is
drained; `helm template` cannot look, and gets none), and
admissionPolicy.extraNodeNames. */}}
{{- define "salad-vk.policyNodes" -}}
{{- $names := list -}}
{{- range .Values.nodes -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- $id := include "salad-vk.managedBy" . -}}
{{- range (dig "items" list (lookup "v1" "Node" "" "")) -}}
{{- if eq (dig "metadata" "labels" "node-restriction.kubernetes.io/salad-vk" "" .) $id -}}
{{- $names = append $names .metadata.name -}}
{{- end -}}
{{- end -}}
{{- range .Values.admissionPolicy.extraNodeNames -}}
{{- $names = append $names . -}}
{{- end -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{/* Where pods' Secret and ConfigMap references are read, as JSON:
`{"namespaces": [...], "open": [indexes of nodes with no allowedNamespaces],
"selector": whether some node has a namespaceSelector}`. A node's own
allowedNamespaces (or namespaceSelector) replaces nodeDefaults'. */}}
{{- define "salad-vk.referenceScope" -}}
{{- $namespaces := list -}}
{{- $open := list -}}
{{- $selector := false -}}
{{- range $index, $node := .Values.nodes -}}
{{- $allowed := $.Values.nodeDefaults.allowedNamespaces -}}
{{- if hasKey $node "allowedNamespaces" -}}
{{- $allowed = $node.allowedNamespaces -}}
{{- end -}}
{{- if $allowed -}}
{{- $namespaces = concat $namespaces $allowed -}}
{{- else -}}
{{- $open = append $open $index -}}
{{- end -}}
{{- if or (hasKey $node "namespaceSelector") (hasKey $.Values.nodeDefaults "namespaceSelector") -}}
{{- $selector = true -}}
{{- end -}}
{{- end -}}
{{- dict "namespaces" ($namespaces | uniq) "open" $open "selector" $selector | toJson -}}
{{- end -}}

{{/* Where the kubelet API's serving certificate Secret is mounted. */}}
{{- define "salad-vk.kubeletTlsDir" -}}
/etc/salad-vk/kubelet-tls
{{- end -}}
