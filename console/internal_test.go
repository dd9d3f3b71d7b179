package console

import (
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/breaker"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Every message key a template or the code uses is in both catalogues,
// and the catalogues have the same keys: a page never shows a raw key.
func TestCataloguesAreComplete(t *testing.T) {
	cats, err := loadCatalogues()
	if err != nil {
		t.Fatal(err)
	}
	for k := range cats["zh"] {
		if !cats.has("en", k) {
			t.Errorf("%s is in zh.json but not in en.json", k)
		}
	}
	for k := range cats["en"] {
		if !cats.has("zh", k) {
			t.Errorf("%s is in en.json but not in zh.json", k)
		}
	}
	used := regexp.MustCompile(`\.T "([a-z_.]+)"|text\([^,]+, "([a-z_.]+)"|(?:refuse|renderSignin)\([^)]*"([a-z_.]+)"\)`)
	check := func(name string, b []byte) {
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			key := m[1] + m[2] + m[3]
			if !cats.has("zh", key) {
				t.Errorf("%s uses %s, which no catalogue has", name, key)
			}
		}
	}
	_ = fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(templateFS, path)
			check(path, b)
		}
		return nil
	})
	// Keys built from a value: every value they can take.
	for _, prefix := range []string{"outcome.", "role.", "kind.", "nav.", "status.", "state.", "partner_status.", "visibility.",
		"credential_kind.", "measure_status.", "health.", "breaker_state.", "health_section."} {
		var values []string
		switch prefix {
		case "health.":
			values = []string{"ok", "down"} // gateway.Server.Health's pings
		case "health_section.":
			values = []string{"cache", "sources", "spool"} // serve's gateway.WithStatus and WithSpool sections
		case "breaker_state.":
			values = breaker.StateNames()
		case "status.":
			values = []string{string(policy.StatusPending), string(policy.StatusActive), string(policy.StatusUnderObjection),
				string(policy.StatusAwaitingExit), string(policy.StatusExpired), string(policy.StatusRepaired), string(policy.StatusRevoked)}
		case "state.":
			values = []string{string(policy.StateApplied), string(policy.StateReviewed), string(policy.StateApproved), string(policy.StateRefused),
				string(policy.StateClosedByRevocation)}
		case "partner_status.":
			values = []string{string(service.PartnerActive), string(service.PartnerRevoked)}
		case "visibility.":
			values = []string{string(service.VisibilityStandard), string(service.VisibilityFull)}
		case "credential_kind.":
			values = []string{string(service.CredentialSecret), string(service.CredentialPublicKey)}
		case "measure_status.":
			values = []string{string(policy.MeasureApplied), string(policy.MeasureSuspended), string(policy.MeasureOverridden),
				string(policy.MeasureNotApplicable)}
		case "outcome.":
			for _, o := range outcomeOrder {
				values = append(values, string(o))
			}
		case "role.":
			values = []string{"admin", "auditor", "partner"}
		case "kind.":
			values = []string{string(policy.KindOrganization), string(policy.KindPerson)}
		case "nav.":
			values = pageNames
		}
		for _, v := range values {
			if !cats.has("zh", prefix+v) && !(prefix == "nav." && (v == "entry" || v == "partner")) {
				t.Errorf("no message %s%s", prefix, v)
			}
		}
	}
}

