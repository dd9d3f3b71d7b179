package service

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
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
