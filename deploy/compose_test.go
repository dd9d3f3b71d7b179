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

// composeDir copies compose.yaml and its files into the deploy/ of a
// temporary repository root and runs there the commands of compose.yaml's
// header that make the secrets (those before `docker compose … up`), as
// an operator would, with bin (a credgate binary) for `go run
// ./cmd/credgate`; it returns the directory of compose.yaml and the
// evidence log's verifier key keygen printed.
func composeDir(t *testing.T, bin string) (dir, vkey string) {
	t.Helper()
	root := t.TempDir()
	dir = filepath.Join(root, "deploy")
	for _, f := range []string{"compose.yaml", "compose/nginx.conf"} {
		copyFile(t, f, filepath.Join(dir, f))
	}
	var script []string
	for _, c := range composeHeader(t) {
		if strings.HasPrefix(c, "docker compose") {
			break
		}
		script = append(script, strings.ReplaceAll(c, "go run ./cmd/credgate", shellQuote(bin)))
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(script, "\n"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compose.yaml's header: %v\n%s\n%s", err, strings.Join(script, "\n"), out)
	}
	const pin = "evidence verifier key (auditors pin it): "
	i := strings.Index(string(out), pin)
	if i < 0 {
		t.Fatalf("compose.yaml's header printed no verifier key:\n%s", out)
	}
	vkey = strings.Fields(string(out)[i+len(pin):])[0]
	return dir, vkey
}

// composeHeader is the commands of compose.yaml's header: its comment
// lines indented as commands ("#   …"), in order.
func composeHeader(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if c, ok := strings.CutPrefix(line, "#   "); ok && strings.TrimSpace(c) != "" {
			cmds = append(cmds, strings.TrimSpace(c))
		}
	}
	if len(cmds) == 0 {
		t.Fatal("compose.yaml's header has no commands")
	}
	return cmds
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

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
	uid, gid := imageUser(t)
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
		// The keys are files, mounted into the data dir; each is readable
		// by the image's user as the header leaves it, since compose
		// mounts a file secret with its owner and mode on the host.
		targets := map[string]bool{}
		for _, m := range composeMounts(p, r) {
			if m.kind == mountSecret {
				targets[m.path] = true
			}
		}
		for _, s := range r.Secrets {
			f := p.Secrets[s.Source].File
			if f == "" {
				t.Errorf("%s: secret %s is not from a file", r.Name, s.Source)
				continue
			}
			fi, err := os.Stat(f)
			if err != nil {
				t.Errorf("%s: secret %s: %v", r.Name, s.Source, err)
			} else if !readableBy(fi, uid, gid) {
				t.Errorf("%s: secret %s (%s, mode %v) is unreadable by the image's user %d:%d: compose mounts it with its owner and mode on the host", r.Name, s.Source, f, fi.Mode().Perm(), uid, gid)
			}
		}
		for _, f := range keyFiles {
			if p := filepath.Join(*env["CREDGATE_DATA_DIR"], f); !targets[p] {
				t.Errorf("%s: %s is not among its secrets %v", r.Name, p, targets)
			}
		}
	}
	for _, k := range []string{"postgres", "redis"} {
		if p.Services[k].HealthCheck == nil {
			t.Errorf("%s has no health check", k)
		}
	}
}
