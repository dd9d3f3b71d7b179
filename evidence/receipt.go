package evidence

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// ReceiptFormat names the receipt encoding below.
const ReceiptFormat = "credgate-receipt/v1"

// MaxReceiptSize bounds a receipt read from outside (a body is at most a
// few hundred KiB; proofs and the note are small).
const MaxReceiptSize = 8 << 20

// Receipt is self-contained proof that a record is in the log: the record
// as stored (body and salt, byte for byte, in base64), its leaf, the
// inclusion proof and the signed checkpoint it proves into. Anyone holding
// the log's verifier key can check it, with no server, with VerifyReceipt.
type Receipt struct {
	Format string        `json:"format"`
	Record ReceiptRecord `json:"record"`
	// RecordHash is hex SHA-256(salt ‖ body).
	RecordHash string `json:"record_hash"`
	LeafIndex  uint64 `json:"leaf_index"`
	// LeafHash is hex SHA-256(0x00 ‖ LeafData(record)).
	LeafHash string `json:"leaf_hash"`
	TreeSize uint64 `json:"tree_size"`
	// InclusionProof is the RFC 9162 audit path, base64 hashes from the
	// leaf upwards.
	InclusionProof []string `json:"inclusion_proof"`
	// Checkpoint is the signed note, verbatim.
	Checkpoint string `json:"checkpoint"`
}

// ReceiptRecord is a record in a receipt.
type ReceiptRecord struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Partner string    `json:"partner"`
	At      time.Time `json:"at"`
	// Body and Salt are base64 (standard, padded): the hash is over these
	// exact bytes, which a JSON object would not preserve.
	Body string `json:"body"`
	Salt string `json:"salt"`
}

