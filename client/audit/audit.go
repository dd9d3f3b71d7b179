// Package audit verifies credgate's evidence as an outsider: receipts
// offline against pinned verifier keys (VerifyReceipt), and the log itself
// (Auditor): each checkpoint proven consistent with the one seen before,
// and, with an auditor's credential, every stored record checked against
// the signed tree. It trusts nothing the server says that the pinned keys
// and the Merkle proofs do not establish.
package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

// Errors.
var (
	// ErrCheckpoint: the served checkpoint does not verify against the
	// pinned keys (or is of another origin).
	ErrCheckpoint = errors.New("the served checkpoint does not verify")
	// ErrState: the saved state is unreadable or its checkpoint does not
	// verify (a state file edited by hand is no starting point).
	ErrState = errors.New("audit state unusable")
	// ErrNoKeys: no verifier key was given.
	ErrNoKeys = errors.New("no verifier key given")
	// ErrServedInconsistent: the log answered, but not what was asked (too
	// few leaves, a leaf at another position): a failure of the log, not
	// of the connection to it.
	ErrServedInconsistent = errors.New("the log served inconsistent leaves")
)

// Log is what the auditor reads from credgate; *client.Client satisfies
// it. Leaves is needed only by CheckRecords.
type Log interface {
	Checkpoint(ctx context.Context) ([]byte, error)
	Consistency(ctx context.Context, from, to uint64) ([][evidence.HashSize]byte, error)
	Leaves(ctx context.Context, from, to uint64) ([]evidence.AuditLeaf, error)
}

// State is what an auditor remembers between runs: the last checkpoint it
// verified. Keep it (or copies of it) where credgate's operators cannot
// change it.
type State struct {
	Origin     string    `json:"origin"`
	Size       uint64    `json:"size"`
	RootHash   string    `json:"root_hash"`
	Checkpoint string    `json:"checkpoint"`
	VerifiedAt time.Time `json:"verified_at"`
}

// MaxProblems caps how many problems one run reports.
const MaxProblems = 100

// Kind of problem found.
type Kind string

// Problem kinds.
const (
	Truncation Kind = "TRUNCATION" // the log is shorter than when last seen
	Rewrite    Kind = "REWRITE"    // the log seen before is not a prefix of this one
	Deleted    Kind = "DELETED"    // a signed position has no record
	Altered    Kind = "ALTERED"    // a record's body or identity no longer matches
	Reordered  Kind = "REORDERED"  // records are stored at other positions than signed
)

// Problem is one finding.
type Problem struct {
	Kind    Kind
	Message string
}

// String is the finding as the command line prints it.
func (p Problem) String() string { return p.Message }

// Report is what one audit found. A report with problems must not become
// the next run's state.
type Report struct {
	// Checkpoint is the served checkpoint, verified against the keys.
	Checkpoint evidence.SignedCheckpoint
	// Notes say what was established ("consistent: …").
	Notes    []string
	Problems []Problem
	// RecordsChecked is how many positions CheckRecords compared.
	RecordsChecked uint64
	// Erased are the positions, in log order, whose body and salt
	// CheckRecords found erased: not a problem, but each should match an
	// erasure request, and the auditor is the one to hold them side by side.
	Erased []uint64
}

