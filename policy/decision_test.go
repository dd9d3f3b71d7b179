package policy

import (
	"testing"
	"testing/fstest"
	"time"
)

// testCatalog is a small catalogue independent of the bundled data, so the
// decision's rules are tested on their own.
const testCatalogYAML = `
actions:
  - {id: government_procurement, name: 政府采购}
  - {id: executive_appointment, name: 任职}
  - {id: honors, name: 评先评优}
lists:
  - id: black
    name: 黑名单
    kind: black
    subject_kinds: [organization, person]
    validity: {years: 1}
    reaches: [legal_representative, principal]
    source: test
  - id: attention
    name: 重点关注
    kind: key_attention
    subject_kinds: [organization]
    source: test
  - id: red
    name: 红名单
    kind: red
    subject_kinds: [organization]
    source: test
measures:
  - {id: m-proc, list: black, actions: [government_procurement], effect: restrict, mandatory: true, applies_to: [organization], text: 依法限制参与政府采购, legal_basis: 政府采购法, authority: 财政部, source: test}
  - {id: m-proc-p, list: black, actions: [government_procurement], effect: prohibit, mandatory: true, applies_to: [person], text: 禁止, legal_basis: 法, authority: 部, source: test}
  - {id: m-exec, list: black, actions: [executive_appointment], effect: prohibit, mandatory: true, applies_to: [person], roles: [legal_representative], text: 不得担任法定代表人, legal_basis: 公司法, authority: 市场监管总局, source: test}
  - {id: m-att, list: attention, actions: [government_procurement], effect: strict_review, mandatory: false, applies_to: [organization], text: 从严审核, legal_basis: 法, authority: 部, source: test}
  - {id: m-red, list: red, actions: [government_procurement, honors], effect: incentive, mandatory: false, applies_to: [organization], text: 绿色通道, legal_basis: 法, authority: 部, source: test}
`

func testCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := LoadCatalog(fstest.MapFS{"test.yaml": {Data: []byte(testCatalogYAML)}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	org    = SubjectID{Kind: KindOrganization, Value: "91350100M000100Y43"}
	person = SubjectID{Kind: KindPerson, Value: "11010519491231002X"}
	day0   = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

func entry(id, list string, s SubjectID, published time.Time, c *Catalog) Entry {
	l, _ := c.List(list)
	return Entry{ID: id, Subject: s, List: list, PublishedAt: published, DecidedAt: published, ValidUntil: l.ValidUntil(published)}
}

func TestDecideOutcomes(t *testing.T) {
	c := testCatalog(t)
	black := entry("e1", "black", org, day0, c)
	att := entry("e2", "attention", org, day0, c)
	red := entry("e3", "red", org, day0, c)
	at := day0.AddDate(0, 1, 0)

	cases := []struct {
		name     string
		entries  []Entry
		action   string
		want     Outcome
		statuses map[string]MeasureStatus
	}{
		{"no entries is clear", nil, "government_procurement", OutcomeClear, nil},
		{"black list restricts", []Entry{black}, "government_procurement", OutcomeRestrict, map[string]MeasureStatus{"m-proc": MeasureApplied}},
		{"strongest effect wins", []Entry{att, black}, "government_procurement", OutcomeRestrict, map[string]MeasureStatus{"m-proc": MeasureApplied, "m-att": MeasureApplied}},
		{"key attention alone", []Entry{att}, "government_procurement", OutcomeStrictReview, nil},
		{"red alone is incentive", []Entry{red}, "honors", OutcomeIncentive, map[string]MeasureStatus{"m-red": MeasureApplied}},
		{"black and red: restriction wins, incentive overridden", []Entry{red, black}, "government_procurement", OutcomeRestrict,
			map[string]MeasureStatus{"m-proc": MeasureApplied, "m-red": MeasureOverridden}},
		{"no measure for the action is clear", []Entry{black}, "honors", OutcomeClear, nil},
		{"person measure does not hit the organisation", []Entry{black}, "executive_appointment", OutcomeClear, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(c, Query{Subject: org, Action: tc.action, At: at}, tc.entries)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s", d.Outcome, tc.want)
			}
			for id, st := range tc.statuses {
				found := false
				for _, m := range d.Measures {
					if m.Measure.ID == id {
						found = true
						if m.Status != st {
							t.Errorf("measure %s: status %s, want %s", id, m.Status, st)
						}
					}
				}
				if !found {
					t.Errorf("measure %s missing", id)
				}
			}
			if len(d.Findings) != len(tc.entries) {
				t.Errorf("%d findings, want %d", len(d.Findings), len(tc.entries))
			}
		})
	}
}

