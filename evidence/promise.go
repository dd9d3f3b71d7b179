package evidence

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// A promise of inclusion is what a replica hands out for a record it
// spooled because the log could not commit it in time: the replica's
// signed statement that the record is at a position of its spool and will
// be integrated into the log. It is Certificate Transparency's signed
// certificate timestamp (RFC 6962 §3) for credgate's evidence: a promise
// now, an inclusion proof (the full receipt) once integrated.
//
// It is a signed note, signed with the log's key, whose text is
//
//	credgate-spool-promise/v1
//	<log origin>
//	<replica id>
//	<spool position, decimal>
//	<record id>
//	<record hash, hex>
//	<promised at, RFC 3339 UTC>
//
// Its first line is not an origin any checkpoint carries and its second
// is not a tree size, so a promise can never be read as a checkpoint.

// PromiseFormat names the promise encoding.
const PromiseFormat = "credgate-spool-promise/v1"

// ErrPromise: a promise that does not verify or is malformed.
var ErrPromise = errors.New("promise of inclusion does not verify")

// Promise is a self-contained promise of inclusion: the record (as a
// receipt carries it) and the signed note.
type Promise struct {
	Format     string        `json:"format"`
	Record     ReceiptRecord `json:"record"`
	RecordHash string        `json:"record_hash"`
	Replica    string        `json:"replica"`
	Position   uint64        `json:"spool_position"`
	PromisedAt time.Time     `json:"promised_at"`
	// Note is the signed promise, verbatim.
	Note string `json:"note"`
}

// promiseText is the signed text of a promise.
func promiseText(origin, replica string, pos uint64, id string, hash [HashSize]byte, at time.Time) string {
	return fmt.Sprintf("%s\n%s\n%s\n%d\n%s\n%s\n%s\n", PromiseFormat, origin, replica, pos, id,
		hex.EncodeToString(hash[:]), at.UTC().Format(time.RFC3339Nano))
}

// Promise signs the promise of inclusion of a spooled entry.
func (s *Signer) Promise(e SpoolEntry, at time.Time) (Promise, error) {
	r := e.Record
	text := promiseText(s.origin, e.Replica, e.Position, r.ID, r.Hash, at)
	msg, err := note.Sign(&note.Note{Text: text}, s.signer)
	if err != nil {
		return Promise{}, fmt.Errorf("sign promise: %w", err)
	}
	return Promise{
		Format: PromiseFormat,
		Record: ReceiptRecord{ID: r.ID, Kind: r.Kind, Partner: r.Partner, At: r.At.UTC(),
			Body: base64.StdEncoding.EncodeToString(r.Body), Salt: base64.StdEncoding.EncodeToString(r.Salt)},
		RecordHash: hex.EncodeToString(r.Hash[:]), Replica: e.Replica, Position: e.Position,
		PromisedAt: at.UTC(), Note: string(msg),
	}, nil
}

// ParsePromise decodes a promise strictly (one JSON object, no unknown
// fields, at most MaxReceiptSize bytes).
func ParsePromise(raw []byte) (Promise, error) {
	p, err := decodeStrict[Promise](raw, "promise")
	if err != nil {
		return Promise{}, err
	}
	if p.Format != PromiseFormat {
		return Promise{}, fmt.Errorf("%w: format %q, expected %q", ErrReceiptFormat, p.Format, PromiseFormat)
	}
	return p, nil
}

// VerifiedPromise is what a verified promise states.
type VerifiedPromise struct {
	Origin   string
	Replica  string
	Position uint64
	At       time.Time
	Record   Record
	KeyNames []string
}

// VerifyPromise checks a promise against the log's verifier keys: the
// record hash from body and salt, the note's signature, and that the
// signed text names this record, hash, replica and position. It proves
// that the replica promised inclusion, not that the record is in the log:
// the receipt does that, once the spool is integrated.
func VerifyPromise(p Promise, verifiers note.Verifiers) (VerifiedPromise, error) {
	body, err := base64.StdEncoding.Strict().DecodeString(p.Record.Body)
	if err != nil {
		return VerifiedPromise{}, fmt.Errorf("%w: record.body is not base64: %w", ErrReceiptFormat, err)
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(p.Record.Salt)
	if err != nil {
		return VerifiedPromise{}, fmt.Errorf("%w: record.salt is not base64: %w", ErrReceiptFormat, err)
	}
	claimed, err := decodeHex32(p.RecordHash)
	if err != nil {
		return VerifiedPromise{}, fmt.Errorf("%w: record_hash: %w", ErrReceiptFormat, err)
	}
	rec := Record{ID: p.Record.ID, Kind: p.Record.Kind, Partner: p.Record.Partner, At: p.Record.At, Body: body, Salt: salt, Hash: claimed}
	if err := rec.Validate(); err != nil {
		return VerifiedPromise{}, fmt.Errorf("%w: %w", ErrReceiptFormat, err)
	}
	if got := RecordHash(salt, body); got != claimed {
		return VerifiedPromise{}, fmt.Errorf("%w: SHA-256(salt ‖ body) is %x but the promise's record_hash is %x: the body or salt was altered",
			ErrRecordHash, got, claimed)
	}
	if len(p.Note) > MaxNoteSize {
		return VerifiedPromise{}, fmt.Errorf("%w: note longer than %d bytes", ErrReceiptFormat, MaxNoteSize)
	}
	n, err := note.Open([]byte(p.Note), verifiers)
	if err != nil {
		return VerifiedPromise{}, fmt.Errorf("%w: %w", ErrPromise, err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 8 || lines[0] != PromiseFormat || lines[7] != "" {
		return VerifiedPromise{}, fmt.Errorf("%w: the signed text is not a %s promise", ErrPromise, PromiseFormat)
	}
	pos, err := strconv.ParseUint(lines[3], 10, 64)
	if err != nil {
		return VerifiedPromise{}, fmt.Errorf("%w: spool position %q", ErrPromise, lines[3])
	}
	at, err := time.Parse(time.RFC3339Nano, lines[6])
	if err != nil {
		return VerifiedPromise{}, fmt.Errorf("%w: time %q", ErrPromise, lines[6])
	}
	if lines[2] != p.Replica || pos != p.Position || lines[4] != rec.ID || lines[5] != p.RecordHash || !at.Equal(p.PromisedAt) {
		return VerifiedPromise{}, fmt.Errorf("%w: the signed promise is of replica %s, position %d, record %s with hash %s at %s, not what the promise says around it",
			ErrPromise, lines[2], pos, lines[4], lines[5], lines[6])
	}
	var names []string
	for _, s := range n.Sigs {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return VerifiedPromise{Origin: lines[1], Replica: lines[2], Position: pos, At: at, Record: rec, KeyNames: names}, nil
}
