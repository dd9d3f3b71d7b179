package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TreeStore is what the log reads and writes beside the records: the tree
// the store's AppendBatch maintains in the appending transaction, the
// signed checkpoints and the verifier keys. It is shared by every gateway
// on the database, so every replica serves the same history.
type TreeStore interface {
	NodeReader
	// TreeHead is the tree as last committed.
	TreeHead(ctx context.Context) (Head, error)
	// Record returns ErrNotFound when there is no such record.
	Record(ctx context.Context, id string) (Record, error)
	// RecordsBetween returns the stored records with from <= index < to,
	// in index order (a deleted record is simply absent). Callers bound
	// to-from.
	RecordsBetween(ctx context.Context, from, to uint64) ([]Record, error)
	// LatestCheckpoint returns ErrNoCheckpoint when none is stored.
	LatestCheckpoint(ctx context.Context) (StoredCheckpoint, error)
	// Checkpoints lists the stored checkpoints of sizes below below and
	// within the committed tree, largest first, at most limit of them
	// (below 0 means no upper bound): the history an auditor pages
	// through.
	Checkpoints(ctx context.Context, below uint64, limit int) ([]StoredCheckpoint, error)
	// AddCheckpoint stores a checkpoint; one of the same size already
	// stored wins and is not an error.
	AddCheckpoint(ctx context.Context, c StoredCheckpoint) error
	// AddVerifierKey remembers a key that signs checkpoints (idempotent).
	AddVerifierKey(ctx context.Context, key string) error
	// VerifierKeys lists every key that has signed, oldest first.
	VerifierKeys(ctx context.Context) ([]StoredKey, error)
}

// StoredCheckpoint is a signed checkpoint as stored.
type StoredCheckpoint struct {
	Size uint64
	Root [HashSize]byte
	Note []byte
	At   time.Time
}

// StoredKey is a verifier key and when it was first used.
type StoredKey struct {
	Key     string
	AddedAt time.Time
}

// Log serves the evidence log's proofs and keeps it checkpointed: Run
// signs a checkpoint at least every interval while the log grows, and a
// receipt whose record no checkpoint covers yet gets one on demand.
type Log struct {
	store    TreeStore
	signer   *Signer
	interval time.Duration
	minGap   time.Duration
	now      func() time.Time
	logger   *slog.Logger
	current  note.Verifiers // the signer's own key
	// trusted is the signer's key and the keys it replaced
	// (WithPreviousKeys): a stored checkpoint signed by any of them is
	// one of this log's. prevErr is a previous key that did not parse.
	trusted note.Verifiers
	prev    []string
	prevErr error
	// prevOrigin is the origin this database's log had before a restore
	// started it as a new log (WithPreviousOrigin): its stored checkpoints
	// are the old log's, never served as this one's.
	prevOrigin string
	// pubFile remembers outside the database the largest checkpoint this
	// replica has signed or served (lastsigned.go); pub is it, pubOK
	// whether there is one. halt is the rollback that stopped signing.
	pubFile string
	pub     SignedCheckpoint
	pubOK   bool
	halt    atomic.Pointer[RollbackError]

	// sem serialises signing (the periodic Run and the on-demand rounds).
	sem        chan struct{}
	mu         sync.Mutex
	lastSigned time.Time
	// rounds shares on-demand signing among receipt callers (signing.go);
	// known is the largest servable checkpoint seen, so that a receipt
	// whose record it covers needs no read and no signature.
	rounds signRounds
	known  atomic.Pointer[StoredCheckpoint]
	// sound is the last stored checkpoint found signed by a trusted
	// key; fresh the last one signed here (served when the stored one is
	// not sound).
	sound []byte
	fresh StoredCheckpoint
	// unsound is the last stored note refused, so that it is logged once.
	unsound []byte
}

// LogOption configures a Log.
type LogOption func(*Log)

// WithCheckpointInterval sets how often Run signs while the log grows
// (default 1s).
func WithCheckpointInterval(d time.Duration) LogOption {
	return func(l *Log) {
		if d > 0 {
			l.interval = d
		}
	}
}

// WithMinCheckpointGap sets the least time between two checkpoints signed
// on demand (default 0: receipt callers already share one signing round,
// so a gap only adds latency; it caps the signing rate of one replica).
func WithMinCheckpointGap(d time.Duration) LogOption {
	return func(l *Log) {
		if d >= 0 {
			l.minGap = d
		}
	}
}

