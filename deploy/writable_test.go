package deploy

import (
	"bufio"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/credgate/credgate/internal/config"
)

// mountPoint is what a deployment puts at a path of credgate's file
// system: a volume, a secret, settings or a state directory.
type mountPoint struct {
	path     string
	kind     string // mountStorage, mountSecret, mountConfig, mountOther
	readOnly bool
	name     string // the volume's, the secret's (with its file), the directory's
}

const (
	// mountStorage is storage credgate may keep files in: a named
	// volume, an emptyDir, a claim, a systemd state directory.
	mountStorage = "storage"
	mountSecret  = "secret"
	mountConfig  = "config"
	mountOther   = "other"
)

// mountAt is the mount p lies in: the deepest one at p or above it. ok is
// false when p is on the image's own file system.
func mountAt(mounts []mountPoint, p string) (m mountPoint, ok bool) {
	p = filepath.Clean(p)
	for _, c := range mounts {
		mp := filepath.Clean(c.path)
		if (p == mp || strings.HasPrefix(p, mp+"/") || mp == "/") && (!ok || len(mp) > len(filepath.Clean(m.path))) {
			m, ok = c, true
		}
	}
	return m, ok
}

// writable says why credgate could not keep files at p, "" when it can:
// p must lie in storage, mounted read-write.
func writable(mounts []mountPoint, p string) string {
	m, ok := mountAt(mounts, p)
	switch {
	case !ok:
		return "on the image's file system, no volume"
	case m.kind != mountStorage:
		return "in the " + m.kind + " " + m.name + " mounted at " + m.path
	case m.readOnly:
		return "in " + m.name + ", mounted read-only at " + m.path
	}
	return ""
}

// The directories a server writes, by its settings: the evidence spool
// (cmd/credgate/serve_spool.go) and the screening jobs' files
// (cmd/credgate/serve_screenings.go: store.screenings_dir, else
// <data_dir>/screenings).
func spoolDirOf(cfg *config.Config) string {
	if cfg.Evidence.SpoolDir != "" {
		return cfg.Evidence.SpoolDir
	}
	return filepath.Join(cfg.Store.DataDir, "spool")
}

func screeningsDirOf(cfg *config.Config) string {
	if cfg.Store.ScreeningsDir != "" {
		return cfg.Store.ScreeningsDir
	}
	return filepath.Join(cfg.Store.DataDir, "screenings")
}

// The key files a replica reads from its data dir when no key is
// configured (cmd/credgate: token-signing.key, evidence-signing.key).
var keyFiles = []string{"token-signing.key", "evidence-signing.key"}

// serverKeys are the settings sections serve reads.
var serverKeys = []string{"server", "store", "redis", "cache", "upstream", "evidence", "access", "catalog", "log", "tracing"}

