package deploy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/credgate/credgate/internal/config"
)

// kustomizations are the directories `kubectl apply -k` takes.
var kustomizations = []string{"k8s/base", "k8s/overlays/production"}

// build runs kustomize on dir and decodes every object strictly with the
// Kubernetes API types: an unknown or misspelt field, a wrong type or an
// unknown kind fails.
func build(t *testing.T, dir string) []runtime.Object {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs []runtime.Object
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, gvk, err := decoder.Decode(y, nil, nil)
		if err != nil {
			t.Fatalf("%s: %s/%s: %v", dir, r.GetKind(), r.GetName(), err)
		}
		t.Logf("%s: %s %s", dir, gvk.Kind, r.GetName())
		objs = append(objs, obj)
	}
	return objs
}

// placeholders stand for the Secrets' values, which the repository never
// holds, when the containers' settings are loaded.
var placeholders = map[string]string{
	"postgres-url":        "postgres://credgate@db.internal:5432/credgate",
	"redis-url":           "redis://cache.internal:6379/0",
	"admin-client-secret": "an-administrator-secret-of-32-chars",
}

// loadContainer loads the settings a container would run with — its
// CREDGATE_* variables, its --config file taken from the ConfigMap —
// through credgate's own loader, which refuses what serve would refuse.
// Every CREDGATE_* variable must be one credgate reads.
func loadContainer(t *testing.T, c corev1.Container, configMaps map[string]*corev1.ConfigMap, mounts map[string]string, keys []string) *config.Config {
	t.Helper()
	known := map[string]bool{config.EnvConfig: true}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "CREDGATE_") {
			continue
		}
		if !known[e.Name] {
			t.Errorf("container %s: %s is no credgate setting", c.Name, e.Name)
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			v, ok := placeholders[e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("container %s: %s from an unknown secret key %q", c.Name, e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			env[e.Name] = v
		case e.ValueFrom != nil:
			t.Fatalf("container %s: %s from something other than a Secret", c.Name, e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	if path, ok := env[config.EnvConfig]; ok {
		// The file is a key of a mounted ConfigMap.
		dir, name := filepath.Split(path)
		cm := configMaps[mounts[filepath.Clean(dir)]]
		if cm == nil || cm.Data[name] == "" {
			t.Fatalf("container %s: %s=%s is in no mounted ConfigMap", c.Name, config.EnvConfig, path)
		}
		file := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(file, []byte(cm.Data[name]), 0o600); err != nil {
			t.Fatal(err)
		}
		env[config.EnvConfig] = file
	}
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	loader := config.NewLoader(keys, config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	loader.Register(fs)
	if err := fs.Parse(c.Args[1:]); err != nil {
		t.Fatalf("container %s: args %v: %v", c.Name, c.Args, err)
	}
	cfg, err := loader.Load()
	if err != nil {
		t.Fatalf("container %s: %v", c.Name, err)
	}
	return cfg
}

// port is the port of a host:port listen address.
func port(t *testing.T, addr string) int32 {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	n, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("listen address %q", addr)
	}
	return int32(n)
}

// TestKubernetesManifests builds the base and the production overlay and
// checks what a schema cannot: that the pieces fit together and fit
// credgate.
func TestKubernetesManifests(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			objs := build(t, dir)
			var (
				deploys    []*appsv1.Deployment
				services   []*corev1.Service
				pdb        *policyv1.PodDisruptionBudget
				hpa        *autoscalingv2.HorizontalPodAutoscaler
				netpol     *networkingv1.NetworkPolicy
				configMaps = map[string]*corev1.ConfigMap{}
			)
			for _, o := range objs {
				switch o := o.(type) {
				case *appsv1.Deployment:
					deploys = append(deploys, o)
				case *corev1.Service:
					services = append(services, o)
				case *policyv1.PodDisruptionBudget:
					pdb = o
				case *autoscalingv2.HorizontalPodAutoscaler:
					hpa = o
				case *networkingv1.NetworkPolicy:
					netpol = o
				case *corev1.ConfigMap:
					configMaps[o.Name] = o
				case *corev1.Secret:
					t.Errorf("Secret %s is embedded in the manifests; reference it instead", o.Name)
				case *corev1.PersistentVolumeClaim:
					// The screenings' shared claim (TestProductionScreeningsShared).
				default:
					t.Errorf("unexpected %T", o)
				}
			}
			if len(deploys) != 1 || pdb == nil || hpa == nil || netpol == nil || len(configMaps) != 1 || len(services) != 2 {
				t.Fatalf("want one Deployment, PDB, HPA, NetworkPolicy, ConfigMap and two Services; got %d deployments, %d services, %d config maps, pdb %v, hpa %v",
					len(deploys), len(services), len(configMaps), pdb != nil, hpa != nil)
			}
			d := deploys[0]
			pod := d.Spec.Template
			sel, err := metav1LabelSelector(d)
			if err != nil {
				t.Fatal(err)
			}
			if !sel.Matches(labels.Set(pod.Labels)) {
				t.Errorf("the Deployment's selector %v does not select its pods %v", sel, pod.Labels)
			}
			// The PDB, the Services and the NetworkPolicy select these pods.
			for name, s := range map[string]map[string]string{"pdb": pdb.Spec.Selector.MatchLabels, "networkpolicy": netpol.Spec.PodSelector.MatchLabels} {
				if len(s) == 0 || !labels.SelectorFromSet(s).Matches(labels.Set(pod.Labels)) {
					t.Errorf("%s selects %v, not the pods %v", name, s, pod.Labels)
				}
			}
			for _, s := range services {
				if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
					t.Errorf("Service %s selects %v, not the pods %v", s.Name, s.Spec.Selector, pod.Labels)
				}
			}
			if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name {
				t.Errorf("the HPA scales %s/%s, not Deployment %s", ref.Kind, ref.Name, d.Name)
			}
			if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 3 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
				t.Errorf("HPA replicas %v..%d: want at least 3, the PDB's assumption", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
			}
			if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
				t.Errorf("rolling update may take replicas away before their successors are ready")
			}

			// Volumes: ConfigMaps exist, Secrets are referenced.
			mounts := map[string]string{} // mount path -> ConfigMap name
			volumes := map[string]corev1.Volume{}
			for _, v := range pod.Spec.Volumes {
				volumes[v.Name] = v
				if v.ConfigMap != nil && configMaps[v.ConfigMap.Name] == nil {
					t.Errorf("volume %s: ConfigMap %s is not in the build", v.Name, v.ConfigMap.Name)
				}
			}
			sc := pod.Spec.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("pods may run as root")
			}
			if len(pod.Spec.InitContainers) != 1 || !slices.Equal(pod.Spec.InitContainers[0].Args, []string{"migrate"}) {
				t.Fatalf("want one init container running credgate migrate, got %+v", pod.Spec.InitContainers)
			}
			if len(pod.Spec.Containers) != 1 || len(pod.Spec.Containers[0].Args) == 0 || pod.Spec.Containers[0].Args[0] != "serve" {
				t.Fatalf("want one container running credgate serve, got %+v", pod.Spec.Containers)
			}
			for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
				if c.Image != pod.Spec.Containers[0].Image || !strings.Contains(c.Image, "credgate") {
					t.Errorf("container %s runs image %q", c.Name, c.Image)
				}
				if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
					t.Errorf("container %s may escalate privileges", c.Name)
				}
				for _, m := range c.VolumeMounts {
					v, ok := volumes[m.Name]
					if !ok {
						t.Errorf("container %s mounts unknown volume %s", c.Name, m.Name)
					}
					if v.ConfigMap != nil {
						mounts[filepath.Clean(m.MountPath)] = v.ConfigMap.Name
					}
				}
			}

			// The migration step reads only where the store is.
			initCfg := loadContainer(t, pod.Spec.InitContainers[0], configMaps, mounts, []string{"store"})
			if initCfg.Store.PostgresURL == "" {
				t.Errorf("the migration step has no store.postgres_url: it would migrate a SQLite file in the pod")
			}
			// The server: its settings load, it keeps data in PostgreSQL,
			// shares Redis, and its probes and ports are its listeners.
			c := pod.Spec.Containers[0]
			cfg := loadContainer(t, c, configMaps, mounts, []string{"server", "store", "redis", "cache", "upstream", "evidence", "access", "catalog", "log", "tracing"})
			if cfg.Store.PostgresURL == "" || cfg.Redis.URL == "" {
				t.Errorf("replicas need a shared PostgreSQL and Redis: postgres_url %q, redis url set %v", cfg.Store.PostgresURL, cfg.Redis.URL != "")
			}
			if cfg.Server.AdminAddr == "" {
				t.Fatalf("server.admin_addr unset: metrics and pprof would be on the partner port")
			}
			// Behind the ingress every request comes from its pod: without
			// its address trusted, the failed sign-ins of one partner
			// throttle every partner's token requests.
			if len(cfg.Access.TrustedProxies) == 0 {
				t.Errorf("access.trusted_proxies unset: every partner would be throttled as the ingress controller")
			}
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if ports["http"] != port(t, cfg.Server.Addr) || ports["admin"] != port(t, cfg.Server.AdminAddr) {
				t.Errorf("container ports %v, server.addr %s, server.admin_addr %s", ports, cfg.Server.Addr, cfg.Server.AdminAddr)
			}
			for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "admin" {
					t.Errorf("%s probe %+v: want GET %s on the admin port", name, p, want)
				}
			}
			// The keys in the data dir are the keys Secret's files, read-only,
			// so every replica signs with the same keys; the Secret's volume
			// lists them, so a Secret without one fails the pod's start
			// instead of a pod generating its own. (The data dir itself is
			// writable: TestWritableDirs.)
			mountsOfC := k8sMounts(pod, c)
			for _, f := range keyFiles {
				p := filepath.Join(cfg.Store.DataDir, f)
				m, ok := mountAt(mountsOfC, p)
				if !ok || m.kind != mountSecret || !m.readOnly || filepath.Clean(m.path) != p {
					t.Errorf("%s is not a read-only file of a Secret (%+v): replicas would generate keys of their own", p, m)
				}
			}
			for _, v := range volumes {
				if v.Secret == nil || v.Secret.SecretName != "credgate-keys" {
					continue
				}
				var items []string
				for _, it := range v.Secret.Items {
					items = append(items, it.Key)
				}
				for _, f := range keyFiles {
					if !slices.Contains(items, f) {
						t.Errorf("volume %s does not list %s among the Secret's items %v: a Secret without it would start pods", v.Name, f, items)
					}
				}
			}
			// Partners reach the http port only; the admin Service exposes
			// the admin port only.
			for _, s := range services {
				for _, p := range s.Spec.Ports {
					if want := map[string]string{"credgate": "http", "credgate-admin": "admin"}[s.Name]; p.TargetPort.String() != want {
						t.Errorf("Service %s targets port %s, want %s", s.Name, p.TargetPort.String(), want)
					}
				}
			}
		})
	}
}

