package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/credgate/credgate/internal/testenv"
)

// replica is one credgate serve process of the topology.
type replica struct {
	name, partner, admin string
	logs                 *testenv.SyncBuffer
}

// startReplica starts r's process, its output in r.logs, and stops it at
// cleanup: an interrupt, then a kill if it has not exited within 10 s. A
// failed test logs the output under label.
func startReplica(t *testing.T, cmd *exec.Cmd, r *replica, label string) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s:\n%s", label, r.logs.String())
		}
	})
}

// serviceEnv is a compose service's environment as this machine runs it:
// the values that name compose's hosts, ports and mounts are replaced by
// local ones (replace); every other value is the compose file's.
func serviceEnv(t *testing.T, env map[string]*string, replace map[string]string) []string {
	t.Helper()
	var out []string
	for k, v := range env {
		if r, ok := replace[k]; ok {
			out = append(out, k+"="+r)
			continue
		}
		if v != nil {
			out = append(out, k+"="+*v)
		}
	}
	return append(out, "PGPASSFILE=/nonexistent")
}

// TestComposeTopologyWithoutContainers runs what compose.yaml describes,
// as processes of the binary the Dockerfile's build step makes, with the
// secrets its header makes: the migrate service once, then three
// replicas with the compose file's own settings on one PostgreSQL (a fresh
// database) and one Redis (a prefix of this run), each waited for on the
// URL of its compose health check. Each process sees the files its
// container would (containerFS): the image's data dir, the service's
// volumes, its secrets as the host's files themselves; run as root, the
// test runs them as the image's user, as the containers do. The test
// plays the load balancer: it sends checks to each replica in turn, and
// fetches each check's receipt from another replica; `credgate verify`
// accepts every receipt with the verifier key keygen printed. A screening
// job, whose files go to the replica's data dir, runs to its end.
func TestComposeTopologyWithoutContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds credgate and runs three servers")
	}
	redisURL := testenv.Redis(t)
	pg := testenv.FreshDatabase(t, "credgate_topology")
	bin := buildAsDockerfile(t)
	reachable(t, bin)
	dir, vkey := composeDir(t, bin)
	p := loadCompose(t, dir)
	if !asImageUser() {
		t.Logf("not root: the replicas run as this test's user, not the image's")
	}
	run := time.Now().UnixNano()
	volumes := map[string]string{} // a named volume's directory here, shared by the services mounting it
	local := func(s types.ServiceConfig, adminAddr, addr string) map[string]string {
		root := containerFS(t, p, s, volumes)
		env := map[string]string{
			"CREDGATE_POSTGRES_URL":        pg,
			"CREDGATE_REDIS_URL":           redisURL,
			"CREDGATE_ADDR":                addr,
			"CREDGATE_ADMIN_ADDR":          adminAddr,
			"CREDGATE_REDIS_PREFIX":        fmt.Sprintf("credgate-topology-%d", run),
			"CREDGATE_RATE_LIMIT_PREFIX":   fmt.Sprintf("credgate-topology-rl-%d", run),
			"CREDGATE_SHUTDOWN_TIMEOUT":    "5s",
			"CREDGATE_CHECKPOINT_INTERVAL": "100ms",
		}
		// The container's paths, in its file system here.
		for _, k := range []string{"CREDGATE_DATA_DIR", "CREDGATE_SPOOL_DIR", "CREDGATE_SCREENINGS_DIR"} {
			if v := s.Environment[k]; v != nil {
				env[k] = filepath.Join(root, *v)
			}
		}
		return env
	}

	// 1. The migrate service, to completion.
	mig := credgateServices(p, "migrate")[0]
	cmd := exec.Command(bin, mig.Command...)
	cmd.Env = serviceEnv(t, mig.Environment, local(mig, "", ""))
	runAsImageUser(t, cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", mig.Name, err, out)
	}

	// 2. The replicas, each healthy by its compose health check's URL.
	var replicas []*replica
	for _, s := range credgateServices(p, "serve") {
		r := &replica{name: s.Name, partner: testenv.FreeAddr(t), admin: testenv.FreeAddr(t), logs: &testenv.SyncBuffer{}}
		cmd := exec.Command(bin, s.Command...)
		cmd.Env = serviceEnv(t, s.Environment, local(s, r.admin, r.partner))
		runAsImageUser(t, cmd)
		startReplica(t, cmd, r, r.name)
		health := healthURL(t, s.HealthCheck.Test, r.admin)
		waitHealthy(t, r, health)
		replicas = append(replicas, r)
	}

	// Operations are off the partner port.
	for _, r := range replicas {
		if code := status(t, "http://"+r.partner+"/metrics"); code != http.StatusNotFound {
			t.Errorf("%s serves /metrics on its partner port: %d", r.name, code)
		}
	}

	// 3. The load balancer's part: a token from one replica, checks to
	// each in turn, receipts from the next.
	secret := strings.TrimPrefix(strings.TrimSpace(readFile(t, filepath.Join(dir, "compose", "secrets", "admin.env"))), "CREDGATE_ADMIN_CLIENT_SECRET=")
	token := testenv.Token(t, "http://"+replicas[0].partner, "admin", secret)
	receipts := t.TempDir()
	origin := *p.Services[replicas[0].name].Environment["CREDGATE_EVIDENCE_ORIGIN"]
	for i := range 6 {
		r := replicas[i%len(replicas)]
		subject := testenv.USCC(t, fmt.Sprintf("91110108MA01TPL%02d", i))
		var check struct {
			ID      string `json:"check_id"`
			Outcome string `json:"outcome"`
		}
		code, body := postJSON(t, "http://"+r.partner+"/v1/checks", token, fmt.Sprintf(`{"subject":{"id":%q},"action":"government_procurement"}`, subject), &check)
		if code != http.StatusOK || check.ID == "" {
			t.Fatalf("check through %s: %d %s", r.name, code, body)
		}
		other := replicas[(i+1)%len(replicas)]
		path := filepath.Join(receipts, check.ID+".json")
		fetchReceipt(t, "http://"+other.partner, token, check.ID, path)
		out, err := exec.Command(bin, "verify", "--key", vkey, "--origin", origin, path).CombinedOutput()
		if err != nil {
			t.Fatalf("credgate verify of the receipt of a check answered by %s, fetched from %s: %v\n%s", r.name, other.name, err, out)
		}
		t.Logf("check %s (%s) answered by %s, receipt from %s verifies", check.ID, check.Outcome, r.name, other.name)
	}

	// 4. A screening job: its files go to the replica's data dir.
	work := t.TempDir()
	creds := filepath.Join(work, "admin.json")
	b, _ := json.Marshal(map[string]string{"client_id": "admin", "client_secret": secret})
	book := filepath.Join(work, "book.csv")
	for name, content := range map[string][]byte{creds: b, book: []byte("id\n91350100M000100Y43\n914403001922038216\n")} {
		if err := os.WriteFile(name, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(bin, "screen", book, "--action", "bank_credit", "--out", filepath.Join(work, "results.ndjson"),
		"--url", "http://"+replicas[0].partner, "--credentials", creds).CombinedOutput()
	if err != nil {
		t.Fatalf("credgate screen through %s: %v\n%s", replicas[0].name, err, out)
	}
	t.Logf("credgate screen through %s:\n%s", replicas[0].name, out)
	// The same job's results through each other replica, as a load
	// balancer may route the download: the replicas share the screenings
	// volume, so any of them serves them.
	m := regexp.MustCompile(`screening (scr_[0-9a-f]+) accepted`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no job id in the command's output:\n%s", out)
	}
	for _, r := range replicas[1:] {
		again := filepath.Join(work, "results-"+r.name+".ndjson")
		out, err := exec.Command(bin, "screen", "--job", string(m[1]), "--out", again,
			"--url", "http://"+r.partner, "--credentials", creds).CombinedOutput()
		if err != nil {
			t.Fatalf("the job's results through %s: %v\n%s", r.name, err, out)
		}
	}
}

// containerFS lays out under a directory of its own the files compose
// gives service s's container, as credgate there sees them, and returns
// the directory: the image's data dir (the image user's, 0700, as the
// Dockerfile makes it), each named volume (a fresh one starts as a copy
// of the image's directory under it: the same owner and mode), and each
// secret at its target, as the host's file itself (a hard link: compose
// bind-mounts a file secret, with its owner and mode on the host).
//
// A named volume is one directory for every service that mounts it (the
// replicas' shared screenings volume), kept in volumes by name.
func containerFS(t *testing.T, p *types.Project, s types.ServiceConfig, volumes map[string]string) string {
	t.Helper()
	root := t.TempDir()
	reachable(t, filepath.Join(root, "x"))
	mkdir := func(path string, userDir bool) {
		if err := os.MkdirAll(filepath.Join(root, path), 0o755); err != nil {
			t.Fatal(err)
		}
		if userDir {
			ownByImageUser(t, filepath.Join(root, path), 0o700)
		}
	}
	for _, d := range []string{"/var/lib/credgate", "/var/lib/credgate/spool"} {
		mkdir(d, true)
	}
	// Outer mounts first: the spool's volume lies inside the data dir's.
	vols := slices.Clone(s.Volumes)
	slices.SortFunc(vols, func(a, b types.ServiceVolumeConfig) int { return len(a.Target) - len(b.Target) })
	for _, v := range vols {
		if v.Type != types.VolumeTypeVolume {
			t.Fatalf("%s: a %s mount at %s, which this test does not lay out", s.Name, v.Type, v.Target)
		}
		dir, ok := volumes[v.Source]
		if !ok {
			dir = filepath.Join(t.TempDir(), v.Source)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			reachable(t, filepath.Join(dir, "x"))
			ownByImageUser(t, dir, 0o700)
			volumes[v.Source] = dir
		}
		at := filepath.Join(root, v.Target)
		if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(at); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range composeMounts(p, s) {
		if m.kind != mountSecret {
			continue
		}
		src := p.Secrets[strings.TrimPrefix(m.name, "secret ")].File
		mkdir(filepath.Dir(m.path), false)
		if err := os.Link(src, filepath.Join(root, m.path)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// healthURL is the URL of a compose health check's command (its last
// http:// argument) on this machine's admin address.
func healthURL(t *testing.T, test []string, adminAddr string) string {
	t.Helper()
	for i := len(test) - 1; i >= 0; i-- {
		if strings.HasPrefix(test[i], "http://") {
			u, err := url.Parse(test[i])
			if err != nil {
				t.Fatal(err)
			}
			u.Host = adminAddr
			return u.String()
		}
	}
	t.Fatalf("health check %v names no URL", test)
	return ""
}

func waitHealthy(t *testing.T, r *replica, health string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if status(t, health) == http.StatusOK {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not become healthy at %s:\n%s", r.name, health, r.logs.String())
}

// status is the status of GET u, 0 if it could not be sent.
func status(t *testing.T, u string) int {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func postJSON(t *testing.T, u, token, body string, v any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return res.StatusCode, string(b)
}

// fetchReceipt saves the receipt of check id, waiting for a checkpoint to
// cover it.
func fetchReceipt(t *testing.T, base, token, id, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/evidence/receipts/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("receipt of %s: %d %s", id, res.StatusCode, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
