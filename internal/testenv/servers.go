package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a
// moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// PrivatePostgres is a PostgreSQL cluster of the test's own, on its own
// port, that the test may freeze, stop and kill without touching the
// shared server everyone else uses.
type PrivatePostgres struct {
	tb   testing.TB
	bin  string // directory of initdb and pg_ctl; empty: PATH
	dir  string
	port int
}

// StartPostgres initialises and starts a cluster in a temporary directory
// (as the postgres user when run as root), stopped and removed at cleanup.
// Without the server's programs it is a Need.
func StartPostgres(tb testing.TB) *PrivatePostgres {
	tb.Helper()
	bin := ""
	if _, err := exec.LookPath("pg_ctl"); err != nil {
		// Debian keeps the server's programs out of PATH.
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		if len(dirs) == 0 {
			Need(tb, "PostgreSQL's server programs (initdb, pg_ctl) are not installed: %v", err)
		}
		bin = dirs[len(dirs)-1]
	}
	base, err := os.MkdirTemp("", "credgate-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	pg := &PrivatePostgres{tb: tb, bin: bin, dir: filepath.Join(base, "data"), port: FreePort(tb)}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:", base).CombinedOutput(); err != nil {
			tb.Fatalf("chown: %v: %s", err, out)
		}
	}
	tb.Cleanup(func() {
		pg.Signal(syscall.SIGCONT)
		_ = pg.ctl("stop", "-m", "immediate", "-w")
		os.RemoveAll(base)
	})
	if out, err := pg.cmd("initdb", "-D", pg.dir, "-U", "root", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v: %s", err, out)
	}
	if err := pg.Start(); err != nil {
		tb.Fatal(err)
	}
	return pg
}

// cmd runs a server program, as postgres when the test runs as root.
func (pg *PrivatePostgres) cmd(name string, args ...string) *exec.Cmd {
	if pg.bin != "" {
		name = filepath.Join(pg.bin, name)
	}
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (pg *PrivatePostgres) ctl(action string, args ...string) error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='' -c fsync=off", pg.port)
	full := append([]string{action, "-D", pg.dir, "-o", opts, "-l", filepath.Join(filepath.Dir(pg.dir), "log"), "-w"}, args...)
	if out, err := pg.cmd("pg_ctl", full...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", action, err, out)
	}
	return nil
}

// Start starts the cluster (again) and waits until it accepts connections.
func (pg *PrivatePostgres) Start() error { return pg.ctl("start") }

// Stop shuts the cluster down: "fast" ends sessions cleanly, "immediate"
// is a crash (recovery at the next start).
func (pg *PrivatePostgres) Stop(mode string) error { return pg.ctl("stop", "-m", mode) }

// URL is the cluster's default database.
func (pg *PrivatePostgres) URL() string {
	return fmt.Sprintf("postgres://root@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// Signal sends sig to the postmaster and every backend it has forked:
// SIGSTOP freezes the whole server (connections stay open and nothing
// answers), SIGCONT thaws it.
func (pg *PrivatePostgres) Signal(sig syscall.Signal) {
	b, err := os.ReadFile(filepath.Join(pg.dir, "postmaster.pid"))
	if err != nil {
		return
	}
	master, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return
	}
	for _, pid := range append(children(master), master) {
		_ = syscall.Kill(pid, sig)
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		child, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so cut at ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// PrivateRedis is a redis-server of the test's own, on a free port, that
// the test may stop, start and freeze (the shared Redis is left alone).
type PrivateRedis struct {
	tb   testing.TB
	bin  string
	port int
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	// persist: an append-only file synced on every write, so that a
	// server killed and started again holds what it held, as a production
	// Redis with persistence does after a crash.
	persist bool
}

// StartPersistentRedis is StartRedis with persistence (an append-only
// file, synced on every write): Stop is a crash, and Start brings back
// what the server held.
func StartPersistentRedis(tb testing.TB) *PrivateRedis {
	tb.Helper()
	return startRedis(tb, true)
}

// StartRedis starts a redis-server without persistence, killed at
// cleanup. Without redis-server it is a Need.
func StartRedis(tb testing.TB) *PrivateRedis {
	tb.Helper()
	return startRedis(tb, false)
}

func startRedis(tb testing.TB, persist bool) *PrivateRedis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Need(tb, "redis-server is not installed")
	}
	r := &PrivateRedis{tb: tb, bin: bin, port: FreePort(tb), dir: tb.TempDir(), persist: persist}
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// Addr is host:port.
func (r *PrivateRedis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is the server's redis:// URL.
func (r *PrivateRedis) URL() string { return "redis://" + r.Addr() + "/0" }

// Start starts the server (again) on its port and waits for its PONG.
func (r *PrivateRedis) Start() {
	r.tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	aof := []string{"--appendonly", "no"}
	if r.persist {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	cmd := exec.Command(r.bin, append(append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", ""},
		aof...), "--daemonize", "no", "--dir", r.dir)...)
	// No Stdout/Stderr: /dev/null, so that Wait does not wait on pipes.
	DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", r.Addr(), 100*time.Millisecond); err == nil {
			fmt.Fprint(c, "PING\r\n")
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if line == "+PONG\r\n" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.tb.Fatalf("redis-server on port %d did not start", r.port)
}

// Stop kills the server (SIGKILL): without persistence its data is gone;
// with it, what it wrote to its append-only file is what it keeps.
func (r *PrivateRedis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Signal sends sig to the server (SIGSTOP freezes it, SIGCONT thaws it).
func (r *PrivateRedis) Signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(sig)
	}
}
