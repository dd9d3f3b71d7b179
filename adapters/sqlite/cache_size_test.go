package sqlite

import (
	"database/sql"
	"testing"
)

// TestCacheSizeOnEveryConnection: the page cache and memory map the size
// benchmarks compare are in effect on the writer and on every reader of
// the pool (all open at once, so that each is a connection of its own),
// not on the checkpointer; by default every connection has SQLite's.
func TestCacheSizeOnEveryConnection(t *testing.T) {
	const readers = 3
	type want struct{ write, read, mmap int64 }
	for name, c := range map[string]struct {
		opt  Option
		want want
	}{
		"default": {func(*config) {}, want{-2000, -2000, 0}},
		"set": {func(c *config) { c.writeCacheKiB, c.readCacheKiB, c.mmapBytes = 64<<10, 32<<10, 1<<20 },
			want{-64 << 10, -32 << 10, 1 << 20}},
	} {
		t.Run(name, func(t *testing.T) {
			s := openTemp(t, WithReadConns(readers), c.opt)
			ctx := t.Context()
			check := func(kind string, db *sql.DB, wantCache, wantMmap int64) {
				t.Helper()
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				var cache, mmap int64
				if err := conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, `PRAGMA mmap_size`).Scan(&mmap); err != nil {
					t.Fatal(err)
				}
				if cache != wantCache || mmap != wantMmap {
					t.Errorf("%s: cache_size %d, mmap_size %d; want %d, %d", kind, cache, mmap, wantCache, wantMmap)
				}
			}
			check("writer", s.w, c.want.write, c.want.mmap)
			for range readers {
				check("reader", s.r, c.want.read, c.want.mmap)
			}
			if s.ckpt == nil {
				t.Fatal("no checkpointer")
			}
			check("checkpointer", s.ckpt.db, -2000, 0)
		})
	}
}
