#!/usr/bin/env bash
# Prints the directory of a Node.js LTS build (bin/node, include/node), fetching it first if it is
# not cached: the runtime Portico is built and tested for. .ci/run runs the suite on it, and
# `npm run bench:edge` measures the edge on it beside the machine's Node.
#
# The npm registry ships Node's own builds (binary and headers) as node-linux-<arch>; the newest one
# in the range is kept in a cache outside the clone and reused while it is the newest. Offline, the
# newest one cached is used. Messages go to stderr, the directory alone to stdout.
#
# Environment: CI_NODE_LTS_RANGE (default 24), CI_NODE_CACHE (default /var/cache/portico-ci, or
# ~/.cache/portico-ci when that cannot be written).
set -euo pipefail
shopt -s inherit_errexit

range=${CI_NODE_LTS_RANGE:-24}
cache=${CI_NODE_CACHE:-/var/cache/portico-ci}
if [[ -z ${CI_NODE_CACHE:-} ]] && ! mkdir -p "$cache" 2>/dev/null; then
  # Not root (a developer's bench run): a cache of one's own.
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/portico-ci
fi
mkdir -p "$cache"

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "no node-linux build for $(uname -m)" >&2; exit 1 ;;
esac
package=node-linux-$arch

# The newest version in the range; offline, the newest one cached.
version=$(npm view "$package@$range" version --json 2>/dev/null | tr -d '[]", ' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
if [[ -z $version ]]; then
  dir=$(ls -d "$cache/$package-$range".*/package 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n $dir ]] || { echo "cannot reach the npm registry for $package@$range, and none is cached in $cache" >&2; exit 1; }
  echo "npm registry unreachable: using the cached $dir" >&2
  echo "$dir"
  exit 0
fi
dir=$cache/$package-$version
if [[ ! -x $dir/package/bin/node ]]; then
  echo "fetching $package@$version into $cache" >&2
  # npm pack checks the tarball against the registry's integrity hash; extracted aside, then moved
  # into place, so an interrupted run leaves nothing that looks complete.
  partial=$cache/.partial-$package-$version
  rm -rf "$partial"
  mkdir -p "$partial"
  (cd "$partial" && npm pack --silent "$package@$version" >/dev/null)
  tar -xzf "$partial/$package-$version.tgz" -C "$partial"
  rm "$partial/$package-$version.tgz"
  rm -rf "$dir"
  mv "$partial" "$dir"
fi
echo "$dir/package"
