// Not a program: pins the Argo CD release whose CRDs (manifests/crds) the cluster tests install,
// so eafix-apps' Applications and AppProjects are applied to a real API server (Makefile: argo-cd-crds).
module eafix.local/tools/argo-cd-crds

go 1.26

require github.com/argoproj/argo-cd/v3 v3.5.8
