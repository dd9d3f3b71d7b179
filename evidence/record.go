// Package evidence is credgate's append-only log of checks and
// administrative acts: what was asked, what was answered, by whom and when.
// Records are committed durably, in groups, before an answer leaves; each
// record is bound to its body by a salted hash so that the body (which may
// hold personal data) can later be erased without breaking the log.
//
// The log is an RFC 6962 Merkle tree (tree.go) that the stores grow in the
// appending transaction; Log (log.go) signs C2SP checkpoints of it
// (checkpoint.go) and builds receipts (receipt.go) that anyone holding the
// verifier key can check offline. The package does no I/O of its own: it
// declares the Sink and TreeStore it needs, and the adapters implement them.
package evidence

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"time"
)

// Kind of a record.
type Kind string

// Record kinds.
const (
	KindCheck Kind = "check"
	KindAdmin Kind = "admin"
	// KindFeedback is a partner's report of what it did with a check's
	// answer (执行反馈); a correction is a later record of the same kind.
	KindFeedback Kind = "feedback"
	// KindCommitment is a credit commitment (信用承诺) recorded, fulfilled
	// or breached: each state change is a record of its own.
	KindCommitment Kind = "commitment"
)

// SaltSize is the size of a record's salt in bytes.
const SaltSize = 16

// Record is one entry of the evidence log.
type Record struct {
	// Index is the record's position in the log, assigned on append.
	Index uint64
	// ID is unique across the log: a check id or an act id.
	ID      string
	Kind    Kind
	Partner string // client id of the caller
	At      time.Time
	// Body is the canonical JSON of what was answered or done.
	Body []byte
	Salt []byte
	// Hash is SHA-256(Salt || Body): what the log commits to.
	Hash [32]byte
	// Promise is set on a record that a replica spooled because the log
	// could not commit it in time: its inclusion is promised, not proven,
	// and Index means nothing yet.
	Promise *Promise
	// Check is what the checker that wrote a check record's Body knows
	// of it, or nil (records read back, replayed from a spool, of other
	// kinds, re-runs). A store may derive the check's index rows from it
	// instead of parsing Body again; Body stays the record, and Check
	// must say exactly what Body says.
	Check *CheckFacts
}

// CheckFacts are the members of a check record's body that the stores
// index: subject.id, action, outcome, context.region, the list of each
// applied measure in the body's order, and idempotency_key.
type CheckFacts struct {
	Subject, Action, Outcome, Region string
	Lists                            []string
	// IdempotencyKey is the body's idempotency_key ("" when absent): a
	// store maps (partner, key) to the check in the appending
	// transaction, for the keyed checks only.
	IdempotencyKey string
}

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("evidence record not found")

// Seal fills in a fresh salt and the record hash.
func (r *Record) Seal() error {
	r.Salt = make([]byte, SaltSize)
	if _, err := rand.Read(r.Salt); err != nil {
		return err
	}
	r.Hash = RecordHash(r.Salt, r.Body)
	return nil
}

// RecordHash is the hash a record commits to.
func RecordHash(salt, body []byte) [32]byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// appendLeafData appends LeafData(r) to b. The check path hashes a leaf
// on every check (in Append and for the receipt); built on the caller's
// buffer, the leaf costs no allocation, where the strings.Builder, the
// time's text and the copy to []byte cost three, and the hasher two more.
func appendLeafData(b []byte, r Record) []byte {
	b = append(b, leafVersion...)
	b = append(b, "\nid "...)
	b = append(b, r.ID...)
	b = append(b, "\nkind "...)
	b = append(b, r.Kind...)
	b = append(b, "\npartner "...)
	b = append(b, r.Partner...)
	b = append(b, "\nat "...)
	b = r.At.UTC().Truncate(time.Microsecond).AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, "\nhash "...)
	const hexdigits = "0123456789abcdef"
	for _, c := range r.Hash {
		b = append(b, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return append(b, '\n')
}

// leafDataSize is about how long r's leaf data is, for its buffer.
func leafDataSize(r Record) int {
	return len(leafVersion) + len(r.ID) + len(r.Kind) + len(r.Partner) + len("2006-01-02T15:04:05.000000Z") + 2*HashSize + 40
}

// leafHash is the RFC 6962 leaf hash SHA-256(0x00 ‖ LeafData(r)), the
// leaf built on the stack for records of the usual size.
func leafHash(r Record) [HashSize]byte {
	var buf [512]byte
	b := append(buf[:0], 0x00) // RFC 6962's leaf prefix
	return sha256.Sum256(appendLeafData(b, r))
}