// loadEnv loads the settings of a server run with env as its whole
// environment, through credgate's own loader.
func loadEnv(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	loader := config.NewLoader(serverKeys, config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	loader.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := loader.Load()
	if err != nil {
		t.Fatalf("settings %v: %v", env, err)
	}
	return cfg
}

// checkWritable checks that a server with cfg and mounts can write where
// it writes, and, when shared is set (replicas), that it reads the keys
// every replica shares from read-only secrets rather than generating its
// own.
func checkWritable(t *testing.T, who string, cfg *config.Config, mounts []mountPoint, shared bool) {
	t.Helper()
	for what, dir := range map[string]string{"evidence spool": spoolDirOf(cfg), "screening jobs' directory": screeningsDirOf(cfg)} {
		if why := writable(mounts, dir); why != "" {
			t.Errorf("%s: the %s %s is %s: the server cannot write there", who, what, dir, why)
		} else {
			t.Logf("%s: the %s %s is writable storage", who, what, dir)
		}
	}
	if !shared {
		return
	}
	for _, f := range keyFiles {
		if (f == "token-signing.key" && cfg.Access.TokenKey != "") || (f == "evidence-signing.key" && cfg.Evidence.Key != "") {
			continue
		}
		p := filepath.Join(cfg.Store.DataDir, f)
		m, ok := mountAt(mounts, p)
		if !ok || m.kind != mountSecret || !m.readOnly || filepath.Clean(m.path) != p {
			t.Errorf("%s: %s is not a read-only secret file mounted there (%+v): each replica would generate a key of its own", who, p, m)
		}
	}
}

// TestWritableDirs: in every topology shipped, the directories credgate
// writes to — its evidence spool and its screening jobs' files — are on
// writable storage, not on a secret or a read-only mount, as the server
// resolves them from the topology's own settings; and replicas read the
// shared keys from read-only secrets.
func TestWritableDirs(t *testing.T) {
	t.Run("compose", func(t *testing.T) {
		p := loadCompose(t, composeStub(t))
		replicas := credgateServices(p, "serve")
		if len(replicas) == 0 {
			t.Fatal("no replicas")
		}
		shared := map[string]int{}
		for _, s := range replicas {
			env := map[string]string{}
			for k, v := range s.Environment {
				if v != nil {
					env[k] = *v
				}
			}
			// The env_file's secret, absent here.
			env["CREDGATE_ADMIN_CLIENT_SECRET"] = placeholders["admin-client-secret"]
			cfg := loadEnv(t, env)
			mounts := composeMounts(p, s)
			checkWritable(t, s.Name, cfg, mounts, true)
			// Replicas share one database, so they share one screenings
			// directory: a job is run under a lease by whichever replica
			// holds it and its results are read through any of them.
			if m, ok := mountAt(mounts, screeningsDirOf(cfg)); ok {
				shared[m.name]++
			}
		}
		if n := len(shared); n != 1 || shared[screeningsVolume(shared)] != len(replicas) {
			t.Errorf("the replicas' screenings directories are on %v (volume: replicas), not one volume shared by all %d: a job's results could be read through one replica only",
				shared, len(replicas))
		}
	})
	for _, dir := range kustomizations {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			_, pod, cfg, mounts := k8sServer(t, dir)
			checkWritable(t, pod.Spec.Containers[0].Name, cfg, mounts, true)
		})
	}
	t.Run("systemd", func(t *testing.T) {
		u := readUnit(t, "systemd/credgate.service")
		env := u.env(t)
		checkWritable(t, "credgate.service", loadEnv(t, env), u.mounts(t), false)
	})
}

// composeStub is a directory with compose.yaml and the files it names,
// the secrets empty: enough to load it.
func composeStub(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"compose.yaml", "compose/nginx.conf"} {
		copyFile(t, f, filepath.Join(dir, f))
	}
	secrets := filepath.Join(dir, "compose", "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"token-signing.key", "evidence-signing.key", "pgpass", "postgres-password", "admin.env"} {
		if err := os.WriteFile(filepath.Join(secrets, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// composeMounts are a compose service's volumes and secrets where its
// container sees them; a secret with a relative target (or none) is in
// /run/secrets, as compose mounts it.
// screeningsVolume is the one volume of shared, or "".
func screeningsVolume(shared map[string]int) string {
	for name := range shared {
		if len(shared) == 1 {
			return name
		}
	}
	return ""
}

func composeMounts(p *types.Project, s types.ServiceConfig) []mountPoint {
	var out []mountPoint
	for _, v := range s.Volumes {
		kind := mountOther
		if v.Type == types.VolumeTypeVolume {
			kind = mountStorage
		}
		out = append(out, mountPoint{path: v.Target, kind: kind, readOnly: v.ReadOnly, name: v.Type + " " + v.Source})
	}
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join("/run/secrets", target)
		}
		out = append(out, mountPoint{path: target, kind: mountSecret, readOnly: true, name: "secret " + sec.Source})
	}
	return out
}

// podOf is the pod template of the build's one Deployment, and its
// ConfigMaps by name.
func podOf(t *testing.T, objs []runtime.Object) (corev1.PodTemplateSpec, map[string]*corev1.ConfigMap) {
	t.Helper()
	var pods []corev1.PodTemplateSpec
	configMaps := map[string]*corev1.ConfigMap{}
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			pods = append(pods, o.Spec.Template)
		case *corev1.ConfigMap:
			configMaps[o.Name] = o
		}
	}
	if len(pods) != 1 || len(pods[0].Spec.Containers) == 0 {
		t.Fatalf("want one Deployment, got %d", len(pods))
	}
	return pods[0], configMaps
}