func TestDecideTimeAndStatus(t *testing.T) {
	c := testCatalog(t)
	e := entry("e1", "black", org, day0, c)
	for _, tc := range []struct {
		name string
		at   time.Time
		want Outcome
	}{
		{"before publication", day0.Add(-time.Second), OutcomeClear},
		{"at publication", day0, OutcomeRestrict},
		{"last moment of validity", day0.AddDate(1, 0, 0).Add(-time.Nanosecond), OutcomeRestrict},
		{"expired after one year", day0.AddDate(1, 0, 0), OutcomeClear},
	} {
		d, err := Decide(c, Query{Subject: org, Action: "government_procurement", At: tc.at}, []Entry{e})
		if err != nil {
			t.Fatal(err)
		}
		if d.Outcome != tc.want {
			t.Errorf("%s: outcome %s, want %s", tc.name, d.Outcome, tc.want)
		}
	}

	revoked := e
	rt := day0.AddDate(0, 2, 0)
	revoked.RevokedAt = &rt
	if d, _ := Decide(c, Query{Subject: org, Action: "government_procurement", At: rt.Add(-time.Second)}, []Entry{revoked}); d.Outcome != OutcomeRestrict {
		t.Errorf("before revocation: %s", d.Outcome)
	}
	if d, _ := Decide(c, Query{Subject: org, Action: "government_procurement", At: rt}, []Entry{revoked}); d.Outcome != OutcomeClear || len(d.Findings) != 0 {
		t.Errorf("after revocation: %s with %d findings", d.Outcome, len(d.Findings))
	}
}

func TestDecideObjectionSuspends(t *testing.T) {
	c := testCatalog(t)
	e := entry("e1", "black", org, day0, c)
	filed := day0.AddDate(0, 1, 0)
	decided := filed.AddDate(0, 0, 10)
	e.Objections = []Objection{{ID: "o1", FiledAt: filed, DecidedAt: &decided, Decision: "rejected"}}

	d, _ := Decide(c, Query{Subject: org, Action: "government_procurement", At: filed.Add(time.Hour)}, []Entry{e})
	if d.Outcome != OutcomeClear {
		t.Fatalf("during objection: outcome %s, want clear", d.Outcome)
	}
	if len(d.Measures) != 1 || d.Measures[0].Status != MeasureSuspended {
		t.Fatalf("during objection: measures %+v, want one suspended", d.Measures)
	}
	if len(d.Findings) != 1 || d.Findings[0].Status != StatusUnderObjection {
		t.Fatalf("during objection: findings %+v", d.Findings)
	}
	if d, _ := Decide(c, Query{Subject: org, Action: "government_procurement", At: decided}, []Entry{e}); d.Outcome != OutcomeRestrict {
		t.Fatalf("after rejection: outcome %s, want restrict", d.Outcome)
	}
}

func TestDecideReachesPersons(t *testing.T) {
	c := testCatalog(t)
	e := entry("e1", "black", org, day0, c)
	e.ResponsiblePersons = []ResponsiblePerson{{ID: person.Value, Role: RoleLegalRepresentative}}
	at := day0.AddDate(0, 1, 0)

	d, err := Decide(c, Query{Subject: person, Action: "executive_appointment", At: at}, []Entry{e})
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeProhibit {
		t.Fatalf("outcome %s, want prohibit", d.Outcome)
	}
	m := d.Measures[0]
	if m.Via == nil || m.Via.Organization != org.Value || m.Via.Role != RoleLegalRepresentative {
		t.Fatalf("via = %+v", m.Via)
	}

	// A principal is reached by the list but not by the role-limited measure.
	e.ResponsiblePersons[0].Role = RolePrincipal
	if d, _ := Decide(c, Query{Subject: person, Action: "executive_appointment", At: at}, []Entry{e}); d.Outcome != OutcomeClear || len(d.Findings) != 1 {
		t.Fatalf("principal: outcome %s, findings %d", d.Outcome, len(d.Findings))
	}
	// A role the list does not reach finds nothing.
	e.ResponsiblePersons[0].Role = RoleShareholder
	if d, _ := Decide(c, Query{Subject: person, Action: "executive_appointment", At: at}, []Entry{e}); len(d.Findings) != 0 {
		t.Fatalf("shareholder reached: %+v", d.Findings)
	}
	// Another person is not reached.
	other := SubjectID{Kind: KindPerson, Value: "110105194912310037"}
	if d, _ := Decide(c, Query{Subject: other, Action: "executive_appointment", At: at}, []Entry{e}); len(d.Findings) != 0 {
		t.Fatal("another person reached")
	}
}

func TestDecideUnknownAction(t *testing.T) {
	c := testCatalog(t)
	if _, err := Decide(c, Query{Subject: org, Action: "nope", At: day0}, nil); err == nil {
		t.Fatal("unknown action accepted")
	}
}

func BenchmarkDecide(b *testing.B) {
	c := testCatalog(b)
	entries := []Entry{entry("e1", "black", org, day0, c), entry("e2", "attention", org, day0, c), entry("e3", "red", org, day0, c)}
	at := day0.AddDate(0, 1, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(c, Query{Subject: org, Action: "government_procurement", At: at}, entries); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecideClear(b *testing.B) {
	c := testCatalog(b)
	at := day0.AddDate(0, 1, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(c, Query{Subject: org, Action: "government_procurement", At: at}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
