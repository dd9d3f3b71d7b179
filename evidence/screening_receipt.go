package evidence

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// KindScreening is the evidence record of a screening job: the root of
// its answers' own tree.
const KindScreening Kind = "screening"

// ScreeningReceiptFormat names the chained receipt below.
const ScreeningReceiptFormat = "credgate-screening-receipt/v1"

// ScreeningReceipt proves one subject's answer of a screening job with two
// chained proofs: the answer is leaf LeafIndex of the job's tree of
// TreeSize answers (InclusionProof), and the job's record, which names
// that tree's root and size, is in the signed log (JobReceipt). Anyone
// holding the log's verifier key checks it offline with
// VerifyScreeningReceipt.
type ScreeningReceipt struct {
	Format      string `json:"format"`
	ScreeningID string `json:"screening_id"`
	// Line is the subject's line in the screened file (informative).
	Line      int64  `json:"line"`
	SubjectID string `json:"subject_id"`
	// Answer is the answer's JSON, base64 (standard, padded): the leaf is
	// over these exact bytes.
	Answer    string `json:"answer"`
	LeafIndex uint64 `json:"leaf_index"`
	TreeSize  uint64 `json:"tree_size"`
	// InclusionProof is the RFC 9162 audit path in the job's tree, base64
	// hashes from the leaf upwards.
	InclusionProof []string `json:"inclusion_proof"`
	// JobReceipt is the receipt of the job's record in the log.
	JobReceipt Receipt `json:"job_receipt"`
}

// Errors of chained receipts, one per link.
var (
	// ErrScreeningRecord: the log's record is not this job's, or names
	// another tree (size or root) than the answer's proof.
	ErrScreeningRecord = errors.New("the job's record does not vouch for this tree")
	// ErrAnswerInclusion: the answer is not leaf LeafIndex of the job's
	// tree: it was altered, or the proof is not its.
	ErrAnswerInclusion = errors.New("the answer is not in the job's tree")
	// ErrAnswerSubject: the answer is about another subject than the
	// receipt says.
	ErrAnswerSubject = errors.New("the answer is about another subject")
)

// ScreeningRoot is what a screening job's record says of its tree (the
// fields of its body the chain relies on).
type ScreeningRoot struct {
	ScreeningID string `json:"screening_id"`
	TreeSize    uint64 `json:"tree_size"`
	// Root is the tree's root, hex.
	Root string `json:"root"`
}

// VerifiedScreening is what a verified chained receipt proves.
type VerifiedScreening struct {
	// Job is the verified receipt of the job's record.
	Job         Verified
	ScreeningID string
	SubjectID   string
	Line        int64
	LeafIndex   uint64
	TreeSize    uint64
	// Outcome is the answer's outcome.
	Outcome string
	// Answer is the proven answer's JSON.
	Answer []byte
}

