// Package deploy holds credgate's deployment files — the Dockerfile,
// compose.yaml, the Kubernetes manifests (k8s/, kustomize) and the systemd
// unit — and the tests that keep them true: the manifests decoded strictly
// as Kubernetes objects and their settings read by credgate's own
// configuration loader, the compose file loaded by the Compose
// specification's reference loader (its header's commands run), the
// directories credgate writes found on writable volumes in every topology,
// nginx's body caps and timeouts held to credgate's own limits (and the
// file run in nginx when it is installed), the binary built with the
// Dockerfile's own build line, and the compose topology run as processes.
// The package has no code of its own.
package deploy
