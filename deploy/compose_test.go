package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeDir copies compose.yaml and its files into a temporary directory
// and makes the secrets its header says to make, with bin (a credgate
// binary) for the keys; it returns the directory and the evidence log's
// verifier key.
func composeDir(t *testing.T, bin string) (dir, vkey string) {
	t.Helper()
	dir = t.TempDir()
	for _, f := range []string{"compose.yaml", "compose/nginx.conf"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secrets := filepath.Join(dir, "compose", "secrets")
	out, err := exec.Command(bin, "keygen", "--data-dir", secrets, "--evidence-origin", "credit.example.gov.cn/evidence").CombinedOutput()
	if err != nil {
		t.Fatalf("credgate keygen: %v\n%s", err, out)
	}
	text := strings.TrimSpace(string(out))
	vkey = text[strings.LastIndex(text, " ")+1:]
	for name, content := range map[string]string{
		"postgres-password": "pw\n",
		"pgpass":            "postgres:5432:credgate:credgate:pw\n",
		"admin.env":         "CREDGATE_ADMIN_CLIENT_SECRET=compose-test-admin-secret-0123456789\n",
	} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, vkey
}

// loadCompose loads dir/compose.yaml with the Compose specification's
// reference loader (what `docker compose config` runs): the schema,
// interpolation, anchors and merges, and the files it names.
func loadCompose(t *testing.T, dir string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv([]string{}), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// credgateServices are the compose services running credgate's image
// with the given command, by name.
func credgateServices(p *types.Project, command string) []types.ServiceConfig {
	var out []types.ServiceConfig
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	}) {
		s := p.Services[name]
		if strings.HasPrefix(s.Image, "credgate:") && len(s.Command) > 0 && s.Command[0] == command {
			out = append(out, s)
		}
	}
	return out
}

// TestComposeFile loads compose.yaml and checks the topology it promises:
// three replicas behind the load balancer, one PostgreSQL, one Redis,
// migrations once before any replica, health checks on /readyz, keys
// shared from files.
func TestComposeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds credgate")
	}
	dir, _ := composeDir(t, buildAsDockerfile(t))
	p := loadCompose(t, dir)
	replicas := credgateServices(p, "serve")
	if len(replicas) != 3 {
		t.Fatalf("%d credgate replicas, want 3", len(replicas))
	}
	migrations := credgateServices(p, "migrate")
	if len(migrations) != 1 {
		t.Fatalf("%d migrate services, want 1", len(migrations))
	}
	for _, name := range []string{"postgres", "redis", "lb"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	if d := migrations[0].DependsOn["postgres"]; d.Condition != types.ServiceConditionHealthy {
		t.Errorf("migrate does not wait for a healthy PostgreSQL: %+v", d)
	}
	lb := p.Services["lb"]
	conf, err := os.ReadFile(filepath.Join(dir, "compose", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	spools := map[string]string{} // volume → replica
	for _, r := range replicas {
		// Each replica spools to a volume of its own: two replicas on one
		// spool would be refused at start, and a spool on the container's
		// layer would be lost with it.
		dirVar := r.Environment["CREDGATE_SPOOL_DIR"]
		var vol string
		for _, v := range r.Volumes {
			if dirVar != nil && v.Target == *dirVar && v.Type == types.VolumeTypeVolume {
				vol = v.Source
			}
		}
		if vol == "" {
			t.Errorf("%s: no named volume at its CREDGATE_SPOOL_DIR", r.Name)
		} else if other, ok := spools[vol]; ok {
			t.Errorf("%s and %s share the spool volume %s", r.Name, other, vol)
		}
		spools[vol] = r.Name
		if d := r.DependsOn[migrations[0].Name]; d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s starts before migrations complete: %+v", r.Name, d)
		}
		if r.HealthCheck == nil || !strings.Contains(strings.Join(r.HealthCheck.Test, " "), "/readyz") {
			t.Errorf("%s: health check %+v is not on /readyz", r.Name, r.HealthCheck)
		}
		if d := lb.DependsOn[r.Name]; d.Condition != types.ServiceConditionHealthy {
			t.Errorf("the load balancer does not wait for %s to be healthy", r.Name)
		}
		if !strings.Contains(string(conf), "server "+r.Name+":8080") {
			t.Errorf("nginx.conf does not balance over %s:8080", r.Name)
		}
		env := r.Environment
		for _, k := range []string{"CREDGATE_POSTGRES_URL", "CREDGATE_REDIS_URL", "CREDGATE_ADMIN_ADDR", "CREDGATE_ADMIN_CLIENT_SECRET"} {
			if v := env[k]; v == nil || *v == "" {
				t.Errorf("%s: %s unset", r.Name, k)
			}
		}
		// The keys are files, mounted where the data dir is.
		targets := map[string]bool{}
		for _, s := range r.Secrets {
			targets[s.Target] = true
			if f := p.Secrets[s.Source].File; f == "" {
				t.Errorf("%s: secret %s is not from a file", r.Name, s.Source)
			} else if _, err := os.Stat(f); err != nil {
				t.Errorf("%s: secret %s: %v", r.Name, s.Source, err)
			}
		}
		for _, f := range []string{"token-signing.key", "evidence-signing.key"} {
			if !targets[f] && !targets[filepath.Join(*env["CREDGATE_DATA_DIR"], f)] {
				t.Errorf("%s: %s is not among its secrets %v", r.Name, f, targets)
			}
		}
		if *env["CREDGATE_DATA_DIR"] != "/run/secrets" {
			t.Errorf("%s: data dir %s is not where compose mounts secrets", r.Name, *env["CREDGATE_DATA_DIR"])
		}
	}
	for _, k := range []string{"postgres", "redis"} {
		if p.Services[k].HealthCheck == nil {
			t.Errorf("%s has no health check", k)
		}
	}
}