// metav1LabelSelector is the Deployment's selector as a labels.Selector.
func metav1LabelSelector(d *appsv1.Deployment) (labels.Selector, error) {
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		return nil, fmt.Errorf("deployment %s has no selector", d.Name)
	}
	return labels.SelectorFromSet(d.Spec.Selector.MatchLabels), nil
}

// The overlay changes what it says it changes, and nothing in the base's
// shape: same objects, other image, namespace and sizes.
func TestProductionOverlay(t *testing.T) {
	base, prod := build(t, kustomizations[0]), build(t, kustomizations[1])
	// Production adds one object of its own: the screenings' shared claim
	// (TestProductionScreeningsShared).
	if len(base)+1 != len(prod) {
		t.Fatalf("base has %d objects, production %d (want the base's and the screenings' claim)", len(base), len(prod))
	}
	var d *appsv1.Deployment
	for _, o := range prod {
		if dd, ok := o.(*appsv1.Deployment); ok {
			d = dd
		}
	}
	if d.Namespace != "credgate" || !strings.Contains(d.Spec.Template.Spec.Containers[0].Image, ":") || strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":dev") {
		t.Errorf("production Deployment: namespace %q, image %q", d.Namespace, d.Spec.Template.Spec.Containers[0].Image)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		t.Errorf("production replicas %v", d.Spec.Replicas)
	}
	if d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String() == "500m" {
		t.Errorf("production kept the base's CPU request")
	}
}
