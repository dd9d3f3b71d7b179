package console_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

// The import form carries its CSRF token in its body (and the script in
// a header), never in its address: a token in the query alone is refused.
func TestImportTokenIsNotInTheAddress(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	form := regexp.MustCompile(`<form[^>]*id="import-form"[^>]*>`).FindString(b.get("/console/entries").body)
	if form == "" || strings.Contains(form, "csrf") || !strings.Contains(form, `action="/console/entries/import"`) {
		t.Fatalf("the import form: %s", form)
	}
	sent := 0
	line := func() string {
		sent++
		return `{"subject_id":"` + testenv.USCC(t, "91110108MA01MP70"+string(rune('0'+sent))) + `","list":"safety_production_blacklist","originating_department":"应急管理部","reason":"x","legal_basis":"y","decided_at":"2026-07-01T00:00:00+08:00","published_at":"2026-07-03T00:00:00+08:00"}` + "\n"
	}
	send := func(query, header, field string) int {
		t.Helper()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		if field != "" {
			_ = mw.WriteField("csrf", field)
		}
		fw, _ := mw.CreateFormFile("file", "e.ndjson")
		_, _ = io.WriteString(fw, line())
		_ = mw.Close()
		req := httptest.NewRequest(http.MethodPost, "/console/entries/import"+query, &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if header != "" {
			req.Header.Set("X-CSRF-Token", header)
		}
		for _, c := range b.cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := send("?csrf="+url.QueryEscape(token), "", ""); code != http.StatusForbidden {
		t.Errorf("a token in the query alone: %d", code)
	}
	if code := send("", "", "wrong"); code != http.StatusForbidden {
		t.Errorf("a wrong token in the body: %d", code)
	}
	if code := send("", token, ""); code != http.StatusSeeOther {
		t.Errorf("the token in the header: %d", code)
	}
	if code := send("", "", token); code != http.StatusSeeOther {
		t.Errorf("the token in the body: %d", code)
	}
}