func (r *Report) add(kind Kind, format string, args ...any) {
	if len(r.Problems) < MaxProblems {
		r.Problems = append(r.Problems, Problem{Kind: kind, Message: string(kind) + ": " + fmt.Sprintf(format, args...)})
	}
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// State is the state to keep after a clean audit.
func (r *Report) State(now time.Time) State {
	cp := r.Checkpoint
	return State{Origin: cp.Origin, Size: cp.Size, RootHash: base64.StdEncoding.EncodeToString(cp.Root[:]),
		Checkpoint: string(cp.Note), VerifiedAt: now.UTC()}
}

// Auditor follows one log.
type Auditor struct {
	log    Log
	vs     note.Verifiers
	origin string
	tiles  evidence.TileFetcher
}

// Option configures an Auditor.
type Option func(*Auditor)

// WithOrigin requires checkpoints of this origin (default: the saved
// state's, or any on a first run).
func WithOrigin(origin string) Option { return func(a *Auditor) { a.origin = origin } }

// WithTiles builds consistency proofs from the log's tlog-tiles instead of
// asking the server for them.
func WithTiles(f evidence.TileFetcher) Option { return func(a *Auditor) { a.tiles = f } }

// New returns an auditor of log that trusts checkpoints signed by vs.
func New(log Log, vs note.Verifiers, opts ...Option) *Auditor {
	a := &Auditor{log: log, vs: vs}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Follow fetches the latest checkpoint, verifies its signature, and proves
// it consistent with prev (nil on a first run: the checkpoint is then
// trusted as the starting point). An error means the audit could not be
// carried out, or the served checkpoint does not verify (ErrCheckpoint);
// what it found wrong with the log is in the report's Problems.
func (a *Auditor) Follow(ctx context.Context, prev *State) (*Report, error) {
	origin := a.origin
	var old *evidence.SignedCheckpoint
	if prev != nil {
		o, err := evidence.OpenCheckpoint([]byte(prev.Checkpoint), a.vs, prev.Origin)
		if err != nil {
			return nil, fmt.Errorf("%w: the checkpoint in the state file does not verify: %w", ErrState, err)
		}
		old = &o
		if origin == "" {
			origin = prev.Origin
		}
	}
	raw, err := a.log.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := evidence.OpenCheckpoint(raw, a.vs, origin)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	r := &Report{Checkpoint: cp}
	if old == nil {
		return r, nil
	}
	switch {
	case cp.Size < old.Size:
		r.add(Truncation, "the log had %d records at the last audit (%s) and now claims %d: records were removed",
			old.Size, prev.VerifiedAt.Format(time.RFC3339), cp.Size)
	case cp.Size == old.Size:
		if cp.Root != old.Root {
			r.add(Rewrite, "the log still has %d records but its root changed from %x to %x: records were altered, replaced or reordered",
				cp.Size, old.Root, cp.Root)
		} else {
			r.note("consistent: unchanged since the last audit (%d records)", cp.Size)
		}
	default:
		p, err := a.consistencyProof(ctx, old.Size, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("consistency proof from %d to %d: %w", old.Size, cp.Size, err)
		}
		if err := evidence.VerifyConsistency(old.Size, cp.Size, p, old.Root, cp.Root); err != nil {
			r.add(Rewrite, "the log of %d records seen at the last audit is not a prefix of the log of %d records: "+
				"the consistency proof fails (%v): records before index %d were altered, deleted or reordered", old.Size, cp.Size, err, old.Size)
			return r, nil
		}
		r.note("consistent: the log of %d records extends the %d seen at the last audit", cp.Size, old.Size)
	}
	return r, nil
}

// consistencyProof asks the log for the proof that the tree of size to
// extends the tree of size from, or builds it from the tiles (WithTiles).
func (a *Auditor) consistencyProof(ctx context.Context, from, to uint64) ([][evidence.HashSize]byte, error) {
	if a.tiles != nil {
		return evidence.ConsistencyProof(ctx, evidence.NewTileNodes(a.tiles, to), from, to)
	}
	return a.log.Consistency(ctx, from, to)
}

// CheckRecords reads every position of the report's checkpoint with the
// record stored there: the leaves must rebuild the signed root, every
// stored interior node must be the hash its leaves give, and every record
// must hash to its leaf (one that hashes to another position's leaf was
// moved). It needs an administrator's or auditor's credential.
func (a *Auditor) CheckRecords(ctx context.Context, r *Report) error {
	cp := r.Checkpoint
	tree, err := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	if err != nil {
		return err
	}
	// Only mismatches are remembered, so memory stays small for a sound
	// log of any size.
	movedFrom := map[[evidence.HashSize]byte]uint64{} // a record's leaf → where the record is
	expected := map[[evidence.HashSize]byte]uint64{}  // a signed leaf → where it should be
	for from := uint64(0); from < cp.Size; from += evidence.MaxAuditPage {
		to := min(from+evidence.MaxAuditPage, cp.Size)
		leaves, err := a.log.Leaves(ctx, from, to)
		if err != nil {
			return err
		}
		if uint64(len(leaves)) != to-from {
			return fmt.Errorf("%w: leaves %d..%d: got %d", ErrServedInconsistent, from, to, len(leaves))
		}
		for i, l := range leaves {
			idx := from + uint64(i)
			if l.Index != idx {
				return fmt.Errorf("%w: leaf %d: served as %d", ErrServedInconsistent, idx, l.Index)
			}
			// Every interior node the store holds is compared with the
			// one its leaves give: proofs read stored nodes, so one
			// altered there breaks receipts while the root still holds.
			tree.Append(l.TreeLeaf, func(id evidence.NodeID, h [evidence.HashSize]byte) {
				if id.Level == 0 {
					return
				}
				for _, n := range l.Nodes {
					if n.ID == id {
						if n.Hash != h {
							r.add(Altered, "tree node %d/%d (level/index) is stored as %x but its leaves hash to %x: the stored tree was altered, and inclusion proofs through it fail",
								id.Level, id.Index, n.Hash, h)
						}
						return
					}
				}
				r.add(Altered, "tree node %d/%d (level/index) was not served with leaf %d: the stored tree cannot be checked", id.Level, id.Index, idx)
			})
			switch l.Body {
			case evidence.BodyMissing:
				r.add(Deleted, "record %d is missing from the log (its leaf %x is signed)", idx, l.TreeLeaf)
				continue
			case evidence.BodyAltered:
				r.add(Altered, "record %d (%s): its body no longer matches its record hash", idx, l.Record.ID)
			case evidence.BodyErased:
				r.Erased = append(r.Erased, idx)
			}
			if got := evidence.LeafHash(l.Record); got != l.TreeLeaf {
				movedFrom[got] = idx
				expected[l.TreeLeaf] = idx
			}
		}
	}
	if root := tree.Root(); root != cp.Root {
		r.add(Rewrite, "the tree's leaves do not rebuild the signed root (%x, not %x): the stored tree was altered", root, cp.Root)
	}
	for leaf, at := range movedFrom {
		if want, ok := expected[leaf]; ok {
			r.add(Reordered, "the record signed at index %d is stored at index %d", want, at)
			delete(expected, leaf)
			continue
		}
		r.add(Altered, "record %d: its id, kind, partner, time or record hash no longer match the leaf the log signed", at)
	}
	r.RecordsChecked = cp.Size
	r.note("records: checked %d positions against the signed tree", cp.Size)
	if len(r.Erased) > 0 {
		at := make([]string, len(r.Erased))
		for i, idx := range r.Erased {
			at[i] = strconv.FormatUint(idx, 10)
		}
		r.note("erased: %d records' bodies were erased (each still proven in the tree), at positions %s", len(r.Erased), strings.Join(at, ", "))
	}
	return nil
}

// VerifyReceipt checks a receipt offline against pinned keys: record hash,
// leaf, checkpoint signature and inclusion proof. origin, when not empty,
// must be the checkpoint's. The receipt of an erased record that
// otherwise verifies returns what was verified with an error wrapping
// evidence.ErrRecordErased (see evidence.VerifyReceipt).
func VerifyReceipt(raw []byte, vs note.Verifiers, origin string) (evidence.Verified, error) {
	r, err := evidence.ParseReceipt(raw)
	if err != nil {
		return evidence.Verified{}, err
	}
	v, err := evidence.VerifyReceipt(r, vs)
	if err != nil && !errors.Is(err, evidence.ErrRecordErased) {
		return evidence.Verified{}, err
	}
	if origin != "" && v.Checkpoint.Origin != origin {
		return evidence.Verified{}, fmt.Errorf("%w: the checkpoint is of origin %q, not %q", evidence.ErrCheckpointFormat, v.Checkpoint.Origin, origin)
	}
	return v, err
}

// ParseKeys reads verifier keys from what a key file holds: one key per
// line (# comments allowed), or the JSON of GET /v1/evidence/keys. A
// private signer key is refused and never echoed.
func ParseKeys(data []byte) ([]string, error) {
	var doc struct {
		Keys []struct {
			Key string `json:"key"`
		} `json:"keys"`
	}
	var keys []string
	if json.Unmarshal(data, &doc) == nil && len(doc.Keys) > 0 {
		for _, k := range doc.Keys {
			keys = append(keys, strings.TrimSpace(k.Key))
		}
	} else {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
			}
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "PRIVATE+KEY+") {
			return nil, errPrivateKey
		}
	}
	return keys, nil
}

var errPrivateKey = errors.New("a private signer key was given; give the verifier key (GET /v1/evidence/keys)")

// Verifiers parses verifier keys into the set checkpoints are verified
// against, refusing private keys.
func Verifiers(keys []string) (note.Verifiers, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	for _, k := range keys {
		if strings.HasPrefix(strings.TrimSpace(k), "PRIVATE+KEY+") {
			return nil, errPrivateKey
		}
	}
	return evidence.Verifiers(keys...)
}

// LoadState reads a state file; (nil, nil) when it does not exist.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, path, err)
	}
	return &st, nil
}

// SaveState replaces the state file atomically (write, fsync, rename).
func SaveState(path string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credgate-audit-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