// WithPreviousKeys adds the verifier keys the log was signed with before
// a key rotation: a stored checkpoint they verify is served as the log's
// own, not refused as signed by a stranger. A malformed key fails Start.
func WithPreviousKeys(keys ...string) LogOption {
	return func(l *Log) { l.prev = append(l.prev, keys...) }
}

// WithPreviousOrigin names the origin this database's log was published
// under before a deliberate restore started it as a new log (a new origin
// and key): a stored checkpoint of that origin, signed by a trusted key
// (WithPreviousKeys), is the old log's. It is neither served as this log's
// nor reported as a forgery; this log signs its own over the same tree,
// whose first records are the old log's.
func WithPreviousOrigin(origin string) LogOption {
	return func(l *Log) { l.prevOrigin = origin }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(lg *slog.Logger) LogOption { return func(l *Log) { l.logger = lg } }

// NewLog returns the log over store, signing with signer.
func NewLog(store TreeStore, signer *Signer, opts ...LogOption) *Log {
	l := &Log{store: store, signer: signer, interval: time.Second,
		now: time.Now, sem: make(chan struct{}, 1)}
	for _, o := range opts {
		o(l)
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	// The signer's own verifier key is well-formed by construction.
	l.current, _ = Verifiers(signer.VerifierKey())
	l.trusted = l.current
	if len(l.prev) > 0 {
		l.trusted, l.prevErr = Verifiers(append([]string{signer.VerifierKey()}, l.prev...)...)
		if l.prevErr != nil {
			l.trusted = l.current
		}
	}
	return l
}

// Origin is the log's origin line.
func (l *Log) Origin() string { return l.signer.Origin() }

// VerifierKey is the public key of the current checkpoint signer.
func (l *Log) VerifierKey() string { return l.signer.VerifierKey() }

// Start registers the signing key and signs a first checkpoint if the log
// has grown since the last one (or has none). With WithPublishedFile it
// first checks the database's tree against the checkpoint this replica
// remembers publishing: a database restored or rolled back behind it is
// refused (ErrLogRolledBack) before anything is signed.
func (l *Log) Start(ctx context.Context) error {
	if l.prevErr != nil {
		return fmt.Errorf("previous evidence keys: %w", l.prevErr)
	}
	if l.pubFile != "" {
		pub, ok, err := loadPublished(l.pubFile, l.Origin())
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.pub, l.pubOK = pub, ok
		l.mu.Unlock()
	}
	if err := l.store.AddVerifierKey(ctx, l.signer.VerifierKey()); err != nil {
		return fmt.Errorf("register evidence key: %w", err)
	}
	if _, err := l.checkpointGrowth(ctx, false); err != nil {
		return err
	}
	return nil
}

// Run signs a checkpoint every interval while the log grows, until ctx
// ends. Failures (the database down) are logged and retried next tick.
func (l *Log) Run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	registered := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !registered {
			if err := l.store.AddVerifierKey(ctx, l.signer.VerifierKey()); err != nil {
				l.logger.Warn("evidence: cannot register the checkpoint key; will retry", "err", err)
				continue
			}
			registered = true
		}
		if _, err := l.checkpointGrowth(ctx, false); err != nil && ctx.Err() == nil && !errors.Is(err, ErrLogRolledBack) {
			l.logger.Warn("evidence: cannot sign a checkpoint; will retry", "err", err)
		}
	}
}