// NewScreeningReceipt chains one answer's proof in its job's tree with the
// receipt of the job's record.
func NewScreeningReceipt(job Receipt, screeningID string, line int64, subjectID string, answer []byte,
	leafIndex, treeSize uint64, proof [][HashSize]byte) ScreeningReceipt {
	p := make([]string, len(proof))
	for i, h := range proof {
		p[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return ScreeningReceipt{Format: ScreeningReceiptFormat, ScreeningID: screeningID, Line: line, SubjectID: subjectID,
		Answer: base64.StdEncoding.EncodeToString(answer), LeafIndex: leafIndex, TreeSize: treeSize,
		InclusionProof: p, JobReceipt: job}
}

// IsScreeningReceipt reports whether raw claims to be a chained receipt
// (so that a verifier picks the right decoder); ParseScreeningReceipt
// still decides whether it is one.
func IsScreeningReceipt(raw []byte) bool {
	var probe struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.Format == ScreeningReceiptFormat
}

// ParseScreeningReceipt decodes a chained receipt strictly, as
// ParseReceipt does a receipt.
func ParseScreeningReceipt(raw []byte) (ScreeningReceipt, error) {
	r, err := decodeStrict[ScreeningReceipt](raw, "receipt")
	if err != nil {
		return ScreeningReceipt{}, err
	}
	if r.Format != ScreeningReceiptFormat {
		return ScreeningReceipt{}, fmt.Errorf("%w: format %q, expected %q", ErrReceiptFormat, r.Format, ScreeningReceiptFormat)
	}
	if r.JobReceipt.Format != ReceiptFormat {
		return ScreeningReceipt{}, fmt.Errorf("%w: job_receipt format %q, expected %q", ErrReceiptFormat, r.JobReceipt.Format, ReceiptFormat)
	}
	return r, nil
}

// VerifyScreeningReceipt checks a chained receipt against the trusted
// verifier keys, link by link: the job's record is in the signed log (as
// VerifyReceipt checks a receipt), that record is this job's and names
// this tree's size and root, the answer is the leaf the proof leads from
// to that root, and the answer is about the subject the receipt names.
// The first link that fails is the error.
func VerifyScreeningReceipt(r ScreeningReceipt, verifiers note.Verifiers) (VerifiedScreening, error) {
	job, err := VerifyReceipt(r.JobReceipt, verifiers)
	if err != nil {
		return VerifiedScreening{}, fmt.Errorf("the job's record: %w", err)
	}
	if job.Record.Kind != KindScreening || job.Record.ID != r.ScreeningID {
		return VerifiedScreening{}, fmt.Errorf("%w: the log's record is %s record %q, not the screening %q",
			ErrScreeningRecord, job.Record.Kind, job.Record.ID, truncate(r.ScreeningID, 80))
	}
	var sr ScreeningRoot
	if err := json.Unmarshal(job.Record.Body, &sr); err != nil {
		return VerifiedScreening{}, fmt.Errorf("%w: its body is not a screening record: %w", ErrScreeningRecord, err)
	}
	root, err := decodeHex32(sr.Root)
	if err != nil {
		return VerifiedScreening{}, fmt.Errorf("%w: its root: %w", ErrScreeningRecord, err)
	}
	if sr.ScreeningID != r.ScreeningID || sr.TreeSize != r.TreeSize {
		return VerifiedScreening{}, fmt.Errorf("%w: the record is of screening %q with %d answers; the receipt says %q with %d",
			ErrScreeningRecord, sr.ScreeningID, sr.TreeSize, truncate(r.ScreeningID, 80), r.TreeSize)
	}
	answer, err := base64.StdEncoding.Strict().DecodeString(r.Answer)
	if err != nil || len(answer) == 0 {
		return VerifiedScreening{}, fmt.Errorf("%w: answer is not base64 of the answer's JSON", ErrReceiptFormat)
	}
	if len(r.InclusionProof) > 64 {
		return VerifiedScreening{}, fmt.Errorf("%w: inclusion proof of %d hashes", ErrReceiptFormat, len(r.InclusionProof))
	}
	p := make([][HashSize]byte, len(r.InclusionProof))
	for i, s := range r.InclusionProof {
		h, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(h) != HashSize {
			return VerifiedScreening{}, fmt.Errorf("%w: inclusion_proof[%d] is not a base64 %d-byte hash", ErrReceiptFormat, i, HashSize)
		}
		p[i] = [HashSize]byte(h)
	}
	leaf := HashLeaf(answer)
	if r.LeafIndex >= r.TreeSize {
		return VerifiedScreening{}, fmt.Errorf("%w: leaf %d is beyond the tree's %d answers", ErrAnswerInclusion, r.LeafIndex, r.TreeSize)
	}
	if err := VerifyInclusion(leaf, r.LeafIndex, r.TreeSize, p, root); err != nil {
		return VerifiedScreening{}, fmt.Errorf("%w: the answer's leaf %x is not answer %d of the tree of %d (root %x) the log records: %w",
			ErrAnswerInclusion, leaf, r.LeafIndex, r.TreeSize, root, err)
	}
	var a struct {
		Subject struct {
			ID string `json:"id"`
		} `json:"subject"`
		Outcome string `json:"outcome"`
	}
	dec := json.NewDecoder(bytes.NewReader(answer))
	if err := dec.Decode(&a); err != nil {
		return VerifiedScreening{}, fmt.Errorf("%w: the answer is not JSON: %w", ErrReceiptFormat, err)
	}
	if a.Subject.ID != r.SubjectID {
		return VerifiedScreening{}, fmt.Errorf("%w: the proven answer is about %q, the receipt names %q",
			ErrAnswerSubject, truncate(a.Subject.ID, 80), truncate(r.SubjectID, 80))
	}
	return VerifiedScreening{Job: job, ScreeningID: r.ScreeningID, SubjectID: r.SubjectID, Line: r.Line,
		LeafIndex: r.LeafIndex, TreeSize: r.TreeSize, Outcome: a.Outcome, Answer: answer}, nil
}
