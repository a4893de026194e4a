#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs a released gitgrant binary: the archive for this OS and
# architecture, checked against the release's checksums.txt (SHA-256)
# before anything is extracted, then started once (`gitgrant version`
# must name the version asked for). action.yml runs it twice, `resolve`
# then `install`; by hand:
#
#   GITGRANT_VERSION=v1.2.3 bash scripts/install.sh install ~/.local/bin
#
#   resolve   decide what the action installs (see docs/install.md, "The
#             action"), and write mode, version, os, arch, asset, cache-dir
#             and cache-key as step outputs ($GITHUB_OUTPUT, else stdout)
#   install DIR
#             put the binary for $GITGRANT_VERSION (vX.Y.Z or latest) in DIR
#
# Environment:
#   GITGRANT_VERSION       vX.Y.Z, latest, source (resolve only) or empty
#   GITGRANT_CACHE_DIR     keep the archive here between runs; a kept
#                          archive is used only if it matches checksums.txt,
#                          which is fetched from the release every time
#   GITGRANT_RELEASES_URL  https://github.com/gitgrant/gitgrant/releases, or
#                          a mirror with the same layout (latest,
#                          download/<tag>/<file>)
#   GITGRANT_GIT_URL       https://github.com/gitgrant/gitgrant.git, whose tags
#                          say which release a commit is
#   RUNNER_OS, RUNNER_ARCH the platform as GitHub Actions names it (else uname)
#   ACTION_REF, ACTION_PATH, WORKSPACE, REPOSITORY
#                          resolve only: the action's ref and directory, the
#                          job's workspace and repository
set -euo pipefail

RELEASES_URL=${GITGRANT_RELEASES_URL:-https://github.com/gitgrant/gitgrant/releases}
GIT_URL=${GITGRANT_GIT_URL:-https://github.com/gitgrant/gitgrant.git}
OWN_REPOSITORY=gitgrant/gitgrant
release_tag='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'

die() {
	if [ "${GITHUB_ACTIONS:-}" = true ]; then
		echo "::error title=gitgrant install::$*" >&2
	else
		echo "gitgrant install: $*" >&2
	fi
	exit 1
}

say() {
	if [ "${GITHUB_ACTIONS:-}" = true ]; then
		echo "::notice title=gitgrant::$*" >&2
	else
		echo "gitgrant install: $*" >&2
	fi
}

# platform sets os, arch, ext and bin for this machine, in the names the
# release archives use (gitgrant_<os>_<arch>.<ext>).
platform() {
	local runner_os=${RUNNER_OS:-} runner_arch=${RUNNER_ARCH:-}
	[ -n "$runner_os" ] || runner_os=$(uname -s)
	[ -n "$runner_arch" ] || runner_arch=$(uname -m)
	case "$runner_os" in
	Linux | linux) os=linux ;;
	macOS | Darwin | darwin) os=darwin ;;
	Windows | windows | MINGW* | MSYS* | CYGWIN*) os=windows ;;
	*) die "no gitgrant release for the operating system '$runner_os' (releases exist for Linux, macOS and Windows; set version: source to build it)" ;;
	esac
	case "$runner_arch" in
	X64 | x86_64 | amd64) arch=amd64 ;;
	ARM64 | aarch64 | arm64) arch=arm64 ;;
	*) die "no gitgrant release for the architecture '$runner_arch' (releases exist for amd64 and arm64; set version: source to build it)" ;;
	esac
	ext=tar.gz bin=gitgrant
	if [ "$os" = windows ]; then
		ext=zip bin=gitgrant.exe
	fi
}

# fetch URL FILE downloads over HTTPS only (plain HTTP to this machine
# alone, for tests), following redirects to HTTPS only.
fetch() {
	local proto='=https'
	case "$1" in
	http://127.0.0.1[:/]* | http://localhost[:/]*) proto='=http,https' ;;
	esac
	curl --proto "$proto" --proto-redir '=https' -fsSL --retry 3 --retry-delay 1 \
		--connect-timeout 10 --max-time 300 -o "$2" "$1"
}

