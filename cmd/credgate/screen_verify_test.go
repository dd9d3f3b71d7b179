package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// topOutcome is a results line's own outcome (not its answer's, which
// follows "answer":{…).
var topOutcome = regexp.MustCompile(`^(\{"line":\d+,"subject_id":"[^"]*","outcome":")([a-z_]+)(")`)

// TestScreenRefusesResultsTheTreeDoesNotProve: credgate screen holds every
// downloaded row to its answer and the answers to the job's root. Between
// it and a real server, a proxy alters the results as a server's disk
// could hold them: a restricted subject's outcome column made clear
// (NDJSON and CSV), an answer turned into an error row, an answer's own
// outcome rewritten. Each is exit 1 naming the mismatch, with no results
// file and no chained receipt; untouched, the same job's results pass.
func TestScreenRefusesResultsTheTreeDoesNotProve(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	f := newScreenFixture(t, 20)
	ctx := t.Context()
	book := filepath.Join(f.dir, "book.csv")
	if err := os.WriteFile(book, []byte("id\n"+strings.Join(f.subjects, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--credentials", f.partnerCred, "--poll", "100ms"}
	first := filepath.Join(f.dir, "first.ndjson")
	var stdout, stderr bytes.Buffer
	if code := run(ctx, append([]string{"screen", book, "--action", "bank_credit", "--out", first, "--url", f.srv.base}, common...),
		&stdout, &stderr); code != 0 {
		t.Fatalf("untampered: exit %d\n%s", code, stderr.String())
	}
	m := regexp.MustCompile(`\(screening (scr_[0-9a-f]+),`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no job in %q", stdout.String())
	}
	jobID := m[1]

	// tamper is applied to the results' body by the proxy.
	var tamper func(t *testing.T, body []byte, format string) []byte
	target, _ := url.Parse(f.srv.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(res *http.Response) error {
		if !strings.HasSuffix(res.Request.URL.Path, "/results") || res.StatusCode != http.StatusOK || tamper == nil {
			return nil
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		body = tamper(t, body, res.Request.URL.Query().Get("format"))
		res.Body = io.NopCloser(bytes.NewReader(body))
		res.ContentLength = int64(len(body))
		res.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)

	// The line of the first listed subject (line 4: i%10 == 3).
	const listedLine = 4
	editLine := func(t *testing.T, body []byte, n int, edit func(string) string) []byte {
		lines := strings.SplitAfter(string(body), "\n")
		was := lines[n-1]
		lines[n-1] = edit(was)
		if lines[n-1] == was {
			t.Fatalf("tamper left line %d as it was: %s", n, was)
		}
		return []byte(strings.Join(lines, ""))
	}
	cases := []struct {
		name, out, want string
		tamper          func(t *testing.T, body []byte, format string) []byte
	}{
		{"outcome column ndjson", "a.ndjson", "its outcome \"clear\" is not its answer's", func(t *testing.T, body []byte, _ string) []byte {
			return editLine(t, body, listedLine, func(l string) string { return topOutcome.ReplaceAllString(l, "${1}clear${3}") })
		}},
		{"outcome column csv", "b.csv", "its outcome \"clear\" is not its answer's", func(t *testing.T, body []byte, _ string) []byte {
			rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
			if err != nil || rows[listedLine][2] == "clear" {
				t.Fatalf("csv results: %v %v", err, rows[listedLine])
			}
			rows[listedLine][2] = "clear"
			var b bytes.Buffer
			w := csv.NewWriter(&b)
			_ = w.WriteAll(rows)
			return b.Bytes()
		}},
		{"answer made an error", "c.ndjson", "the job has 20 subjects and a tree of 20 answers", func(t *testing.T, body []byte, _ string) []byte {
			return editLine(t, body, 20, func(string) string {
				return fmt.Sprintf("{\"line\":20,\"subject_id\":%q,\"error\":{\"code\":\"invalid_subject_id\",\"detail\":\"x\"}}\n", f.subjects[19])
			})
		}},
		{"answer rewritten", "d.ndjson", "make the root", func(t *testing.T, body []byte, _ string) []byte {
			return editLine(t, body, listedLine, func(l string) string {
				out := topOutcome.FindStringSubmatch(l)[2]
				l = topOutcome.ReplaceAllString(l, "${1}clear${3}")
				return strings.Replace(l, `"outcome":"`+out+`","measures":[`, `"outcome":"clear","measures":[`, 1)
			})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tamper = c.tamper
			out := filepath.Join(f.dir, c.out)
			receipts := filepath.Join(f.dir, "receipts-"+c.out)
			stdout.Reset()
			stderr.Reset()
			code := run(ctx, append([]string{"screen", "--job", jobID, "--out", out, "--receipts", receipts, "--url", ps.URL}, common...),
				&stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), "results do not match the job's tree") || !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("exit %d, want 1 naming %q\n%s%s", code, c.want, stdout.String(), stderr.String())
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s written: %v", out, err)
			}
			if ents, _ := os.ReadDir(receipts); len(ents) != 0 {
				t.Errorf("%d chained receipts written", len(ents))
			}
		})
	}
	// Through the proxy, untouched: the same job's results pass.
	tamper = nil
	if code := run(ctx, append([]string{"screen", "--job", jobID, "--out", filepath.Join(f.dir, "e.csv"), "--url", ps.URL}, common...),
		&stdout, &stderr); code != 0 {
		t.Fatalf("untampered through the proxy: exit %d\n%s", code, stderr.String())
	}
}
