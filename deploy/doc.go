// Package deploy holds credgate's deployment files — the Dockerfile,
// compose.yaml, the Kubernetes manifests (k8s/, kustomize) and the systemd
// unit — and the tests that keep them true: the manifests decoded strictly
// as Kubernetes objects and their settings read by credgate's own
// configuration loader, the compose file loaded by the Compose
// specification's reference loader, the binary built with the Dockerfile's
// own build line, and the compose topology run as processes. The package
// has no code of its own.
package deploy