// NewReceipt assembles a receipt.
func NewReceipt(r Record, p [][HashSize]byte, cp SignedCheckpoint) Receipt {
	leaf := LeafHash(r)
	proof := make([]string, len(p))
	for i, h := range p {
		proof[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return Receipt{
		Format: ReceiptFormat,
		Record: ReceiptRecord{ID: r.ID, Kind: r.Kind, Partner: r.Partner, At: r.At.UTC(),
			Body: base64.StdEncoding.EncodeToString(r.Body), Salt: base64.StdEncoding.EncodeToString(r.Salt)},
		RecordHash: hex.EncodeToString(r.Hash[:]), LeafIndex: r.Index, LeafHash: hex.EncodeToString(leaf[:]),
		TreeSize: cp.Size, InclusionProof: proof, Checkpoint: string(cp.Note),
	}
}

// Errors of receipt verification: each says which link of the chain
// failed.
var (
	// ErrReceiptFormat: not a receipt (bad JSON, unknown format, bad
	// encoding of a field).
	ErrReceiptFormat = errors.New("malformed receipt")
	// ErrRecordHash: SHA-256(salt ‖ body) is not the record hash: the body
	// or salt was altered.
	ErrRecordHash = errors.New("record hash mismatch")
	// ErrLeafHash: the leaf hash is not the hash of the record's leaf data:
	// the record's id, kind, caller, time or hash was altered.
	ErrLeafHash = errors.New("leaf hash mismatch")
	// ErrInclusion: the proof does not lead from the leaf to the
	// checkpoint's root: the record is not at that index of the signed tree.
	ErrInclusion = errors.New("inclusion proof does not verify")
	// ErrRecordErased: the record's body and salt are empty (erased on
	// purpose) and everything else verified: its identity, record hash and
	// place in the signed log are proven, its body cannot be. VerifyReceipt
	// returns it, wrapped, only after every other link held, together
	// with what was verified.
	ErrRecordErased = errors.New("record erased")
)

// Verified is what a verified receipt proves.
type Verified struct {
	Record     Record
	Checkpoint Checkpoint
	// KeyNames are the keys whose signatures verified.
	KeyNames []string
}

// ParseReceipt decodes a receipt strictly: one JSON object, no unknown
// fields, at most MaxReceiptSize bytes.
func ParseReceipt(raw []byte) (Receipt, error) {
	r, err := decodeStrict[Receipt](raw, "receipt")
	if err != nil {
		return Receipt{}, err
	}
	if r.Format != ReceiptFormat {
		return Receipt{}, fmt.Errorf("%w: format %q, expected %q", ErrReceiptFormat, r.Format, ReceiptFormat)
	}
	return r, nil
}

// decodeStrict decodes one JSON object of at most MaxReceiptSize bytes
// with no unknown fields and nothing after it, as receipts and promises
// are read; what names it in errors.
func decodeStrict[T any](raw []byte, what string) (T, error) {
	var v T
	if len(raw) > MaxReceiptSize {
		return v, fmt.Errorf("%w: larger than %d bytes", ErrReceiptFormat, MaxReceiptSize)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("%w: %w", ErrReceiptFormat, err)
	}
	if dec.More() {
		return v, fmt.Errorf("%w: data after the %s object", ErrReceiptFormat, what)
	}
	return v, nil
}

// VerifyReceipt checks a receipt against the trusted verifier keys, link
// by link: the record hash from body and salt, the leaf from the record,
// the checkpoint's signature, and the inclusion proof from the leaf to the
// signed root. The first link that fails is the error. A receipt of an
// erased record (empty body and salt) has no body to hash: its leaf is
// still checked against the signed checkpoint, and when all of that holds
// the result is the Verified record with an error wrapping ErrRecordErased.
func VerifyReceipt(r Receipt, verifiers note.Verifiers) (Verified, error) {
	body, err := base64.StdEncoding.Strict().DecodeString(r.Record.Body)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: record.body is not base64: %w", ErrReceiptFormat, err)
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(r.Record.Salt)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: record.salt is not base64: %w", ErrReceiptFormat, err)
	}
	claimed, err := decodeHex32(r.RecordHash)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: record_hash: %w", ErrReceiptFormat, err)
	}
	rec := Record{Index: r.LeafIndex, ID: r.Record.ID, Kind: r.Record.Kind, Partner: r.Record.Partner,
		At: r.Record.At, Body: body, Salt: salt, Hash: claimed}
	if err := rec.Validate(); err != nil {
		return Verified{}, fmt.Errorf("%w: %w", ErrReceiptFormat, err)
	}
	// An erased record's hash is taken as claimed: the leaf and the proof
	// below are what prove it.
	erased := len(salt) == 0 && len(body) == 0
	if got := RecordHash(salt, body); !erased && got != claimed {
		return Verified{}, fmt.Errorf("%w: SHA-256(salt ‖ body) is %x but the receipt's record_hash is %x: the body or salt was altered",
			ErrRecordHash, got, claimed)
	}
	leaf := LeafHash(rec)
	if r.LeafHash != "" {
		claimedLeaf, err := decodeHex32(r.LeafHash)
		if err != nil {
			return Verified{}, fmt.Errorf("%w: leaf_hash: %w", ErrReceiptFormat, err)
		}
		if claimedLeaf != leaf {
			return Verified{}, fmt.Errorf("%w: the record's leaf hash is %x but the receipt says %x: the record's id, kind, partner, time or hash was altered",
				ErrLeafHash, leaf, claimedLeaf)
		}
	}
	cp, err := OpenCheckpoint([]byte(r.Checkpoint), verifiers, "")
	if err != nil {
		return Verified{}, err
	}
	if cp.Size != r.TreeSize {
		return Verified{}, fmt.Errorf("%w: tree_size %d but the checkpoint is of size %d", ErrReceiptFormat, r.TreeSize, cp.Size)
	}
	if r.LeafIndex >= cp.Size {
		return Verified{}, fmt.Errorf("%w: leaf %d is beyond the checkpoint's %d records", ErrInclusion, r.LeafIndex, cp.Size)
	}
	if len(r.InclusionProof) > 64 {
		return Verified{}, fmt.Errorf("%w: inclusion proof of %d hashes", ErrReceiptFormat, len(r.InclusionProof))
	}
	p := make([][HashSize]byte, len(r.InclusionProof))
	for i, s := range r.InclusionProof {
		h, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(h) != HashSize {
			return Verified{}, fmt.Errorf("%w: inclusion_proof[%d] is not a base64 %d-byte hash", ErrReceiptFormat, i, HashSize)
		}
		p[i] = [HashSize]byte(h)
	}
	if err := VerifyInclusion(leaf, r.LeafIndex, cp.Size, p, cp.Root); err != nil {
		return Verified{}, fmt.Errorf("%w: leaf %x is not record %d of the signed tree of %d records (root %x): %w",
			ErrInclusion, leaf, r.LeafIndex, cp.Size, cp.Root, err)
	}
	n, _ := note.Open(cp.Note, verifiers)
	var names []string
	if n != nil {
		for _, s := range n.Sigs {
			names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
	}
	v := Verified{Record: rec, Checkpoint: cp.Checkpoint, KeyNames: names}
	if erased {
		return v, fmt.Errorf("%w: record %d is in the signed log of %d records with record hash %x; its body and salt were erased, so its body cannot be proven",
			ErrRecordErased, rec.Index, cp.Size, claimed)
	}
	return v, nil
}

func decodeHex32(s string) ([HashSize]byte, error) {
	var h [HashSize]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		return h, fmt.Errorf("%q is not a hex %d-byte hash", truncate(s, 80), HashSize)
	}
	copy(h[:], b)
	return h, nil
}
