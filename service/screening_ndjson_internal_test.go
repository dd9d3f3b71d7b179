package service

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A bank's NDJSON line carrying its own reference beside the id is
// refused (bodies are decoded strictly), and the refusal names the field
// and says where other columns may go, rather than only that the line is
// not {"id": "…"}; a line that is not JSON at all says so.
func TestScreeningNDJSONNamesUnknownField(t *testing.T) {
	body := strings.NewReader(`{"id":"914403001922038216"}` + "\n" + `{"id":"914403001922038216","ref":"loan-1"}` + "\n" + "914403001922038216\n")
	_, err := writeScreeningInput(filepath.Join(t.TempDir(), "input"), body, FormatNDJSON)
	var fe *ScreeningFileError
	if !errors.As(err, &fe) || len(fe.Lines) != 2 {
		t.Fatalf("err = %v, want two bad lines", err)
	}
	if l := fe.Lines[0]; l.Line != 2 || !strings.Contains(l.Err.Error(), `unknown field "ref"`) || !strings.Contains(l.Err.Error(), "CSV") {
		t.Errorf("line with a reference: %d %v", l.Line, l.Err)
	}
	if l := fe.Lines[1]; l.Line != 3 || !strings.Contains(l.Err.Error(), "not one JSON object") {
		t.Errorf("line that is not JSON: %d %v", l.Line, l.Err)
	}
}