# latest_tag prints the tag of the release GitHub marks latest (never a
# draft or a pre-release): /releases/latest redirects to /releases/tag/<tag>.
latest_tag() {
	local proto='=https' location tag
	case "$RELEASES_URL" in
	http://127.0.0.1[:/]* | http://localhost[:/]*) proto='=http,https' ;;
	esac
	location=$(curl --proto "$proto" -fsS --retry 3 --retry-delay 1 --connect-timeout 10 --max-time 60 \
		-o /dev/null -w '%{redirect_url}' "$RELEASES_URL/latest") ||
		die "cannot ask $RELEASES_URL/latest which release is the latest"
	tag=${location##*/tag/}
	[[ "$location" == */tag/* && "$tag" =~ $release_tag ]] ||
		die "$RELEASES_URL/latest names no release (it sent '${location:-no redirect}'); set version: to a release such as v1.2.3"
	echo "$tag"
}

# tag_of_commit SHA prints the newest release tag on that commit, if any;
# a release wins over its candidates (v1.2.0 over v1.2.0-rc.1).
tag_of_commit() {
	local refs tags final
	refs=$(GIT_TERMINAL_PROMPT=0 git ls-remote --tags "$GIT_URL" 'v*') ||
		die "cannot list the tags of $GIT_URL to find which release commit $1 is; set version: to a release such as v1.2.3"
	tags=$(awk -v sha="$1" '$1 == sha { t = $2; sub("^refs/tags/", "", t); sub("\\^\\{\\}$", "", t); print t }' <<<"$refs" |
		grep -E "$release_tag" | sort -uV || true)
	final=$(grep -v -- - <<<"$tags" | tail -n 1 || true)
	echo "${final:-$(tail -n 1 <<<"$tags")}"
}

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | awk '{ print $1 }'
	else
		shasum -a 256 "$1" | awk '{ print $1 }'
	fi
}

output() {
	echo "$1=$2" >>"${GITHUB_OUTPUT:-/dev/stdout}"
}

same_dir() {
	[ -n "$1" ] && [ -n "$2" ] && [ -d "$1" ] && [ -d "$2" ] &&
		[ "$(cd "$1" && pwd -P)" = "$(cd "$2" && pwd -P)" ]
}

resolve() {
	local version=${GITGRANT_VERSION:-} ref=${ACTION_REF:-} mode=release
	local action_path=${ACTION_PATH:-}
	action_path=${action_path//\\//}
	# github.action_ref is not promised inside composite actions; the runner
	# keeps a remote action in _actions/<owner>/<repo>/<ref>.
	if [ -z "$ref" ] && [[ "$action_path" == */_actions/*/*/* ]]; then
		ref=${action_path##*/}
	fi
	case "$version" in
	source) mode=source ;;
	latest) version=$(latest_tag) ;;
	"")
		if [ "${REPOSITORY:-}" = "$OWN_REPOSITORY" ] || same_dir "${ACTION_PATH:-}" "${WORKSPACE:-}"; then
			mode=source
			echo "gitgrant install: building gitgrant from the action's own source: this is gitgrant's repository (set version: to install a release instead)" >&2
		elif [[ "$ref" =~ $release_tag ]]; then
			version=$ref
		elif [[ "$ref" =~ ^[0-9a-f]{40}$ ]]; then
			version=$(tag_of_commit "$ref")
			if [ -z "$version" ]; then
				version=$(latest_tag)
				say "the action's commit $ref is no release; installing the latest release, $version (pin a release's commit, set version:, or version: source to build this commit)"
			fi
		else
			version=$(latest_tag)
			say "the action's ref '${ref:-unknown}' is no release; installing the latest release, $version (pin a release's commit or set version:)"
		fi
		;;
	*)
		[[ "$version" =~ $release_tag ]] ||
			die "version: '$version' is not a release (vX.Y.Z), latest or source"
		;;
	esac
	output mode "$mode"
	if [ "$mode" = source ]; then
		output version source
		return
	fi
	platform
	local cache_root=${RUNNER_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}}
	output version "$version"
	output os "$os"
	output arch "$arch"
	output asset "gitgrant_${os}_${arch}.$ext"
	output cache-dir "$cache_root/gitgrant/$version/${os}_$arch"
	output cache-key "gitgrant-$version-${os}_$arch"
}

install() {
	local dir=${1:-} version=${GITGRANT_VERSION:-latest}
	[ -n "$dir" ] || die "usage: install.sh install DIR"
	if [ "$version" = latest ]; then
		version=$(latest_tag)
	fi
	[[ "$version" =~ $release_tag ]] || die "version '$version' is not a release (vX.Y.Z) or latest"
	platform
	local asset="gitgrant_${os}_${arch}.$ext" tmp want got archive
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: tmp is local
	trap "rm -rf '$tmp'" EXIT
	local base="$RELEASES_URL/download/$version"

	fetch "$base/checksums.txt" "$tmp/checksums.txt" ||
		die "cannot download $base/checksums.txt: is $version a gitgrant release?"
	want=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1 }' "$tmp/checksums.txt")
	[[ "$want" =~ ^[0-9a-f]{64}$ ]] ||
		die "checksums.txt of $version lists no single SHA-256 for $asset"

	local keep=${GITGRANT_CACHE_DIR:-$tmp}
	mkdir -p "$keep" "$dir"
	archive="$keep/$asset"
	if [ -f "$archive" ] && [ "$(sha256 "$archive")" = "$want" ]; then
		echo "gitgrant install: $asset $version from the cache, matches checksums.txt" >&2
	else
		if [ -f "$archive" ]; then
			say "the cached $asset does not match checksums.txt of $version; downloading it again"
		fi
		rm -f "$archive"
		fetch "$base/$asset" "$tmp/$asset.part" || die "cannot download $base/$asset"
		got=$(sha256 "$tmp/$asset.part")
		if [ "$got" != "$want" ]; then
			die "$asset of $version has SHA-256 $got, but checksums.txt says $want: refusing to install it"
		fi
		mv "$tmp/$asset.part" "$archive"
		echo "gitgrant install: $asset $version downloaded, matches checksums.txt" >&2
	fi

	# Only the binary leaves the archive, whatever else it holds.
	mkdir "$tmp/x"
	if [ "$ext" = zip ]; then
		command -v unzip >/dev/null 2>&1 || die "unzip is needed to unpack $asset"
		unzip -q "$archive" "$bin" -d "$tmp/x"
	else
		tar -xzf "$archive" -C "$tmp/x" "$bin"
	fi
	[ -f "$tmp/x/$bin" ] || die "$asset of $version holds no $bin"
	chmod 755 "$tmp/x/$bin"

	local said first
	said=$("$tmp/x/$bin" version) || die "$bin of $version does not start"
	first=${said%%$'\n'*}
	[ "$first" = "gitgrant $version" ] ||
		die "$bin of $version says '$first', not 'gitgrant $version': refusing to install it"
	mv -f "$tmp/x/$bin" "$dir/$bin"
	echo "gitgrant install: $dir/$bin: $first" >&2
}

case "${1:-}" in
resolve) resolve ;;
install) install "${2:-}" ;;
*) die "usage: install.sh resolve | install DIR" ;;
esac
