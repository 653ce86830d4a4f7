{{/* CEL pieces of the pod admission policy (pod-policy.yaml). Each check yields the
node's own message for the problem, or '' when there is none; messages follow the
node's wording, and checks its order, so that the first problem found is the one the
node would report. */}}

{{/* Python's repr() of a CEL string expression, as the node quotes values in messages:
single quotes unless the value holds a single quote and no double quote; backslash,
newline, carriage return and tab escaped. */}}
{{- define "salad-vk.cel.repr" -}}
{{- $e := printf "(%s)" . -}}
{{- $escaped := printf `%s.replace('\\', '\\\\').replace('\n', '\\n').replace('\r', '\\r').replace('\t', '\\t')` $e -}}
{{- printf `(%s.contains("'") && !%s.contains('"') ? '"' + %s + '"' : "'" + %s.replace("'", "\\'") + "'")` $e $e $escaped $escaped -}}
{{- end -}}

{{/* Whether the string expression is a DNS-1123 subdomain (an object name). */}}
{{- define "salad-vk.cel.isSubdomain" -}}
{{- printf `(%s.size() <= 253 && %s.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))` . . -}}
{{- end -}}

{{/* The node's words for a Secret name that is not a name (nodes/translate/references.py). */}}
{{- define "salad-vk.cel.notSubdomain" -}}
{{- $repr := include "salad-vk.cel.repr" . -}}
{{- printf `(%s.size() > 253 ? %s + " is longer than 253 characters" : %s + " is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit") + "; a Secret is named, never addressed by a path"` . $repr $repr -}}
{{- end -}}

{{/* The field path the node names for annotation NAME. */}}
{{- define "salad-vk.cel.annotationField" -}}
{{- printf `"metadata.annotations['%s']: "` . -}}
{{- end -}}

{{/* The annotation value, present or not (a CEL expression). */}}
{{- define "salad-vk.cel.annotation" -}}
{{- printf `variables.a['%s']` . -}}
{{- end -}}

{{/* A boolean annotation (`true` or `false`, any case): the node's _boolean. */}}
{{- define "salad-vk.cel.boolean" -}}
{{- $value := include "salad-vk.cel.annotation" . -}}
{{- printf `'%s' in variables.a && !(%s.trim().lowerAscii() in ['true', 'false']) ? %s + %s + " is neither true nor false" : ''` . $value (include "salad-vk.cel.annotationField" .) (include "salad-vk.cel.repr" $value) -}}
{{- end -}}

{{/* A port number (1..65535) written as digits: the node's str.isdigit() and range. */}}
{{- define "salad-vk.cel.isPort" -}}
{{- printf `(%s.matches('^0*[0-9]{1,5}$') && int(%s) >= 1 && int(%s) <= 65535)` . . . -}}
{{- end -}}

{{/* A whole number in 1..MAX, for the networking timeouts: the node's _bounded. */}}
{{- define "salad-vk.cel.bounded" -}}
{{- $name := index . 0 -}}
{{- $max := index . 1 -}}
{{- $value := printf "%s.trim()" (include "salad-vk.cel.annotation" $name) -}}
{{- printf `'%s' in variables.a && !(%s.matches('^0*[0-9]{1,%d}$') && int(%s) >= 1 && int(%s) <= %d) ? %s + %s + " is not a whole number in 1..%d" : ''` $name $value (len (toString $max)) $value $value (int $max) (include "salad-vk.cel.annotationField" $name) (include "salad-vk.cel.repr" (include "salad-vk.cel.annotation" $name)) (int $max) -}}
{{- end -}}

