{{/* The chart's name, or nameOverride. */}}
{{- define "gitgrant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: release-chart, or the release alone when it already names the chart. */}}
{{- define "gitgrant.fullname" -}}
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

{{- define "gitgrant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gitgrant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gitgrant.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gitgrant.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gitgrant
{{- end -}}

{{- define "gitgrant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gitgrant.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gitgrant.leaseName" -}}
{{- default (include "gitgrant.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* owner/name of the access repository on GitHub. */}}
{{- define "gitgrant.githubRepository" -}}
{{- if .Values.repository.github -}}
{{- .Values.repository.github -}}
{{- else -}}
{{- $re := "^(?:https://github\\.com/|git@github\\.com:|ssh://git@github\\.com/)([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\\.git)?/?$" -}}
{{- if regexMatch $re .Values.repository.url -}}
{{- regexReplaceAll $re .Values.repository.url "${1}" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Refuse settings that would run two reconcilers side by side. */}}
{{- define "gitgrant.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled: two reconcilers must never run side by side" -}}
{{- end -}}
{{- if not .Values.repository.url -}}
{{- fail "repository.url is required: the access repository gitgrant serves (https://github.com/OWNER/NAME.git)" -}}
{{- end -}}
{{- end -}}
