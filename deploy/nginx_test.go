package deploy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/gateway"
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

// nginxBlock is a block of nginx.conf (or the file itself): its
// directives and the blocks within it, in order.
type nginxBlock struct {
	name       string
	args       []string
	directives [][]string // name and arguments
	blocks     []*nginxBlock
}

// parseNginx parses the directives and blocks of conf: words, quoted
// strings, `;`, `{`, `}` and comments, which is all nginx.conf is.
func parseNginx(t *testing.T, conf string) *nginxBlock {
	t.Helper()
	root := &nginxBlock{}
	stack := []*nginxBlock{root}
	var words []string
	for i := 0; i < len(conf); {
		c := conf[i]
		switch {
		case c == '#':
			for i < len(conf) && conf[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ';':
			if len(words) > 0 {
				top := stack[len(stack)-1]
				top.directives = append(top.directives, words)
			}
			words = nil
			i++
		case c == '{':
			if len(words) == 0 {
				t.Fatal("nginx.conf: a block without a name")
			}
			b := &nginxBlock{name: words[0], args: words[1:]}
			stack[len(stack)-1].blocks = append(stack[len(stack)-1].blocks, b)
			stack = append(stack, b)
			words = nil
			i++
		case c == '}':
			if len(stack) == 1 || len(words) > 0 {
				t.Fatalf("nginx.conf: unexpected } (words %v)", words)
			}
			stack = stack[:len(stack)-1]
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(conf[i+1:], c)
			if j < 0 {
				t.Fatal("nginx.conf: unclosed quote")
			}
			words = append(words, conf[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(conf) && !strings.ContainsRune(" \t\r\n;{}#", rune(conf[j])) {
				j++
			}
			words = append(words, conf[i:j])
			i = j
		}
	}
	if len(stack) != 1 || len(words) > 0 {
		t.Fatal("nginx.conf: unclosed block or directive")
	}
	return root
}

// children are b's blocks named name.
func (b *nginxBlock) children(name string) []*nginxBlock {
	var out []*nginxBlock
	for _, c := range b.blocks {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// values are the arguments of b's directives named name.
func (b *nginxBlock) values(name string) [][]string {
	var out [][]string
	for _, d := range b.directives {
		if d[0] == name {
			out = append(out, d[1:])
		}
	}
	return out
}

// pickLocation is the location of server that nginx picks for uri: an
// exact match, else the longest prefix. (The file has no regular
// expression locations; the test insists.)
func pickLocation(t *testing.T, server *nginxBlock, uri string) *nginxBlock {
	t.Helper()
	var best *nginxBlock
	for _, l := range server.children("location") {
		switch {
		case len(l.args) == 2 && l.args[0] == "=":
			if l.args[1] == uri {
				return l
			}
		case len(l.args) == 1:
			if strings.HasPrefix(uri, l.args[0]) && (best == nil || len(l.args[0]) > len(best.args[0])) {
				best = l
			}
		default:
			t.Fatalf("location %v: only exact and prefix locations are understood here", l.args)
		}
	}
	if best == nil {
		t.Fatalf("no location for %s", uri)
	}
	return best
}

// effective is the value of directive name for a request in loc: its
// own, else the server's, else http's, else def (nginx's default).
func effective(name, def string, levels ...*nginxBlock) string {
	for i := len(levels) - 1; i >= 0; i-- {
		if v := levels[i].values(name); len(v) > 0 {
			return strings.Join(v[len(v)-1], " ")
		}
	}
	return def
}

// nginxSize is an nginx size (1024, 8k, 64m, 1g) in bytes.
func nginxSize(t *testing.T, s string) int64 {
	t.Helper()
	mult := int64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult, s = 1<<10, s[:len(s)-1]
	case "m":
		mult, s = 1<<20, s[:len(s)-1]
	case "g":
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("size %q: %v", s, err)
	}
	return n * mult
}

// nginxTime is an nginx time in one unit (500ms, 65s, 10m, 1h; a bare
// number is seconds).
func nginxTime(t *testing.T, s string) time.Duration {
	t.Helper()
	if _, err := strconv.Atoi(s); err == nil {
		s += "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return d
}

// uploadTimeout is what the file uploads' timeouts must outlast: nginx
// waiting on a replica that reads a body or works out its answer (an
// import of ten million entries takes some 3 min 14 s over HTTP).
const uploadTimeout = 10 * time.Minute

// TestNginxUploads: nginx lets through the bodies credgate accepts — an
// entries import up to gateway.MaxImportBody, a screening file up to
// gateway.MaxScreeningBody, an approvals file up to
// gateway.MaxCoverageBody, the console's import, every other API body —
// streams the three file uploads to the replica as they arrive, not
// spooled to nginx's disk first, and waits for their answers long enough
// that a partner is not told 504 while its import may still commit.
func TestNginxUploads(t *testing.T) {
	b, err := os.ReadFile("compose/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := parseNginx(t, string(b))
	https := conf.children("http")
	if len(https) != 1 {
		t.Fatalf("%d http blocks", len(https))
	}
	http := https[0]
	var server *nginxBlock
	for _, s := range http.children("server") {
		for _, l := range s.values("listen") {
			if l[0] == "8080" {
				server = s
			}
		}
	}
	if server == nil {
		t.Fatal("no server listening on 8080, the partners' port")
	}
	api := pickLocation(t, server, "/v1/checks")
	for _, u := range []struct {
		uri       string
		limit     int64
		streamed  bool
		upstreams string
	}{
		{"/v1/admin/entries:import", gateway.MaxImportBody, true, "api"},
		{"/v1/screenings", gateway.MaxScreeningBody, true, "api"},
		{"/v1/coverage", gateway.MaxCoverageBody, true, "api"},
		{"/v1/checks:batch", gateway.MaxBatchBody, false, "api"},
		{"/v1/watchlist", gateway.MaxWatchlistBody, false, "api"},
		{"/v1/checks", gateway.MaxJSONBody, false, "api"},
		{"/console/entries/import", console.MaxImportBody, false, "console"},
	} {
		loc := pickLocation(t, server, u.uri)
		levels := []*nginxBlock{http, server, loc}
		limit := effective("client_max_body_size", "1m", levels...)
		if n := nginxSize(t, limit); n != 0 && n < u.limit {
			t.Errorf("%s (location %v): client_max_body_size %s is below credgate's %d bytes: nginx refuses with 413 what credgate accepts", u.uri, loc.args, limit, u.limit)
		}
		if u.upstreams == "api" && fmt.Sprint(loc.values("proxy_pass")) != fmt.Sprint(api.values("proxy_pass")) {
			t.Errorf("%s (location %v) proxies to %v, the API to %v", u.uri, loc.args, loc.values("proxy_pass"), api.values("proxy_pass"))
		}
		// proxy_set_header is inherited only by a location that sets none.
		headers := fmt.Sprint(loc.values("proxy_set_header"))
		if !strings.Contains(headers, "X-Forwarded-For") || !strings.Contains(headers, "X-Forwarded-Proto") {
			t.Errorf("%s (location %v) does not forward the client's address and scheme: %s", u.uri, loc.args, headers)
		}
		if !u.streamed {
			continue
		}
		if v := effective("proxy_request_buffering", "on", levels...); v != "off" {
			t.Errorf("%s (location %v): proxy_request_buffering %s: nginx would spool the whole file to its disk before credgate sees a byte", u.uri, loc.args, v)
		}
		if v := effective("proxy_http_version", "1.0", levels...); v != "1.1" {
			t.Errorf("%s (location %v): proxy_http_version %s: a chunked body is buffered whole for HTTP/1.0", u.uri, loc.args, v)
		}
		for _, d := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
			if v := effective(d, "60s", levels...); nginxTime(t, v) < uploadTimeout {
				t.Errorf("%s (location %v): %s %s is shorter than %v: a partner would be told 504 while its upload goes on", u.uri, loc.args, d, v, uploadTimeout)
			}
		}
	}
}

// quietLevels are the error_log levels above "error", at which nginx does
// not log a request that failed upstream (timed out, refused, dropped, no
// replica left): it logs those at "error", with the request line.
var quietLevels = []string{"crit", "alert", "emerg"}

// TestNginxLogsNoSubjects: the API and the console carry subjects' ID
// numbers in paths and queries (GET /v1/subjects/{id}/status,
// ?subject_id=, /console/subjects?id=), and nginx writes a request's path
// and query into its access log, and into its error log with each error
// of the request. So the access log is off, and the error log, to the
// container's stderr, is set in the main context (where nginx would
// otherwise open its default file at level "error") above "error", and no
// block lowers it again.
func TestNginxLogsNoSubjects(t *testing.T) {
	b, err := os.ReadFile("compose/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := parseNginx(t, string(b))
	top := conf.values("error_log")
	if len(top) != 1 {
		t.Fatalf("the main context has %d error_log directives, want one (without one nginx logs at \"error\")", len(top))
	}
	if dest := top[0][0]; dest != "stderr" && dest != "/dev/stderr" {
		t.Errorf("error_log goes to %s, not the container's log (stderr)", dest)
	}
	var walk func(where string, b *nginxBlock)
	walk = func(where string, b *nginxBlock) {
		for _, v := range b.values("error_log") {
			level := "error" // nginx's default
			if len(v) > 1 {
				level = v[1]
			}
			if !slices.Contains(quietLevels, level) {
				t.Errorf("%s: error_log %s: at %q nginx logs the request line, ID numbers and all, of every request a replica failed; want one of %v",
					where, strings.Join(v, " "), level, quietLevels)
			}
		}
		for _, v := range b.values("access_log") {
			if len(v) != 1 || v[0] != "off" {
				t.Errorf("%s: access_log %s: the access log names every request's path and query", where, strings.Join(v, " "))
			}
		}
		for _, c := range b.blocks {
			walk(strings.TrimSpace(where+" "+c.name+" "+strings.Join(c.args, " ")), c)
		}
	}
	walk("main", conf)
	https := conf.children("http")
	if len(https) != 1 {
		t.Fatalf("%d http blocks", len(https))
	}
	if v := https[0].values("access_log"); len(v) != 1 || fmt.Sprint(v[0]) != "[off]" {
		t.Errorf("http: access_log %v, want off (nginx's default logs every request line to a file)", v)
	}
}