// checkpointGrowth signs and stores a checkpoint of the current tree when
// it is larger than the latest stored one (or none is stored), and returns
// the latest checkpoint. throttle makes it respect minGap.
func (l *Log) checkpointGrowth(ctx context.Context, throttle bool) (StoredCheckpoint, error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return StoredCheckpoint{}, ctx.Err()
	}
	defer func() { <-l.sem }()
	if h := l.halt.Load(); h != nil {
		return StoredCheckpoint{}, h
	}
	latest, none, err := l.latest(ctx)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	head, err := l.store.TreeHead(ctx)
	if err != nil {
		return StoredCheckpoint{}, fmt.Errorf("read tree head: %w", err)
	}
	if !none && head.Size <= latest.Size {
		// Nothing to sign; a larger checkpoint another replica signed (or
		// the latest one, on a first start) is remembered as published.
		if err := l.guard(ctx, head, latest, none); err != nil {
			return StoredCheckpoint{}, err
		}
		if err := l.publish(SignedCheckpoint{Checkpoint: Checkpoint{Origin: l.Origin(), Size: latest.Size, Root: latest.Root}, Note: latest.Note}); err != nil {
			return StoredCheckpoint{}, err
		}
		return latest, nil
	}
	if throttle {
		l.mu.Lock()
		wait := l.minGap - l.now().Sub(l.lastSigned)
		l.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return StoredCheckpoint{}, ctx.Err()
			}
			// Records committed while waiting go into this checkpoint too.
			if head, err = l.store.TreeHead(ctx); err != nil {
				return StoredCheckpoint{}, fmt.Errorf("read tree head: %w", err)
			}
		}
	}
	// The tree signed must extend every checkpoint this log published.
	if err := l.guard(ctx, head, latest, none); err != nil {
		return StoredCheckpoint{}, err
	}
	sc, err := l.signer.Sign(head.Size, head.Root)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	// Remembered before anyone can see it: a checkpoint published and not
	// remembered could be forked by a rollback to just below it.
	if err := l.publish(sc); err != nil {
		return StoredCheckpoint{}, err
	}
	st := StoredCheckpoint{Size: sc.Size, Root: sc.Root, Note: sc.Note, At: l.now().UTC()}
	if err := l.store.AddCheckpoint(ctx, st); err != nil {
		return StoredCheckpoint{}, fmt.Errorf("store checkpoint: %w", err)
	}
	l.mu.Lock()
	l.lastSigned = l.now()
	l.fresh = st
	l.mu.Unlock()
	l.remember(st)
	// Another replica may have stored one of this size first: serve the
	// stored one, so that every replica serves the same history.
	latest, none, err = l.latest(ctx)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	if none || latest.Size < st.Size {
		return st, nil
	}
	return latest, nil
}

// latest is the latest stored checkpoint that this log can serve: the
// store gives only checkpoints of sizes its tree has, and it must be
// signed by the current key or one it replaced (WithPreviousKeys). A
// stored row that is not (forged, or signed by a key this replica does
// not know) never wins over one signed here:
// the last one signed here is served instead, or none (then the caller
// signs the tree afresh). none reports that nothing servable is stored.
func (l *Log) latest(ctx context.Context) (cp StoredCheckpoint, none bool, err error) {
	cp, err = l.store.LatestCheckpoint(ctx)
	if errors.Is(err, ErrNoCheckpoint) {
		return StoredCheckpoint{}, true, nil
	}
	if err != nil {
		return StoredCheckpoint{}, false, fmt.Errorf("read latest checkpoint: %w", err)
	}
	l.mu.Lock()
	known, fresh := bytes.Equal(l.sound, cp.Note), l.fresh
	l.mu.Unlock()
	if known {
		l.remember(cp)
		return cp, false, nil
	}
	sc, verr := OpenCheckpoint(cp.Note, l.trusted, l.Origin())
	if verr == nil && (sc.Size != cp.Size || sc.Root != cp.Root) {
		verr = fmt.Errorf("%w: the note is of %d records, the row of %d", ErrTreeCorrupt, sc.Size, cp.Size)
	}
	if verr != nil && l.oldLogs(cp) {
		// The old log's, stored before the restore: this log serves only
		// its own, signing the tree afresh when it has none yet (a store
		// keeps the old one of the same size, so it may live only here).
		if fresh.Note != nil && fresh.Size >= cp.Size {
			return fresh, false, nil
		}
		return StoredCheckpoint{}, true, nil
	}
	if verr != nil {
		l.mu.Lock()
		first := !bytes.Equal(l.unsound, cp.Note)
		l.unsound = bytes.Clone(cp.Note)
		l.mu.Unlock()
		if first {
			l.logger.Error("evidence: the latest stored checkpoint is not one this log signed; serving one signed here",
				"size", cp.Size, "err", verr)
		}
		if fresh.Note != nil && fresh.Size >= cp.Size {
			return fresh, false, nil
		}
		return StoredCheckpoint{}, true, nil
	}
	l.mu.Lock()
	l.sound = bytes.Clone(cp.Note)
	l.mu.Unlock()
	l.remember(cp)
	return cp, false, nil
}

// oldLogs reports whether cp is a checkpoint of the log's previous origin
// (WithPreviousOrigin) signed by a trusted key.
func (l *Log) oldLogs(cp StoredCheckpoint) bool {
	if l.prevOrigin == "" || l.prevOrigin == l.Origin() {
		return false
	}
	sc, err := OpenCheckpoint(cp.Note, l.trusted, l.prevOrigin)
	return err == nil && sc.Size == cp.Size && sc.Root == cp.Root
}

