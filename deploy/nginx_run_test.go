package deploy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// TestNginxRunsConfig runs compose/nginx.conf in nginx, when nginx is
// installed (it is the nginx image's, so the test skips without one), in
// front of a stand-in for the replicas that counts the bytes of each body
// as they arrive: nginx accepts the file, and each upload of a file larger
// than nginx's cap for other requests reaches the replica whole and while
// it is still being sent, not after nginx has spooled it. Then, with the
// replicas gone, requests that carry a subject's ID number in their path
// or query fail with 502, and nginx's error log does not name the number.
func TestNginxRunsConfig(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed")
	}
	// The stand-in: received counts the body bytes read so far.
	var received atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stub := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		var n int64
		for {
			k, err := r.Body.Read(buf)
			n += int64(k)
			received.Add(int64(k))
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d", n)
	})}
	go func() { _ = stub.Serve(ln) }()
	t.Cleanup(func() { stub.Close() })

	// The file with compose's hosts and ports replaced by this machine's.
	b, err := os.ReadFile("compose/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	partner, health := testenv.FreeAddr(t), testenv.FreeAddr(t)
	conf := regexp.MustCompile(`credgate-\d+:8080`).ReplaceAllString(string(b), ln.Addr().String())
	conf = strings.Replace(conf, "listen 8080;", "listen "+partner+";", 1)
	conf = strings.Replace(conf, "listen 127.0.0.1:8081;", "listen "+health+";", 1)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Temporary files under the test's directory: a distribution's nginx
	// (Debian's) has its own under /var/lib/nginx, which only its
	// package creates.
	var temps strings.Builder
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "\n  %s_temp_path %s;", d, filepath.Join(dir, d))
	}
	conf = strings.Replace(conf, "http {", "http {"+temps.String(), 1)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", dir, "-c", path, "-e", "stderr", "-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
	if out, err := exec.Command(nginx, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, args...)
	logs := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nginx:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for status(t, "http://"+health+"/nginx-health") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Past the 64 MiB the other requests may send: one more MiB.
	const size = 65 << 20
	const first = 1 << 20
	for _, uri := range []string{"/v1/admin/entries:import", "/v1/screenings", "/v1/coverage"} {
		received.Store(0)
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(http.MethodPost, "http://"+partner+uri, pr)
		req.ContentLength = size
		type answer struct {
			code int
			body string
			err  error
		}
		done := make(chan answer, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- answer{err: err}
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			done <- answer{code: res.StatusCode, body: string(b)}
		}()
		chunk := make([]byte, first)
		if _, err := pw.Write(chunk); err != nil {
			select {
			case a := <-done:
				t.Fatalf("%s: answered %d %q %v before the body was sent", uri, a.code, a.body, a.err)
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: %v", uri, err)
			}
		}
		// The replica has bytes of the body before the rest is sent.
		deadline := time.Now().Add(10 * time.Second)
		for received.Load() == 0 {
			select {
			case a := <-done:
				pw.Close()
				t.Fatalf("%s: answered %d %q %v before the body was sent", uri, a.code, a.body, a.err)
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				pw.CloseWithError(io.ErrUnexpectedEOF)
				t.Fatalf("%s: the replica got nothing of the first MiB within 10 s: nginx holds the body back", uri)
			}
		}
		for sent := first; sent < size; sent += len(chunk) {
			if _, err := pw.Write(chunk); err != nil {
				t.Fatalf("%s: %v", uri, err)
			}
		}
		pw.Close()
		a := <-done
		if a.err != nil || a.code != http.StatusOK || a.body != fmt.Sprint(size) {
			t.Errorf("%s: %d %q %v: want 200 and the whole %d bytes at the replica", uri, a.code, a.body, a.err, size)
		}
	}

	// The replicas gone: nginx logs each failed request as an error, with
	// its request line unless the level is above error.
	const id = "11010519491231002X"
	stub.Close()
	for _, uri := range []string{"/v1/subjects/" + id + "/status", "/v1/commitments?subject_id=" + id, "/console/subjects?id=" + id} {
		if code := status(t, "http://"+partner+uri); code != http.StatusBadGateway {
			t.Errorf("%s with no replica: %d, want 502", uri, code)
		}
	}
	// nginx writes its log as it goes; give it a moment, then read it
	// and any file it wrote under its prefix.
	time.Sleep(200 * time.Millisecond)
	logged := logs.String()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".log") {
			b, _ := os.ReadFile(p)
			logged += string(b)
		}
		return nil
	})
	if strings.Contains(logged, id) {
		t.Errorf("nginx logged a subject's ID number:\n%s", logged)
	}
}
