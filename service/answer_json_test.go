package service

import (
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// The answer sent is the recorded body with the receipt added, and means
// exactly what encoding the whole answer would.
func TestCheckAnswerJSONIsTheRecordedBody(t *testing.T) {
	ans := CheckAnswer{
		CheckID: "c1", Partner: "p", Subject: SubjectView{ID: "91350100M000100Y43", Kind: "organization"},
		Action: "government_procurement", Outcome: "restrict", Measures: []MeasureView{{ID: "m", Text: "<限制>&"}},
		Entries: []EntryView{}, CatalogRevision: "cat-1", DataAsOf: time.Unix(1, 0).UTC(), CheckedAt: time.Unix(2, 0).UTC(),
	}
	body, err := json.Marshal(ans)
	if err != nil {
		t.Fatal(err)
	}
	ans.body = body
	ans.Receipt = &ReceiptView{LogIndex: 7, RecordHash: "ab", LeafHash: "cd"}
	got, err := ans.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(ans)
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %v: %s", err, got)
	}
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("spliced answer differs:\n got %s\nwant %s", got, want)
	}
	if string(got[:len(body)-1]) != string(body[:len(body)-1]) {
		t.Fatal("the answer does not start with the recorded body")
	}
}

// The receipt is written without reflection exactly as encoding/json
// writes it, and through encoding/json when it is spooled or unusual.
func TestReceiptJSONAsEncodingJSON(t *testing.T) {
	for _, r := range []ReceiptView{
		{LogIndex: 0, RecordHash: "", LeafHash: ""},
		{LogIndex: 18446744073709551615, RecordHash: "00ff", LeafHash: "ABCdef0123"},
		{LogIndex: 3, RecordHash: "<a&b>", LeafHash: "\"\u2028"},
		{State: "spooled", RecordHash: "ab"},
	} {
		got, err := r.appendJSON([]byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(r)
		if string(got) != "x"+string(want) {
			t.Errorf("receipt %+v:\n got %s\nwant x%s", r, got, want)
		}
	}
}

// The answer written without reflection is byte for byte what
// encoding/json writes, for every field, empty or set, and for strings and
// times encoding/json escapes or refuses.
func TestAnswerJSONAsEncodingJSON(t *testing.T) {
	cst := time.FixedZone("CST", 8*60*60)
	odd := time.FixedZone("odd", -(3*60*60 + 30*60 + 7))
	t1 := time.Date(2026, 12, 4, 10, 0, 0, 123456789, cst)
	t2 := time.Date(2025, 1, 2, 3, 4, 5, 0, odd)
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	strs := []string{"", "plain", "采购-1", "<限制>&", "a\"b\\c", "tab\there\n", "\x00\x1f\x7f", "\u2028\u2029", "bad \xff utf-8", "\xe2\x80", "😀/é"}
	full := CheckAnswer{
		CheckID: "0193-check", Partner: "cg_partner", Subject: SubjectView{ID: "91350100M000100Y43", Kind: "organization"},
		Action: "government_procurement", Reference: "ref", Outcome: "restrict",
		Measures: []MeasureView{
			{ID: "m1", List: "l", Effect: "restrict", Mandatory: true, Status: "applied", Text: "t", LegalBasis: "lb", Authority: "a", Source: "s"},
			{ID: "m2", EntryID: "e1", Via: &ViaView{Organization: "org", Role: "legal_representative"}, Until: &t1, Basis: "eligibility",
				Reason: "why", Scope: &policy.Scope{Regions: []string{"370100"}, Industries: []string{"coal<"}}, Placeholder: "***区"},
		},
		Entries: []EntryView{
			{ID: "e1", List: "l", ListName: "名单", ListKind: "black", Status: "active", LegalBasis: "lb", DecidedAt: t1, PublishedAt: t2},
			{ID: "e2", OriginatingDepartment: "dept", Reason: "r", ValidUntil: &t2, Via: &ViaView{Organization: "o"}},
		},
		CatalogRevision: "rev", DataAsOf: t1, CheckedAt: t2, AsOf: &t2, ValidAt: &t1,
		Context:      ContextView{Region: "110000", Industry: "i", SubjectType: "s", EmployerType: "e"},
		Unverifiable: &UnverifiableView{Reason: "stale", Detail: "d", Source: "src"},
	}
	cases := map[string]CheckAnswer{
		"zero":         {},
		"empty slices": {Measures: []MeasureView{}, Entries: []EntryView{}},
		"full":         full,
		"receipt": func() CheckAnswer {
			a := full
			a.Receipt = &ReceiptView{LogIndex: 9, RecordHash: "ab", LeafHash: "cd"}
			return a
		}(),
		"spooled":  func() CheckAnswer { a := full; a.Receipt = &ReceiptView{State: "spooled", RecordHash: "ab"}; return a }(),
		"far time": func() CheckAnswer { a := full; a.CheckedAt = far; return a }(),
		"far until": func() CheckAnswer {
			a := full
			a.Measures = []MeasureView{{ID: "m", Until: &far}}
			return a
		}(),
		"context in part": {Context: ContextView{Industry: "i", EmployerType: "e"}},
	}
	for i, s := range strs {
		a := full
		a.CheckID, a.Partner, a.Action, a.Reference, a.CatalogRevision = s, s, s, s, s
		a.Subject = SubjectView{ID: s, Kind: policy.SubjectKind(s)}
		a.Measures = []MeasureView{{ID: s, List: s, Text: s, LegalBasis: s, Authority: s, Source: s, EntryID: s, Reason: s, Placeholder: s,
			Via: &ViaView{Organization: s, Role: policy.Role(s)}}}
		a.Entries = []EntryView{{ID: s, List: s, ListName: s, OriginatingDepartment: s, Reason: s, LegalBasis: s}}
		a.Context = ContextView{Region: s, Industry: s}
		a.Unverifiable = &UnverifiableView{Reason: s, Detail: s, Source: s}
		cases["string "+strconv.Itoa(i)] = a
	}
	for name, a := range cases {
		want, wantErr := json.Marshal(a)
		got, err := a.encode()
		if (err != nil) != (wantErr != nil) || string(got) != string(want) {
			t.Errorf("%s:\n got %s (%v)\nwant %s (%v)", name, got, err, want, wantErr)
		}
		if name == "full" || name == "string 3" {
			if _, ok := a.appendJSON(nil); !ok {
				t.Errorf("%s: written through encoding/json, not without reflection", name)
			}
		}
	}
}

// The receipt's two digests are written into one string: each must be the
// lowercase hex of its own hash.
func TestReceiptDigestsAsHex(t *testing.T) {
	r := evidence.Record{ID: "c1", Kind: evidence.KindCheck, Partner: "p", At: time.Unix(3, 0), Index: 42, Body: []byte(`{}`)}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	leaf := evidence.LeafHash(r)
	got := receipt(r)
	if got.LogIndex != 42 || got.RecordHash != hex.EncodeToString(r.Hash[:]) || got.LeafHash != hex.EncodeToString(leaf[:]) {
		t.Errorf("receipt %+v, want index 42, record hash %x, leaf hash %x", got, r.Hash, leaf)
	}
}
