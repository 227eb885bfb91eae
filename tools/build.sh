#!/bin/sh
# Builds the programs of one tools/<module> into BINDIR, from the versions its go.mod/go.sum pin.
#   tools/build.sh <module> <bindir>      e.g. tools/build.sh helm4 .tools/bin
# Each upstream project has its own small module, so every program is built at its own released
# dependency graph (Helm 3 keeps its k8s.io v0.36 libraries, Helm 4 its v0.37 ones, ...).
# The -X flags are the ones the upstream release builds set (Helm's Makefile, Kubernetes'
# hack/lib/version.sh, Prometheus' .promu.yml), filled from the pinned module versions, so
# `helm version`, `kube-apiserver --version` and the API server's /version report the release.
# Go's build cache stays in its default place (go env GOCACHE, ~/.cache/go-build).
set -eu

module=${1:?usage: tools/build.sh <module> <bindir>}
bindir=${2:?usage: tools/build.sh <module> <bindir>}
here=$(cd "$(dirname "$0")" && pwd)
case $bindir in /*) ;; *) bindir=$(pwd)/$bindir ;; esac
mkdir -p "$bindir"
cd "$here/$module"

GO=${GO:-go}
# A module whose go line is newer than the local toolchain fetches that toolchain from the module proxy.
export GOTOOLCHAIN=${GOTOOLCHAIN_TOOLS:-auto}
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

modver() { "$GO" list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"; }
# .Dir is empty until the module is in the cache (a fresh machine): download it first.
moddir() {
	"$GO" mod download "$1"
	"$GO" list -m -f '{{if .Replace}}{{.Replace.Dir}}{{else}}{{.Dir}}{{end}}' "$1"
}
# The release's timestamp as the proxy records it (stable, unlike the time of our build).
modtime() { "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$1"; }

tags="" # build tags the upstream release build sets
build() { # build <output name> <package> [ldflags...]
	out=$1 pkg=$2
	shift 2
	start=$(date +%s)
	"$GO" build -trimpath -tags "$tags" -ldflags "-s -w $*" -o "$bindir/$out" "$pkg"
	echo "built $out from $pkg in $(($(date +%s) - start)) s ($(du -m "$bindir/$out" | cut -f1) MiB)"
}

# k8s.io/client-go v0.N.M -> Kubernetes 1.N (what Helm's Makefile derives its default KubeVersion from).
k8s_minor() { modver k8s.io/client-go | cut -d. -f2; }

case $module in
helm3)
	v=$(modver helm.sh/helm/v3)
	m=$(k8s_minor)
	build helm3 helm.sh/helm/v3/cmd/helm \
		"-X helm.sh/helm/v3/internal/version.version=$v" \
		"-X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
		"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1" \
		"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$m" \
		"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1" \
		"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$m"
	;;
helm4)
	v=$(modver helm.sh/helm/v4)
	build helm4 helm.sh/helm/v4/cmd/helm \
		"-X helm.sh/helm/v4/internal/version.version=$v" \
		"-X helm.sh/helm/v4/internal/version.gitTreeState=clean"
	ln -sf helm4 "$bindir/helm"
	;;
kubernetes)
	v=$(modver k8s.io/kubernetes)
	major=${v#v}
	major=${major%%.*}
	minor=$(echo "$v" | cut -d. -f2)
	date=$(modtime k8s.io/kubernetes)
	flags=""
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		flags="$flags -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
		flags="$flags -X $p.gitTreeState=archive -X $p.buildDate=$date"
	done
	for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
		# shellcheck disable=SC2086 # $flags is a list of words
		build "$cmd" "k8s.io/kubernetes/cmd/$cmd" $flags
	done
	;;
etcd)
	build etcd ./cmd/etcd
	;;
kwok)
	# The release's version constants are in its source (sigs.k8s.io/kwok/pkg/consts).
	build kwok sigs.k8s.io/kwok/cmd/kwok
	;;
alertmanager | prometheus)
	if [ "$module" = alertmanager ]; then
		mod=github.com/prometheus/alertmanager cmds="alertmanager amtool"
	else
		mod=github.com/prometheus/prometheus cmds="promtool"
	fi
	# Prometheus' module versions (v0.316.0) differ from its release numbers (3.16.0): the
	# release's VERSION file says which it is.
	v=$(cat "$(moddir $mod)/VERSION")
	p=github.com/prometheus/common/version
	tags=netgo
	for cmd in $cmds; do
		build "$cmd" "$mod/cmd/$cmd" \
			"-X $p.Version=$v" "-X $p.Branch=HEAD" "-X $p.BuildUser=eafix-tools/build.sh" \
			"-X $p.BuildDate=$(modtime $mod)"
	done
	;;
*)
	echo "tools/build.sh: unknown module $module" >&2
	exit 2
	;;
esac
