package main

import (
	"encoding/json"
	"testing"

	"github.com/credgate/credgate/service"
)

// TestSplitRowAgreesWithTheDecoder: on lines of the shape the server
// writes, the quick split reads what encoding/json reads (but the proof);
// any other shape is left to the decoder.
func TestSplitRowAgreesWithTheDecoder(t *testing.T) {
	answer := `{"check_id":"chk_1","subject":{"id":"91350100M000100Y43","kind":"organization"},"outcome":"restrict","measures":[{"id":"m","text":"含\"引号\",\"leaf_index\":9的文字"}]}`
	line := `{"line":12,"subject_id":"91350100M000100Y43","outcome":"restrict","answer":` + answer + `,"leaf_index":11,"proof":["aa","bb"]}` + "\n"
	a, ok := splitRow([]byte(line))
	var want service.ScreenedAnswer
	if err := json.Unmarshal([]byte(line), &want); err != nil {
		t.Fatal(err)
	}
	if !ok || a.Line != want.Line || a.SubjectID != want.SubjectID || a.Outcome != want.Outcome ||
		string(a.Answer) != string(want.Answer) || a.LeafIndex == nil || *a.LeafIndex != *want.LeafIndex {
		t.Fatalf("split %+v (ok %v), decoder %+v", a, ok, want)
	}
	for name, l := range map[string]string{
		"an error line":         `{"line":3,"subject_id":"x","error":{"code":"invalid_subject_id","detail":"d"}}`,
		"another member order":  `{"subject_id":"x","line":3,"outcome":"clear","answer":{},"leaf_index":1,"proof":[]}`,
		"an escaped subject":    `{"line":3,"subject_id":"a\"b","outcome":"clear","answer":{},"leaf_index":1,"proof":[]}`,
		"no proof":              `{"line":3,"subject_id":"x","outcome":"clear","answer":{},"leaf_index":1}`,
		"a negative leaf index": `{"line":3,"subject_id":"x","outcome":"clear","answer":{},"leaf_index":-1,"proof":[]}`,
		"a line number too big": `{"line":99999999999999999999,"subject_id":"x","outcome":"clear","answer":{},"leaf_index":1,"proof":[]}`,
		"trailing data":         `{"line":3,"subject_id":"x","outcome":"clear","answer":{},"leaf_index":1,"proof":[]}x`,
		"an empty line number":  `{"line":,"subject_id":"x","outcome":"clear","answer":{},"leaf_index":1,"proof":[]}`,
	} {
		if _, ok := splitRow([]byte(l)); ok {
			t.Errorf("%s: split, want the decoder", name)
		}
	}
}
