#!/bin/sh
# Prints the replace block k8s.io/kubernetes needs when it is a dependency: its go.mod points each
# staging module at ./staging/src/k8s.io/<x>; a release v1.N.M publishes those as k8s.io/<x> v0.N.M.
# Usage (from tools/kubernetes): ./replace.sh v1.37.2 > replace.txt, then paste the block into go.mod.
set -eu
release=${1:?usage: replace.sh v1.N.M}
staging=v0.${release#v1.}
mod=$(go mod download -json "k8s.io/kubernetes@$release" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
echo "replace ("
sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/k8s\.io/.*#\1#p' "$mod" | sort -u |
	while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
echo ")"
