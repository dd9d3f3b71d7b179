package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// readBody reads what io.ReadAll reads, into the buffer it is given,
// however the reader splits the body, and passes a reader's error on.
func TestReadBodyAsReadAll(t *testing.T) {
	body := strings.Repeat(`{"subject":{"id":"x"}}`, 300) // past the buffer's capacity
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(body),
		"one byte": iotest.OneByteReader(strings.NewReader(body)),
		"data+EOF": iotest.DataErrReader(strings.NewReader(body)),
	} {
		got, err := readBody(r, make([]byte, 0, 64)[:0])
		if err != nil || string(got) != body {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(body))
		}
	}
	buf := []byte("stale")
	if got, err := readBody(strings.NewReader("new"), buf[:0]); err != nil || string(got) != "new" {
		t.Errorf("reused buffer: %q, %v", got, err)
	}
	limited := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader([]byte(body))), 100)
	var tooLarge *http.MaxBytesError
	if _, err := readBody(limited, nil); !errors.As(err, &tooLarge) {
		t.Errorf("over the limit: %v, want *http.MaxBytesError", err)
	}
}
