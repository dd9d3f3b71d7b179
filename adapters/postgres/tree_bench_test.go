package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

func BenchmarkGroupCommit(b *testing.B) { storetest.BenchGroupCommit(b, openStore) }

// nodeSource streams the nodes of a synthetic tree of n leaves to COPY,
// computed by the same evidence.Tree that AppendBatch uses, without
// holding them in memory.
type nodeSource struct {
	tree    *evidence.Tree
	n, next uint64
	buf     [][]any
	row     []any
}

func (s *nodeSource) Next() bool {
	for len(s.buf) == 0 {
		if s.next == s.n {
			return false
		}
		var leaf [evidence.HashSize]byte
		binary.BigEndian.PutUint64(leaf[:8], s.next)
		leaf = sha256.Sum256(leaf[:])
		s.tree.Append(leaf, func(id evidence.NodeID, h [evidence.HashSize]byte) {
			s.buf = append(s.buf, []any{int16(id.Level), int64(id.Index), slices.Clone(h[:])})
		})
		s.next++
	}
	s.row, s.buf = s.buf[0], s.buf[1:]
	return true
}

func (s *nodeSource) Values() ([]any, error) { return s.row, nil }
func (s *nodeSource) Err() error             { return nil }

// BenchmarkProof measures the inclusion and consistency proofs of logs of
// a thousand and of 10 million leaves (CREDGATE_BENCH_TREE_LEAVES to change
// the larger), read from PostgreSQL through the store's real proof path
// (TreeNodes: one query of primary-key probes), so that one run gives the
// ratio. Each tree is built synthetically: its nodes are computed by
// evidence.Tree, as AppendBatch computes them, and bulk-copied instead of
// appended batch by batch; records are not needed for proofs.
func BenchmarkProof(b *testing.B) {
	large := uint64(10_000_000)
	if v := os.Getenv("CREDGATE_BENCH_TREE_LEAVES"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 2 {
			b.Fatalf("CREDGATE_BENCH_TREE_LEAVES=%q", v)
		}
		large = n
	}
	for _, leaves := range []uint64{1000, large} {
		b.Run(fmt.Sprintf("leaves=%d", leaves), func(b *testing.B) { benchProof(b, leaves) })
	}
}

func benchProof(b *testing.B, leaves uint64) {
	url, admin := testenv.Postgres(b)
	schema := testenv.FreshSchema(b, "credgate_test")
	s := openIn(b, url, schema, postgres.WithMaxConns(8))
	ctx := context.Background()
	start := time.Now()
	tree, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	src := &nodeSource{tree: tree, n: leaves}
	nodes := pgx.Identifier{schema, "evidence_nodes"}
	// Bulk load without the primary key, then build it once.
	if _, err := admin.Exec(ctx, `ALTER TABLE `+nodes.Sanitize()+` DROP CONSTRAINT evidence_nodes_pkey`); err != nil {
		b.Fatal(err)
	}
	copied, err := admin.CopyFrom(ctx, nodes, []string{"level", "idx", "hash"}, src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ALTER TABLE `+nodes.Sanitize()+` ADD PRIMARY KEY (level, idx)`); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ANALYZE `+nodes.Sanitize()); err != nil {
		b.Fatal(err)
	}
	h := tree.Head()
	if _, err := admin.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "evidence_tree_head"}.Sanitize()+
		` SET size = $1, root = $2, border = $3 WHERE id = 1`, int64(h.Size), h.Root[:], h.Border); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a tree of %d leaves (%d nodes) in %s", leaves, copied, time.Since(start).Round(time.Second))
	root := tree.Root()
	leafAt := func(i uint64) [evidence.HashSize]byte {
		var l [evidence.HashSize]byte
		binary.BigEndian.PutUint64(l[:8], i)
		return sha256.Sum256(l[:])
	}

	b.Run("inclusion", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			i := rng.Uint64N(leaves)
			p, err := evidence.InclusionProof(ctx, s, i, leaves)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := evidence.VerifyInclusion(leafAt(i), i, leaves, p, root); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("consistency", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 4))
		for b.Loop() {
			from := 1 + rng.Uint64N(leaves-1)
			if _, err := evidence.ConsistencyProof(ctx, s, from, leaves); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("inclusion-parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 5))
			for pb.Next() {
				if _, err := evidence.InclusionProof(ctx, s, rng.Uint64N(leaves), leaves); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
