package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlowUploadsOutliveTheReadTimeout: the file uploads (an entries
// import, a coverage file) stream in for as long as they take, past the
// server's read timeout, which is there for the ordinary requests' slow
// clients. A coverage file of 256 MiB sent over a slow link was cut at
// the read timeout (60 s in serve) whatever a proxy allowed.
func TestSlowUploadsOutliveTheReadTimeout(t *testing.T) {
	t.Parallel()
	h, _, tok := followUpHarness(t, 0)
	srv := httptest.NewUnstartedServer(h.handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	soon := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		path, token, head, row, want string
		status                       int
	}{
		{"/v1/coverage", tok, "subject_id,action,approved_at,reference\n", fuClear + ",government_procurement," + soon + ",许可\n",
			`"rows":6`, http.StatusOK},
		{"/v1/admin/entries:import", h.adminTok, "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n",
			// One decision a day: a file listing one entry twice is refused.
			fuListed + ",safety_production_blacklist,应急管理部,事故,《安全生产法》,2026-01-0{i},2026-01-10\n", `"imported":6`, http.StatusCreated},
	} {
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, tc.head)
			for i := range 6 { // 6 × 100 ms: twice the read timeout
				time.Sleep(100 * time.Millisecond)
				if _, err := io.WriteString(pw, strings.ReplaceAll(tc.row, "{i}", strconv.Itoa(i+1))); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+tc.path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tc.token)
		req.Header.Set("Content-Type", "text/csv")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Fatalf("%s: %d %s", tc.path, res.StatusCode, b)
		}
	}
}
