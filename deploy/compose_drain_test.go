package deploy

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/config"
)

// composeDirWithStandIns copies compose.yaml and its files into a
// temporary deploy/ with stand-ins for the secrets the header makes
// (their content is not read here), and loads it: what this file's tests
// check needs no credgate build.
func composeDirWithStandIns(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "deploy")
	for _, f := range []string{"compose.yaml", "compose/nginx.conf"} {
		copyFile(t, f, filepath.Join(dir, f))
	}
	secrets := filepath.Join(dir, "compose", "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"admin.env": "CREDGATE_ADMIN_CLIENT_SECRET=stand-in-secret\n", "token-signing.key": "x\n",
		"evidence-signing.key": "x\n", "pgpass": "x\n", "postgres-password": "x\n",
	} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Compose stops a container with SIGKILL 10 s after SIGTERM unless told
// otherwise: serve, draining for server.shutdown_timeout (30 s), was cut
// short. Each replica's grace must cover the drain and its close.
func TestComposeStopWaitsForTheDrain(t *testing.T) {
	p := loadCompose(t, composeDirWithStandIns(t))
	replicas := credgateServices(p, "serve")
	if len(replicas) == 0 {
		t.Fatal("no credgate replicas")
	}
	for _, r := range replicas {
		env := map[string]string{}
		for k, v := range r.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		environ := make([]string, 0, len(env))
		for k, v := range env {
			environ = append(environ, k+"="+v)
		}
		// The replica's settings, as serve loads them: an unknown
		// CREDGATE_ variable in the file is refused here too.
		cfg, err := config.NewLoader([]string{"server", "access"},
			config.WithEnviron(func() []string { return environ }),
			config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
			config.WithWarnings(nil)).Load()
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		const closing = 10 * time.Second // the spool, the evidence log, the store
		if g := r.StopGracePeriod; g == nil || time.Duration(*g) < cfg.Server.ShutdownTimeout+closing {
			t.Errorf("%s: stop_grace_period %v, want at least server.shutdown_timeout (%s) + %s, or compose kills serve mid-drain",
				r.Name, g, cfg.Server.ShutdownTimeout, closing)
		}
		// Only nginx may name the client in X-Forwarded-For: any other
		// container of the network trusted could pose as any partner to
		// the throttles.
		lb := p.Services["lb"].Networks["credgate"]
		if lb == nil || lb.Ipv4Address == "" {
			t.Fatalf("lb has no fixed address on the credgate network")
		}
		nginx := netip.MustParseAddr(lb.Ipv4Address)
		if len(cfg.Access.TrustedProxies) == 0 {
			t.Errorf("%s: no trusted proxies: every partner would be throttled as nginx", r.Name)
		}
		for _, tp := range cfg.Access.TrustedProxies {
			pre, err := netip.ParsePrefix(tp)
			if err != nil {
				pre = netip.PrefixFrom(netip.MustParseAddr(tp), nginx.BitLen())
			}
			if pre.Addr() != nginx || pre.Bits() != nginx.BitLen() {
				t.Errorf("%s: trusts %s as a proxy, want only nginx's %s", r.Name, tp, nginx)
			}
		}
	}
}