func TestSummarizeCountsChecksPerHourByOutcome(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)
	body := func(action string, o policy.Outcome) []byte {
		b, _ := json.Marshal(checkBody{Action: action, Outcome: o})
		return b
	}
	recs := []evidence.Record{
		{Partner: "a", At: now.Add(-10 * time.Minute), Body: body("government_procurement", policy.OutcomeRestrict)},
		{Partner: "a", At: now.Add(-20 * time.Minute), Body: body("government_procurement", policy.OutcomeClear)},
		{Partner: "b", At: now.Add(-3 * time.Hour), Body: body("bank_credit", policy.OutcomeClear)},
		{Partner: "b", At: now.Add(-30 * time.Hour), Body: body("bank_credit", policy.OutcomeClear)}, // before the chart
		{Partner: "c", At: now.Add(-time.Hour)},                                    // erased body
		{Partner: "c", At: now.Add(-time.Hour), Body: []byte(`{"status_id":"x"}`)}, // a subject status
	}
	st := summarize(recs, now)
	if st.Checks != 3 || st.Sampled != 6 {
		t.Fatalf("checks %d of %d", st.Checks, st.Sampled)
	}
	if len(st.Chart.Bars) != statsHours {
		t.Fatalf("%d bars", len(st.Chart.Bars))
	}
	last := st.Chart.Bars[statsHours-1]
	if len(last.Rects) != 2 || last.Rects[0].Class != "o-restrict" || last.Rects[1].Class != "o-clear" {
		t.Fatalf("the last hour: %+v", last)
	}
	// Stacked: the second sits on the first, both inside the plot.
	if r0, r1 := last.Rects[0], last.Rects[1]; r1.Y+r1.H != r0.Y || r0.Y+r0.H != chartH-chartBottom {
		t.Fatalf("not stacked on the axis: %+v", last.Rects)
	}
	if st.Actions[0] != (counted{"government_procurement", 2}) || st.Partners[0] != (counted{"a", 2}) {
		t.Fatalf("top: %v %v", st.Actions, st.Partners)
	}
	if empty := summarize(nil, now); empty.Checks != 0 || empty.Chart.Grid[len(empty.Chart.Grid)-1].Label != "4" {
		t.Fatalf("an empty chart: %+v", empty.Chart.Grid)
	}
}

func TestNiceCeil(t *testing.T) {
	for n, want := range map[int]int{0: 4, 4: 4, 5: 8, 9: 20, 21: 40, 41: 80, 81: 200, 1999: 2000, 2001: 4000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}

// FuzzParseLocalTime: a form's time never panics, and one it accepts is
// a real instant that formats back.
func FuzzParseLocalTime(f *testing.F) {
	for _, s := range []string{"", "2026-03-01T09:00", "2026-03-01T09:00:05", "2026-03-01", "2026-03-01T09:00:00+08:00",
		"2026-02-30T09:00", "9999-12-31T23:59:59Z", "yesterday", strings.Repeat("9", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseLocalTime(s, chinaTime)
		if err != nil || got == nil {
			return
		}
		if _, err := got.MarshalText(); err != nil && got.Year() >= 0 && got.Year() <= 9999 {
			t.Fatalf("%q parsed to %v, which does not format: %v", s, got, err)
		}
	})
}

// FuzzLanguage: any Accept-Language header or cookie picks a language
// the console has.
func FuzzLanguage(f *testing.F) {
	for _, s := range []string{"", "zh-CN,zh;q=0.9", "en-US,en;q=0.8", "fr, en;q=0.5", ";;;", "EN", "*"} {
		f.Add(s, "")
		f.Add(s, "en")
	}
	f.Fuzz(func(t *testing.T, header, ck string) {
		r := httptest.NewRequest("GET", "/console/", nil)
		r.Header.Set("Accept-Language", header)
		if ck != "" && !strings.ContainsAny(ck, "\x00\r\n;\" ") {
			r.Header.Set("Cookie", langCookie+"="+ck)
		}
		if l := language(r); !validLanguage(l) {
			t.Fatalf("language %q for %q / %q", l, header, ck)
		}
	})
}

// Every problem code the API can answer (openapi.yaml's Problem code enum,
// the one list kept true to gateway/problem.go by its contract tests) has
// a title in both catalogues: a code added later cannot show its English
// title on a Chinese page.
func TestEveryProblemCodeHasATitle(t *testing.T) {
	cats, err := loadCatalogues()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				Problem struct {
					Properties struct {
						Code struct {
							Enum []string `yaml:"enum"`
						} `yaml:"code"`
					} `yaml:"properties"`
				} `yaml:"Problem"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	codes := doc.Components.Schemas.Problem.Properties.Code.Enum
	if len(codes) < 50 {
		t.Fatalf("read %d problem codes from openapi.yaml", len(codes))
	}
	for _, code := range append(codes, "invalid_form") {
		for _, lang := range languages {
			if !cats.has(lang, "problem."+code) {
				t.Errorf("no problem.%s in %s.json", code, lang)
			}
		}
	}
}
