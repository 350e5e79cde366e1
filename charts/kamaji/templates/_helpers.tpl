{{/* The chart name, or nameOverride. */}}
{{- define "kamaji.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects: fullnameOverride, or <release>[-<chart>]. */}}
{{- define "kamaji.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kamaji.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kamaji.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller-manager
{{- end }}

{{- define "kamaji.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kamaji.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kamaji.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kamaji.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kamaji.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Names of the webhook objects, shared by the manager's flags and the objects. */}}
{{- define "kamaji.webhookServiceName" -}}
{{- printf "%s-webhook-service" (include "kamaji.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "kamaji.mutatingWebhookName" -}}
{{- printf "%s-mutating-webhook-configuration" (include "kamaji.fullname" .) }}
{{- end }}
{{- define "kamaji.validatingWebhookName" -}}
{{- printf "%s-validating-webhook-configuration" (include "kamaji.fullname" .) }}
{{- end }}
{{/* The Secret of the webhook serving certificate: written by the manager, or by cert-manager. */}}
{{- define "kamaji.webhookCertSecret" -}}
{{- if .Values.certManager.enabled }}
{{- printf "%s-webhook-server-cert" (include "kamaji.fullname" .) }}
{{- else }}
{{- printf "%s-webhook-cert" (include "kamaji.fullname" .) }}
{{- end }}
{{- end }}
{{- define "kamaji.certificateName" -}}
{{- printf "%s-serving-cert" (include "kamaji.fullname" .) }}
{{- end }}

{{/* Where the manager reads what it needs; /tmp is an emptyDir (read-only root filesystem). */}}
{{- define "kamaji.webhookCertDir" -}}/tmp/k8s-webhook-server/serving-certs{{- end }}
{{- define "kamaji.pluginsDir" -}}/opt/kamaji/plugins{{- end }}
{{- define "kamaji.installerDir" -}}/opt/kamaji/installer{{- end }}

{{/* The port of a bind address such as ":8080" or "0.0.0.0:8080"; "" when it is off ("0"). */}}
{{- define "kamaji.port" -}}
{{- if and . (ne (toString .) "0") }}
{{- $port := regexFind "[0-9]+$" (toString .) }}
{{- if not $port }}{{ fail (printf "bind address %q: want [host]:port" .) }}{{ end }}
{{- $port }}
{{- end }}
{{- end }}

{{/*
The manager pod's termination grace period: terminationGracePeriodSeconds, or, unset,
config.shutdown-delay (a Go duration such as 10s or 1m30s) rounded up plus 20 s: after the
delay the manager gives the wake connections it holds up to 10 s, and its controllers stop.
*/}}
{{- define "kamaji.terminationGracePeriod" -}}
{{- $raw := index .Values.config "shutdown-delay" | default "0" | toString }}
{{- if not (regexMatch "^(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$" $raw) }}
{{- fail (printf "config.shutdown-delay: %q is not a duration such as 10s or 1m30s" $raw) }}
{{- end }}
{{- $secs := 0.0 }}
{{- range regexFindAll "[0-9.]+(ns|us|µs|ms|s|m|h)" $raw -1 }}
{{- $n := regexFind "^[0-9.]+" . | float64 }}
{{- $unit := trimPrefix (regexFind "^[0-9.]+" .) . }}
{{- /* seconds per unit as a fraction, so that 3000ms is 3 s exactly */}}
{{- $per := get (dict "ns" (list 1 1000000000) "us" (list 1 1000000) "µs" (list 1 1000000) "ms" (list 1 1000) "s" (list 1 1) "m" (list 60 1) "h" (list 3600 1)) $unit }}
{{- $secs = addf $secs (divf (mulf $n (first $per)) (last $per)) }}
{{- end }}
{{- $delay := ceil $secs | int }}
{{- $grace := .Values.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $grace }}
{{- add $delay 20 }}
{{- else }}
{{- if not (or (kindIs "float64" $grace) (kindIs "int64" $grace) (kindIs "int" $grace)) }}
{{- fail (printf "terminationGracePeriodSeconds: %q is not a number of seconds" (toString $grace)) }}
{{- end }}
{{- if lt (int $grace) (add $delay 10) }}
{{- fail (printf "terminationGracePeriodSeconds: %v is less than config.shutdown-delay (%s) plus 10 s for the wake connections still open; raise it, or leave it unset for the delay plus 20 s" $grace $raw) }}
{{- end }}
{{- int $grace }}
{{- end }}
{{- end }}

{{/* imageVolume or initContainer, from pluginDelivery and the cluster's version. */}}
{{- define "kamaji.pluginDelivery" -}}
{{- $d := .Values.pluginDelivery }}
{{- if eq $d "auto" }}
{{- if semverCompare ">=1.36.0-0" .Capabilities.KubeVersion.Version }}imageVolume{{ else }}initContainer{{ end }}
{{- else if or (eq $d "imageVolume") (eq $d "initContainer") }}
{{- $d }}
{{- else }}
{{- fail (printf "pluginDelivery: %q is not auto, imageVolume or initContainer" $d) }}
{{- end }}
{{- end }}

{{/*
The enabled plugins, bundled then extra, each {name, kind, drivers|addons, image, sha256,
binary, args, env}, checked: as YAML under the key "plugins" (include returns a string).
*/}}
{{- define "kamaji.plugins" -}}
{{- $bundled := .Files.Get "files/bundled-plugins.yaml" | fromYaml }}
{{- $digests := .Files.Get "files/plugin-digests.yaml" | fromYaml | default dict }}
{{- $platform := printf "linux/%s" (required "arch: required (the nodes' CPU architecture, such as amd64)" .Values.arch) }}
{{- $out := list }}
{{- $names := dict }}
{{- range $name, $v := .Values.bundledPlugins }}
{{- $meta := get $bundled $name }}
{{- if not $meta }}{{ fail (printf "bundledPlugins.%s: not a plugin this chart ships (%s)" $name (keys $bundled | sortAlpha | join ", ")) }}{{ end }}
{{- if $v.enabled }}
{{- $image := printf "%s/%s:%s" $.Values.bundledPluginsRegistry $meta.imageName $meta.version }}
{{- $sha := "" }}
{{- if $v.image }}
{{- $image = $v.image }}
{{- $sha = required (printf "bundledPlugins.%s.sha256: required with bundledPlugins.%s.image (the sha256sum of %s in that image)" $name $name $meta.binary) $v.sha256 }}
{{- else if $v.sha256 }}
{{- $sha = $v.sha256 }}
{{- else }}
{{- $sha = get (get $digests (printf "%s:%s" $meta.imageName $meta.version) | default dict) $platform }}
{{- if and $sha (not (kindIs "string" $sha)) }}{{ fail (printf "files/plugin-digests.yaml: %s:%s %s: quote the digest (YAML reads it as a number)" $meta.imageName $meta.version $platform) }}{{ end }}
{{- if not $sha }}{{ fail (printf "bundledPlugins.%s: no sha256 recorded for %s:%s on %s in files/plugin-digests.yaml: run `make images chart-digests`, or set bundledPlugins.%s.sha256 (the sha256sum of %s in the image), or bundledPlugins.%s.enabled=false" $name $meta.imageName $meta.version $platform $name $meta.binary $name) }}{{ end }}
{{- end }}
{{- if not (kindIs "string" $sha) }}{{ fail (printf "bundledPlugins.%s.sha256: quote it (YAML reads %v as a number)" $name $sha) }}{{ end }}
{{- if not (regexMatch "^[0-9a-fA-F]{64}$" $sha) }}{{ fail (printf "bundledPlugins.%s.sha256: %q is not the 64 hex digits of a sha256" $name $sha) }}{{ end }}
{{- $args := $v.args | default list }}
{{- if $meta.kine }}
{{- /* The plugin's kine sidecar image follows config.kine-image; an --kine-image in args comes later, and wins. */ -}}
{{- $args = prepend $args (printf "--kine-image=%s" (index $.Values.config "kine-image")) }}
{{- end }}
{{- $p := dict "name" $name "kind" $meta.kind "image" $image "sha256" $sha "binary" $meta.binary "args" $args "env" ($v.env | default dict) }}
{{- if eq $meta.kind "datastore" }}{{ $_ := set $p "drivers" $meta.drivers }}{{ else }}{{ $_ := set $p "addons" $meta.addons }}{{ end }}
{{- $out = append $out $p }}
{{- $_ := set $names $name "bundledPlugins" }}
{{- end }}
{{- end }}
{{- range $i, $v := .Values.plugins }}
{{- $key := printf "plugins[%d]" $i }}
{{- $name := required (printf "%s.name: required" $key) $v.name }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) }}{{ fail (printf "%s.name: %q must be lower-case letters, digits and '-' (it names volumes and containers)" $key $name) }}{{ end }}
{{- if gt (len $name) 50 }}{{ fail (printf "%s.name: %q is longer than 50 characters" $key $name) }}{{ end }}
{{- if hasKey $names $name }}{{ fail (printf "%s.name: %q is already a plugin's name (%s)" $key $name (get $names $name)) }}{{ end }}
{{- $image := required (printf "%s.image: required (the plugin's image)" $key) $v.image }}
{{- $sha := required (printf "%s.sha256: required (the sha256sum of the plugin binary for %s)" $key $platform) $v.sha256 }}
{{- if not (kindIs "string" $sha) }}{{ fail (printf "%s.sha256: quote it (YAML reads %v as a number)" $key $sha) }}{{ end }}
{{- if not (regexMatch "^[0-9a-fA-F]{64}$" $sha) }}{{ fail (printf "%s.sha256: %q is not the 64 hex digits of a sha256" $key $sha) }}{{ end }}
{{- $p := dict "name" $name "kind" $v.kind "image" $image "sha256" $sha "binary" ($v.binary | default (printf "/usr/local/bin/kamaji-%s" $name)) "args" ($v.args | default list) "env" ($v.env | default dict) }}
{{- if not (isAbs $p.binary) }}{{ fail (printf "%s.binary: %q is not an absolute path in the image" $key $p.binary) }}{{ end }}
{{- if eq $v.kind "datastore" }}
{{- if not $v.drivers }}{{ fail (printf "%s.drivers: a datastore plugin lists the DataStore drivers it serves" $key) }}{{ end }}
{{- $_ := set $p "drivers" $v.drivers }}
{{- else if eq $v.kind "addon" }}
{{- if not $v.addons }}{{ fail (printf "%s.addons: an addon plugin lists the addons it serves" $key) }}{{ end }}
{{- $_ := set $p "addons" $v.addons }}
{{- else }}
{{- fail (printf "%s.kind: %q is not datastore or addon" $key ($v.kind | default "")) }}
{{- end }}
{{- $out = append $out $p }}
{{- $_ := set $names $name (printf "plugins[%d]" $i) }}
{{- end }}
{{- dict "plugins" $out | toYaml }}
{{- end }}