{{/* The problem with one logging setting of a provider, or ''. Context: list of
(provider word, setting, value maximum). A setting the logging Secret may hold is left
to the node when a Secret is named: the policy cannot read it. */}}
{{- define "salad-vk.cel.loggingSetting" -}}
{{- $provider := index . 0 -}}
{{- $setting := index . 1 -}}
{{- $max := int (index . 2) -}}
{{- $name := printf "salad.com/logging-%s-%s" $provider $setting.suffix -}}
{{- $field := include "salad-vk.cel.annotationField" $name -}}
{{- $raw := include "salad-vk.cel.annotation" $name -}}
{{- $value := printf "%s.trim()" $raw -}}
{{- $parse := "''" -}}
{{- if eq $setting.kind "text" -}}
{{- $parse = printf `%s == '' ? %s + "the value is empty; SaladCloud requires a value" : %s.size() > %d ? %s + "the value is " + string(%s.size()) + " characters long; SaladCloud accepts at most %d" : (%s.contains('\n') || %s.contains('\r') || %s.contains('\u2028') || %s.contains('\u2029')) ? %s + "the value spans several lines; SaladCloud accepts only single-line values" : ''` $value $field $value $max $field $value $max $value $value $value $value $field -}}
{{- else if eq $setting.kind "port" -}}
{{- $parse = printf `!%s ? %s + %s + " is not a port number (1..65535)" : ''` (include "salad-vk.cel.isPort" $value) $field (include "salad-vk.cel.repr" $value) -}}
{{- else if eq $setting.kind "choice" -}}
{{- $parse = printf `!(%s.lowerAscii() in %s) ? %s + %s + " is not one of %s" : ''` $value (toJson $setting.choices) $field (include "salad-vk.cel.repr" $raw) (join ", " $setting.choices) -}}
{{- else if eq $setting.kind "tags" -}}
{{- $bad := `(e.trim() != '' && (!e.contains(':') ? true : (e.trim().substring(0, e.trim().indexOf(':')).trim() == '' || e.trim().substring(e.trim().indexOf(':') + 1).trim() == '')))` -}}
{{- $first := printf `%s.split(',').map(e, %s ? '1' : '0').join('').indexOf('1')` $raw $bad -}}
{{- $parse = printf `%s >= 0 ? %s + "tag " + string(%s + 1) + " is not of the form name:value" : ''` $first $field $first -}}
{{- end -}}
{{- $absent := "''" -}}
{{- if $setting.required -}}
{{- $hint := "" -}}
{{- if $setting.storedAs -}}
{{- $hint = printf " (or key %s of the Secret named by salad.com/logging-secret)" $setting.storedAs -}}
{{- end -}}
{{- $absent = printf `%s + "is required by the %s logging provider%s"` $field $provider $hint -}}
{{- end -}}
{{- if $setting.storedAs -}}
{{- $absent = printf `variables.loggingSecretNamed ? '' : %s` $absent -}}
{{- end -}}
{{- printf `('%s' in variables.a ? (%s) : (%s))` $name $parse $absent -}}
{{- end -}}

{{/* Whether a volume is the service-account token volume Kubernetes injects: the
node's volumes.is_service_account_token. A volume has exactly one source and a
projection exactly one kind, which the API server has checked. */}}
{{- define "salad-vk.cel.isTokenVolume" -}}
(v.name.startsWith('kube-api-access-') && has(v.projected) && has(v.projected.sources)
 && v.projected.sources.exists(s, has(s.serviceAccountToken))
 && v.projected.sources.all(s, has(s.serviceAccountToken)
   || (has(s.configMap) && has(s.configMap.name) && s.configMap.name in ['kube-root-ca.crt', 'openshift-service-ca.crt'])
   || (has(s.downwardAPI) && (!has(s.downwardAPI.items) || s.downwardAPI.items.all(i, has(i.fieldRef) && i.fieldRef.fieldPath == 'metadata.namespace')))))
{{- end -}}

{{/* Whether a volume is a memory emptyDir mounted (by the one container) at /dev/shm
only: shared memory, which the node accepts. */}}
{{- define "salad-vk.cel.isSharedMemory" -}}
(has(v.emptyDir) && has(v.emptyDir.medium) && v.emptyDir.medium == 'Memory'
 && variables.mounts.exists(m, m.name == v.name)
 && variables.mounts.filter(m, m.name == v.name).all(m, m.mountPath.matches('^/dev/shm/*$')))
{{- end -}}