// Halted is the rollback that stopped the log's signing
// (ErrLogRolledBack), nil while it signs: a replica whose log is halted
// fails every receipt and is not ready.
func (l *Log) Halted() error {
	if h := l.halt.Load(); h != nil {
		return h
	}
	return nil
}

// Checkpoint is the latest signed checkpoint.
func (l *Log) Checkpoint(ctx context.Context) (StoredCheckpoint, error) {
	if h := l.halt.Load(); h != nil {
		return StoredCheckpoint{}, h
	}
	cp, none, err := l.latest(ctx)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	if none {
		return l.checkpointGrowth(ctx, false)
	}
	return cp, nil
}

// Covering returns a servable checkpoint covering the first size records:
// the largest one known here when it covers them (no read), else the
// latest stored one, else one signed now in a round shared with every
// caller waiting (signing.go).
func (l *Log) Covering(ctx context.Context, size uint64) (StoredCheckpoint, error) {
	// A rolled-back database's records are in no checkpoint this log may
	// sign: their receipts fail rather than prove into a second history.
	if h := l.halt.Load(); h != nil {
		return StoredCheckpoint{}, h
	}
	if cp := l.known.Load(); cp != nil && cp.Size >= size {
		return *cp, nil
	}
	cp, none, err := l.latest(ctx)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	if !none && cp.Size >= size {
		return cp, nil
	}
	return l.signCovering(ctx, size)
}

// Receipt builds the receipt of a committed record, proving it into the
// latest checkpoint (signing one if none covers it yet).
func (l *Log) Receipt(ctx context.Context, rec Record) (Receipt, error) {
	cp, err := l.Covering(ctx, rec.Index+1)
	if err != nil {
		return Receipt{}, err
	}
	p, err := InclusionProof(ctx, l.store, rec.Index, cp.Size)
	if err != nil {
		return Receipt{}, err
	}
	r := NewReceipt(rec, p, SignedCheckpoint{Checkpoint: Checkpoint{Origin: l.Origin(), Size: cp.Size, Root: cp.Root}, Note: cp.Note})
	// A receipt that does not verify is still served (its verifier says
	// precisely what is wrong), but the operator must hear of it now. The
	// current key verifies almost every receipt; the stored keys are read
	// only for a checkpoint signed before a rotation or by another replica.
	_, err = VerifyReceipt(r, l.current)
	if errors.Is(err, ErrCheckpointSignature) {
		if vs, verr := l.verifiers(ctx); verr == nil {
			_, err = VerifyReceipt(r, vs)
		}
	}
	// An erased record (body and salt deleted on purpose) is expected not
	// to verify its body; anything else is tampering.
	erased := len(rec.Body) == 0 && len(rec.Salt) == 0
	if err != nil && !(erased && errors.Is(err, ErrRecordErased)) {
		// A database rolled back under the log proves its new records
		// into nothing published: found out here, before the next tick.
		if _, gerr := l.checkpointGrowth(ctx, false); errors.Is(gerr, ErrLogRolledBack) {
			return Receipt{}, gerr
		}
		l.logger.Error("evidence: a stored record does not verify", "index", rec.Index, "err", err)
	}
	return r, nil
}

// Consistency is the proof that the tree of size to extends the tree of
// size from; to must not exceed the committed tree.
func (l *Log) Consistency(ctx context.Context, from, to uint64) ([][HashSize]byte, error) {
	if from > to {
		return nil, fmt.Errorf("%w: from %d is after to %d", ErrTreeSize, from, to)
	}
	head, err := l.store.TreeHead(ctx)
	if err != nil {
		return nil, err
	}
	if to > head.Size {
		return nil, fmt.Errorf("%w: the log has %d records, not %d", ErrTreeSize, head.Size, to)
	}
	return ConsistencyProof(ctx, l.store, from, to)
}

// KeyInfo is one verifier key of the log.
type KeyInfo struct {
	Key     string
	Current bool
	AddedAt time.Time
}

