package evidence_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/credgate/credgate/evidence"
)

// memStore keeps the log in memory the way the adapters keep it in a
// database (records, every completed node, the head), so that the tree
// arithmetic and the Log can be tested fast and exhaustively here; the
// adapters run the same properties against the real databases in
// adapters/storetest.
type memStore struct {
	mu     sync.Mutex
	recs   []evidence.Record
	nodes  map[evidence.NodeID][evidence.HashSize]byte
	head   evidence.Head
	cps    []evidence.StoredCheckpoint
	keys   []evidence.StoredKey
	reads  int // node reads, to check that proofs are O(log n)
	failAt error
}

func newMemStore() *memStore {
	return &memStore{nodes: map[evidence.NodeID][evidence.HashSize]byte{}, head: evidence.Head{Root: evidence.EmptyRoot()}}
}

func (m *memStore) AppendBatch(_ context.Context, recs []evidence.Record) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failAt != nil {
		return 0, m.failAt
	}
	tree, err := evidence.TreeFrom(m.head)
	if err != nil {
		return 0, err
	}
	first := uint64(len(m.recs))
	for _, r := range recs {
		r.Index = uint64(len(m.recs))
		r.At = r.At.UTC().Truncate(time.Microsecond)
		m.recs = append(m.recs, r)
		tree.Append(evidence.LeafHash(r), func(id evidence.NodeID, h [evidence.HashSize]byte) {
			if _, dup := m.nodes[id]; dup {
				panic(fmt.Sprintf("node %v written twice", id))
			}
			m.nodes[id] = h
		})
	}
	m.head = tree.Head()
	return first, nil
}

func (m *memStore) TreeNodes(_ context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][evidence.HashSize]byte, len(ids))
	for i, id := range ids {
		h, ok := m.nodes[id]
		if !ok {
			return nil, fmt.Errorf("%w: node %v", evidence.ErrTreeCorrupt, id)
		}
		out[i] = h
		m.reads++
	}
	return out, nil
}

func (m *memStore) TreeHead(context.Context) (evidence.Head, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.head, nil
}

func (m *memStore) Record(_ context.Context, id string) (evidence.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.ID == id {
			return r, nil
		}
	}
	return evidence.Record{}, evidence.ErrNotFound
}

func (m *memStore) RecordsBetween(_ context.Context, from, to uint64) ([]evidence.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []evidence.Record
	for _, r := range m.recs {
		if r.Index >= from && r.Index < to {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) LatestCheckpoint(context.Context) (evidence.StoredCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cps) == 0 {
		return evidence.StoredCheckpoint{}, evidence.ErrNoCheckpoint
	}
	return m.cps[len(m.cps)-1], nil
}

func (m *memStore) Checkpoints(_ context.Context, below uint64, limit int) ([]evidence.StoredCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []evidence.StoredCheckpoint{}
	for i := len(m.cps) - 1; i >= 0 && len(out) < limit; i-- {
		if below == 0 || m.cps[i].Size < below {
			out = append(out, m.cps[i])
		}
	}
	return out, nil
}

func (m *memStore) AddCheckpoint(_ context.Context, c evidence.StoredCheckpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.cps {
		if have.Size == c.Size {
			return nil
		}
	}
	m.cps = append(m.cps, c)
	slices.SortFunc(m.cps, func(a, b evidence.StoredCheckpoint) int { return int(a.Size) - int(b.Size) })
	return nil
}

func (m *memStore) checkpointCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cps)
}

func (m *memStore) AddVerifierKey(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.Key == key {
			return nil
		}
	}
	m.keys = append(m.keys, evidence.StoredKey{Key: key, AddedAt: time.Now().UTC()})
	return nil
}

func (m *memStore) VerifierKeys(context.Context) ([]evidence.StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys), nil
}

// referenceRoot is RFC 6962's MTH computed the slow, obvious way, as an
// independent check on the compact-range arithmetic.
func referenceRoot(leaves [][evidence.HashSize]byte) [evidence.HashSize]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := referenceRoot(leaves[:k]), referenceRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}