// k8sMounts are container c's volume mounts, each with the kind of its
// volume.
func k8sMounts(pod corev1.PodTemplateSpec, c corev1.Container) []mountPoint {
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	var out []mountPoint
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		mp := mountPoint{path: m.MountPath, readOnly: m.ReadOnly, kind: mountOther, name: "volume " + m.Name}
		switch {
		case v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil:
			mp.kind = mountStorage
		case v.Secret != nil:
			mp.kind, mp.name = mountSecret, "Secret "+v.Secret.SecretName
			if m.SubPath != "" {
				mp.name += " " + m.SubPath
			}
		case v.ConfigMap != nil:
			mp.kind, mp.name = mountConfig, "ConfigMap "+v.ConfigMap.Name
		}
		out = append(out, mp)
	}
	return out
}

// unit is a systemd unit file's [Service] settings, each with its values
// in order.
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q", path, line)
			}
			u[k] = append(u[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// env is the environment the unit gives credgate: its Environment= lines,
// then its EnvironmentFile= (deploy/systemd's copy of it), which overrides
// them.
func (u unit) env(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range u["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			env[k] = v
		}
	}
	for _, f := range u["EnvironmentFile"] {
		f = strings.TrimPrefix(f, "-")
		local := filepath.Join("systemd", filepath.Base(f))
		b, err := os.ReadFile(local)
		if err != nil {
			t.Fatalf("EnvironmentFile %s: %v", f, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
	}
	return env
}

// mounts are what the unit makes writable: with ProtectSystem=strict the
// whole file system is read-only but for its state directories (under
// /var/lib) and ReadWritePaths=.
func (u unit) mounts(t *testing.T) []mountPoint {
	t.Helper()
	if !slices.Contains(u["ProtectSystem"], "strict") {
		t.Fatalf("ProtectSystem=%v: this test knows what strict leaves writable", u["ProtectSystem"])
	}
	out := []mountPoint{{path: "/", kind: mountOther, readOnly: true, name: "ProtectSystem=strict"}}
	for _, line := range u["StateDirectory"] {
		for _, d := range strings.Fields(line) {
			out = append(out, mountPoint{path: filepath.Join("/var/lib", d), kind: mountStorage, name: "StateDirectory " + d})
		}
	}
	for _, line := range u["ReadWritePaths"] {
		for _, d := range strings.Fields(line) {
			out = append(out, mountPoint{path: strings.TrimLeft(d, "-+"), kind: mountStorage, name: "ReadWritePaths " + d})
		}
	}
	return out
}

// TestProductionScreeningsShared: the production overlay runs several
// pods behind one Service on one database, so a job accepted by one pod is
// run under a lease by whichever pod holds it and its results are
// downloaded through any of them. Its screening jobs' directory must be
// one ReadWriteMany claim mounted in every pod, not a pod's own emptyDir
// (where the other pods answer 503 screening_unavailable).
func TestProductionScreeningsShared(t *testing.T) {
	objs, pod, cfg, mounts := k8sServer(t, "k8s/overlays/production")
	dir := screeningsDirOf(cfg)
	m, ok := mountAt(mounts, dir)
	if !ok {
		t.Fatalf("the screening jobs' directory %s is on no volume", dir)
	}
	var claim string
	for _, v := range pod.Spec.Volumes {
		if "volume "+v.Name == m.name && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim == "" {
		t.Fatalf("the screening jobs' directory %s is on %s, not a PersistentVolumeClaim: each pod would see only its own jobs", dir, m.name)
	}
	for _, o := range objs {
		if pvc, ok := o.(*corev1.PersistentVolumeClaim); ok && pvc.Name == claim {
			if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
				t.Errorf("claim %s has access modes %v: pods on several nodes cannot all mount it (ReadWriteMany)", claim, pvc.Spec.AccessModes)
			}
			return
		}
	}
	t.Errorf("claim %s, mounted at %s, is not among the overlay's objects", claim, m.path)
}

// k8sServer builds the kustomization in dir and returns its objects, its
// one pod, the settings its server container runs with (its ConfigMap's
// file where the container mounts it) and that container's mounts.
func k8sServer(t *testing.T, dir string) ([]runtime.Object, corev1.PodTemplateSpec, *config.Config, []mountPoint) {
	t.Helper()
	objs := build(t, dir)
	pod, configMaps := podOf(t, objs)
	c := pod.Spec.Containers[0]
	mounts := k8sMounts(pod, c)
	cms := map[string]string{}
	for _, m := range mounts {
		if m.kind == mountConfig {
			cms[filepath.Clean(m.path)] = strings.TrimPrefix(m.name, "ConfigMap ")
		}
	}
	return objs, pod, loadContainer(t, c, configMaps, cms, serverKeys), mounts
}
