package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

// promiseIn finds a promise of inclusion in raw: raw itself, or the
// receipt.promise of a check answer whose evidence was spooled.
func promiseIn(raw []byte) ([]byte, bool) {
	var probe struct {
		Format  string `json:"format"`
		Receipt *struct {
			Promise json.RawMessage `json:"promise"`
		} `json:"receipt"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return nil, false
	}
	if probe.Format == evidence.PromiseFormat {
		return raw, true
	}
	if probe.Receipt != nil && len(probe.Receipt.Promise) > 0 && string(probe.Receipt.Promise) != "null" {
		return probe.Receipt.Promise, true
	}
	return nil, false
}

// verifyPromise checks a promise of inclusion and says what it proves: the
// replica signed that it spooled this record, which the log does not hold
// yet as far as the promise shows. A promise that verifies is errPromised,
// so that the exit status tells it from a proof.
func verifyPromise(path string, raw []byte, vs note.Verifiers, origin string, stdout io.Writer) error {
	p, err := evidence.ParsePromise(raw)
	if err != nil {
		return err
	}
	v, err := evidence.VerifyPromise(p, vs)
	if err != nil {
		return err
	}
	if origin != "" && v.Origin != origin {
		return fmt.Errorf("%w: the promise is for log %q, not %q", evidence.ErrPromise, v.Origin, origin)
	}
	fmt.Fprintf(stdout, "%s: PROMISED: %s record %s by %q at %s was spooled by replica %s at position %d of its spool, for log %q, signed by %s; "+
		"inclusion is promised, not yet proven: once the spool is integrated, GET /v1/evidence/receipts/%s gives the receipt that proves it\n",
		path, v.Record.Kind, v.Record.ID, v.Record.Partner, v.Record.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
		v.Replica, v.Position, v.Origin, strings.Join(v.KeyNames, ", "), v.Record.ID)
	return errPromised
}