// Keys lists the keys that verify the log's checkpoints: the current one
// and every one used before (so that old checkpoints stay verifiable).
func (l *Log) Keys(ctx context.Context) ([]KeyInfo, error) {
	stored, err := l.store.VerifierKeys(ctx)
	if err != nil {
		return nil, err
	}
	cur := l.signer.VerifierKey()
	out := make([]KeyInfo, 0, len(stored)+1)
	seen := false
	for _, k := range stored {
		out = append(out, KeyInfo{Key: k.Key, Current: k.Key == cur, AddedAt: k.AddedAt})
		seen = seen || k.Key == cur
	}
	if !seen {
		out = append(out, KeyInfo{Key: cur, Current: true, AddedAt: l.now().UTC()})
	}
	return out, nil
}

func (l *Log) verifiers(ctx context.Context) (note.Verifiers, error) {
	keys, err := l.Keys(ctx)
	if err != nil {
		return nil, err
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = k.Key
	}
	return Verifiers(ks...)
}

// MaxAuditPage bounds one page of AuditLeaves.
const MaxAuditPage = 1000

// BodyStatus says whether a stored body still matches its record hash.
type BodyStatus string

// Body states.
const (
	BodyIntact  BodyStatus = "intact"
	BodyErased  BodyStatus = "erased"
	BodyAltered BodyStatus = "altered"
	BodyMissing BodyStatus = "missing"
)

// AuditLeaf is one position of the log as an auditor checks it: the leaf
// the tree holds there, and the record stored there (if any).
type AuditLeaf struct {
	Index    uint64
	TreeLeaf [HashSize]byte
	// Record is the stored record's identity and hash, without body or
	// salt; zero when Body is BodyMissing.
	Record Record
	Body   BodyStatus
	// Nodes are the stored interior nodes (level 1 and up) whose subtrees
	// end at this position, lowest first: with them an auditor who
	// rebuilds the tree from the leaves checks every node proofs read.
	Nodes []Node
}

// endingAt lists the interior nodes whose perfect subtrees end at leaf i:
// (k, (i+1)/2^k - 1) for every k >= 1 with 2^k dividing i+1.
func endingAt(i uint64, ids []NodeID) []NodeID {
	for k := uint(1); k < 64 && (i+1)%(uint64(1)<<k) == 0; k++ {
		ids = append(ids, NodeID{Level: k, Index: (i+1)>>k - 1})
	}
	return ids
}

// AuditLeaves returns positions [from, to) of the committed tree (at most
// MaxAuditPage), each with the tree's leaf and the record stored there.
func (l *Log) AuditLeaves(ctx context.Context, from, to uint64) ([]AuditLeaf, error) {
	if from > to || to-from > MaxAuditPage {
		return nil, fmt.Errorf("%w: [%d, %d) is not a range of at most %d", ErrTreeSize, from, to, MaxAuditPage)
	}
	head, err := l.store.TreeHead(ctx)
	if err != nil {
		return nil, err
	}
	if to > head.Size {
		return nil, fmt.Errorf("%w: the log has %d records, not %d", ErrTreeSize, head.Size, to)
	}
	if from == to {
		return []AuditLeaf{}, nil
	}
	// The leaves, then the interior nodes ending in the page (about as
	// many again), in one read.
	ids := make([]NodeID, 0, 2*(to-from)+64)
	for i := from; i < to; i++ {
		ids = append(ids, NodeID{Level: 0, Index: i})
	}
	for i := from; i < to; i++ {
		ids = endingAt(i, ids)
	}
	hashes, err := l.store.TreeNodes(ctx, ids)
	if err != nil {
		return nil, err
	}
	leaves := hashes[:to-from]
	interior := hashes[to-from:]
	recs, err := l.store.RecordsBetween(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]AuditLeaf, to-from)
	n := 0
	for i := range out {
		out[i] = AuditLeaf{Index: from + uint64(i), TreeLeaf: leaves[i], Body: BodyMissing}
		for _, id := range endingAt(from+uint64(i), nil) {
			out[i].Nodes = append(out[i].Nodes, Node{ID: id, Hash: interior[n]})
			n++
		}
	}
	for _, r := range recs {
		if r.Index < from || r.Index >= to {
			continue
		}
		a := &out[r.Index-from]
		switch {
		case len(r.Body) == 0 && len(r.Salt) == 0:
			a.Body = BodyErased
		case RecordHash(r.Salt, r.Body) == r.Hash:
			a.Body = BodyIntact
		default:
			a.Body = BodyAltered
		}
		r.Body, r.Salt = nil, nil
		a.Record = r
	}
	return out, nil
}

// KeyName is the name part of a verifier key (name+hash+key).
func KeyName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}
