package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// nginxBlocks returns the bodies of the blocks of conf opened by a line
// matching head (its first group naming the block), by name.
func nginxBlocks(t *testing.T, conf string, head *regexp.Regexp) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range head.FindAllStringSubmatchIndex(conf, -1) {
		name := conf[m[2]:m[3]]
		depth, start := 1, m[1]
		end := start
		for ; end < len(conf) && depth > 0; end++ {
			switch conf[end] {
			case '{':
				depth++
			case '}':
				depth--
			}
		}
		if depth != 0 {
			t.Fatalf("nginx.conf: block %q is not closed", name)
		}
		out[name] = conf[start : end-1]
	}
	return out
}

var (
	nginxUpstream  = regexp.MustCompile(`(?m)^\s*upstream\s+(\S+)\s*\{`)
	nginxLocation  = regexp.MustCompile(`(?m)^\s*location\s+((?:=\s+)?\S+)\s*\{`)
	nginxProxyPass = regexp.MustCompile(`proxy_pass\s+http://([^;/\s]+)`)
	nginxServer    = regexp.MustCompile(`(?m)^\s*server\s+(\S+)`)
)

// TestNginxConsoleAffinity: the console keeps its sessions in the replica
// that signed the user in, so nginx must send each client's /console and
// /console/… to one replica (by its address), over the same replicas as
// the API, while the API keeps balancing by least connections.
func TestNginxConsoleAffinity(t *testing.T) {
	b, err := os.ReadFile("compose/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	upstreams := nginxBlocks(t, conf, nginxUpstream)
	locations := nginxBlocks(t, conf, nginxLocation)
	servers := func(up string) []string {
		var s []string
		for _, m := range nginxServer.FindAllStringSubmatch(upstreams[up], -1) {
			s = append(s, m[1])
		}
		slices.Sort(s)
		return s
	}
	upstreamOf := func(loc string) string {
		body, ok := locations[loc]
		if !ok {
			t.Fatalf("nginx.conf has no location %q", loc)
		}
		m := nginxProxyPass.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("location %q proxies to no upstream", loc)
		}
		if _, ok := upstreams[m[1]]; !ok {
			t.Fatalf("location %q proxies to %q, which is no upstream", loc, m[1])
		}
		if !strings.Contains(body, "X-Forwarded-Proto") || !strings.Contains(body, "X-Forwarded-For") {
			t.Errorf("location %q does not forward the client's address and scheme", loc)
		}
		return m[1]
	}
	api := upstreamOf("/")
	if !regexp.MustCompile(`(?m)^\s*least_conn;`).MatchString(upstreams[api]) {
		t.Errorf("the API's upstream %s is not balanced by least connections", api)
	}
	sticky := regexp.MustCompile(`(?m)^\s*(ip_hash;|hash\s+\$remote_addr(\s+consistent)?;)`)
	for _, loc := range []string{"= /console", "/console/"} {
		up := upstreamOf(loc)
		if !sticky.MatchString(upstreams[up]) {
			t.Errorf("location %q: upstream %s does not keep a client on one replica (ip_hash or hash $remote_addr)", loc, up)
		}
		if got, want := servers(up), servers(api); !slices.Equal(got, want) || len(want) != 3 {
			t.Errorf("location %q: upstream %s has replicas %v, the API's %v", loc, up, got, want)
		}
	}
}
