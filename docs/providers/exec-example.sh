#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Example program for gitgrant's exec provider (docs/providers/exec.md).
#
# gitgrant runs it once per call, without a shell, with one JSON request on
# stdin, for example
#   {"version":1,"op":"grant","provider":"wiki","role":"editor",
#    "target":"wiki-editors","principal":"alice","until":"2026-11-23T13:00:00Z"}
# and reads one JSON answer from stdout:
#   {"ok":true}                                      grant, revoke, check
#   {"ok":true,"members":[{"principal":"alice","until":""}]}   list
#   {"ok":false,"error":"...","not_found":true}      principal/role missing
#   {"ok":false,"error":"...","retryable":true}      target down, try later
#
# This example keeps its "target system" in files under $EXAMPLE_STATE_DIR:
# `users` lists the principals that exist, one per line, and members.json
# maps each target to its members. Replace those parts with calls to your
# system's API or CLI. Rules that carry over:
#   - grant of a member that exists and revoke of one that does not are
#     success ({"ok":true});
#   - treat every field as data: pass it as an argument (jq --arg, "$var"),
#     never through eval or into a string another program interprets;
#   - never print secrets: stderr ends up in gitgrant's error messages;
#   - the environment holds only PATH and the variables listed in `env:`.
set -euo pipefail

state=${EXAMPLE_STATE_DIR:?EXAMPLE_STATE_DIR is not set}
# One jq call splits the request into its fields, NUL-separated so that
# any character in a name survives.
mapfile -d '' -t f < <(jq -j '[.version, .op, .target, .principal, .until] | map((. // "" | tostring) + "\u0000") | add')
version=${f[0]} op=${f[1]} target=${f[2]} principal=${f[3]} until=${f[4]}

if [[ $version != 1 ]]; then
	jq -cn --arg v "$version" '{ok:false, error:("unsupported protocol version " + $v)}'
	exit 0
fi
if [[ ! -d $state ]]; then
	jq -cn --arg d "$state" '{ok:false, retryable:true, error:("cannot reach the target: " + $d + " does not exist")}'
	exit 0
fi

members=$state/members.json

# One call at a time changes the state; gitgrant may run several at once.
exec 9>"$state/lock"
flock 9
[[ -f $members ]] || echo '{}' >"$members"

update() { # update JQ-PROGRAM: rewrite members.json atomically
	jq --arg t "$target" --arg p "$principal" --arg u "$until" "$1" "$members" >"$members.tmp"
	mv "$members.tmp" "$members"
}

case $op in
check)
	echo '{"ok":true}'
	;;
list)
	jq -c --arg t "$target" '{ok:true, members: ((.[$t] // {}) | to_entries | map({principal: .key, until: .value}))}' "$members"
	;;
grant)
	if ! grep -Fxq -- "$principal" "$state/users"; then
		jq -cn --arg p "$principal" '{ok:false, not_found:true, error:("no such user: " + $p)}'
		exit 0
	fi
	update '.[$t][$p] = $u'
	echo '{"ok":true}'
	;;
revoke)
	update 'if .[$t] then .[$t] |= del(.[$p]) else . end'
	echo '{"ok":true}'
	;;
*)
	jq -cn --arg op "$op" '{ok:false, error:("unknown op " + $op)}'
	;;
esac
