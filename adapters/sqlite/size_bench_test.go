package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// BenchCheckRecord is check n on subject as the service writes it, sealed:
// one in ten restricted, with two applied measures and one entry (about
// 1.6 KB), the others clear (about 400 bytes), so that the rows derived from
// checks (check index, lists, checked subjects) are part of the commit.
func BenchCheckRecord(tb testing.TB, n int, subject string, at time.Time) evidence.Record {
	measure := func(list, status string) string {
		return fmt.Sprintf(`{"id":"m-%s","list":%q,"effect":"restrict","mandatory":true,"status":%q,"text":"%s","legal_basis":"《安全生产法》","authority":"应急管理部","source":"国家发展改革委等"}`,
			list, list, status, strings.Repeat("限制", 40))
	}
	id := fmt.Sprintf("chk-%09d", n)
	outcome, measures, entries := "clear", "", ""
	if n%10 == 0 {
		outcome = "restrict"
		measures = measure("safety_production_blacklist", "applied") + "," + measure("court_dishonest_debtor", "applied") + "," +
			measure("tax_major_violation", "not_applicable")
		entries = `{"id":"e1","list":"safety_production_blacklist","list_name":"安全生产失信","list_kind":"black","status":"active","legal_basis":"《安全生产法》","decided_at":"2026-11-01T00:00:00Z","published_at":"2026-11-01T00:00:00Z"}`
	}
	body := fmt.Appendf(nil, `{"check_id":%q,"partner":"client-1","subject":{"id":%q,"kind":"organization"},"action":"government_procurement","reference":"credgate-bench","outcome":%q,"measures":[%s],"entries":[%s],"catalog_revision":"r1","data_as_of":"2026-11-02T09:00:00Z","checked_at":"2026-11-02T09:00:00Z","context":{"region":"450100"}}`,
		id, subject, outcome, measures, entries)
	r := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "client-1", At: at, Body: body}
	if err := r.Seal(); err != nil {
		tb.Fatal(err)
	}
	return r
}

// The database the size benchmarks start from: sizeChecks checks over
// sizeSubjects subjects, as the log of a server some months in service.
// -size.checks and -size.subjects change it.
var (
	sizeChecksFlag   = flag.Int("size.checks", 2_000_000, "checks in the database of the size benchmarks")
	sizeSubjectsFlag = flag.Int("size.subjects", 200_000, "subjects of the checks in the database of the size benchmarks")
	sizeCacheFlag    = flag.String("size.cache", "", "directory keeping the size benchmarks' database across runs (default: a temporary one, removed at the end)")
)

const sizeBatch = 20 // checks per commit, about one group commit at 2 000/s

func sizeSubject(i int) string { return fmt.Sprintf("91110108MB%08d", i) }

var sizeStart = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// sizeDir is where this test process keeps the database built for the size
// benchmarks, so that -count and several benchmarks build it once; removed
// when the process ends (TestMain) unless it is -size.cache's.
func sizeDir() string {
	if *sizeCacheFlag != "" {
		return filepath.Join(*sizeCacheFlag, fmt.Sprintf("credgate-size-bench-%d-%d", *sizeChecksFlag, *sizeSubjectsFlag))
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("credgate-size-bench-%d-%d-%d", os.Getpid(), *sizeChecksFlag, *sizeSubjectsFlag))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if *sizeCacheFlag == "" {
		os.RemoveAll(sizeDir())
	}
	os.Exit(code)
}

// sizedDB returns the path of a database holding sizeChecks checks on
// random subjects, building it on first use in this process: the store's
// own commit, 4 096 checks at a time, with a page cache large enough that
// the build does not wait on the reads it is about to measure.
func sizedDB(b *testing.B) string {
	dir := filepath.Join(sizeDir(), "built")
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	start := time.Now()
	sizeChecks, sizeSubjects := *sizeChecksFlag, *sizeSubjectsFlag
	tmp := filepath.Join(sizeDir(), "building")
	if err := os.RemoveAll(tmp); err != nil {
		b.Fatal(err)
	}
	s, err := Open(context.Background(), tmp, func(c *config) { c.writeCacheKiB = 1 << 20 })
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	const batch = 4096
	recs := make([]evidence.Record, 0, batch)
	for n := range sizeChecks {
		recs = append(recs, BenchCheckRecord(b, n, sizeSubject(rng.IntN(sizeSubjects)), sizeStart.Add(time.Duration(n)*time.Second)))
		if len(recs) == batch || n == sizeChecks-1 {
			if _, err := s.AppendBatch(context.Background(), recs); err != nil {
				s.Close()
				b.Fatal(err)
			}
			recs = recs[:0]
		}
		if (n+1)%(sizeChecks/10) == 0 {
			fmt.Fprintf(os.Stderr, "size benchmarks: %d checks written in %s\n", n+1, time.Since(start).Round(time.Second))
		}
	}
	// A checkpoint into the file and a WAL left empty: every benchmark
	// starts from the same file with the pages where a server finds them.
	if _, err := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		s.Close()
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d checks over %d subjects in %s: %d MiB", sizeChecks, sizeSubjects, time.Since(start).Round(time.Second), st.Size()>>20)
	return path
}

// copySized copies the built database into a directory of b's and opens a
// store on it with opts: each benchmark writes to a file of its own.
func copySized(b *testing.B, opts ...Option) *Store {
	from, err := os.Open(sizedDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer from.Close()
	dir := b.TempDir()
	to, err := os.Create(filepath.Join(dir, FileName))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(to, from); err != nil {
		to.Close()
		b.Fatal(err)
	}
	// Written back before the benchmark, not during its commits' syncs.
	if err := to.Sync(); err != nil {
		to.Close()
		b.Fatal(err)
	}
	if err := to.Close(); err != nil {
		b.Fatal(err)
	}
	s, err := Open(b.Context(), dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// cacheMisses is the number of pages the connection of db (a pool of one)
// has read into its page cache (sqlite3_db_status CACHE_MISS).
func cacheMisses(b *testing.B, db *sql.DB) int {
	c, err := db.Conn(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.Raw(func(dc any) error {
		cur, _, err := dc.(sqlite.DBStatus).Status(sqlite.DBStatusCacheMiss, false)
		n = cur
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return n
}

// readSyscalls is the process's read system calls so far (/proc/self/io
// syscr; -1 where there is none).
func readSyscalls() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("syscr: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// sizeVariants are the page caches (and memory maps) compared: SQLite's
// default, Open's writer, and between; the name is the cache of the
// writer and of each reader.
var sizeVariants = []struct {
	name string
	opt  Option
}{
	{"cache=2MiB", func(c *config) { c.writeCacheKiB = 0 }},
	{"cache=64MiB", func(c *config) { c.writeCacheKiB, c.readCacheKiB = 64<<10, 64<<10 }},
	{"cache=256MiB", func(c *config) { c.writeCacheKiB, c.readCacheKiB = 256<<10, 256<<10 }},
	{"cache=2MiB,mmap=4GiB", func(c *config) { c.writeCacheKiB, c.mmapBytes = 0, 4<<30 }},
}

// BenchmarkCommitAtSize measures the evidence commit (AppendLeaves, 20
// checks on random subjects) on a database already holding two million
// checks over 200 000 subjects, for each of sizeVariants. Besides ns/op (a
// commit) it reports the pages the writer read into its cache per commit
// (misses/commit) and the process's read syscalls per commit, the
// checkpointer's included (syscr/commit). The writer first reads the
// trees written at random places and makes 200 commits untimed, so that its
// cache holds what a running server's would.
// It is a benchmark only: the build takes minutes and 2 GiB of disk.
func BenchmarkCommitAtSize(b *testing.B) {
	sizedDB(b)
	for _, v := range sizeVariants {
		b.Run(v.name, func(b *testing.B) {
			s := copySized(b, v.opt)
			rng := rand.New(rand.NewPCG(2, 2))
			n, sizeSubjects := *sizeChecksFlag, *sizeSubjectsFlag
			batch := func() ([]evidence.Record, [][evidence.HashSize]byte) {
				recs := make([]evidence.Record, sizeBatch)
				leaves := make([][evidence.HashSize]byte, sizeBatch)
				for i := range recs {
					recs[i] = BenchCheckRecord(b, n, sizeSubject(rng.IntN(sizeSubjects)), sizeStart.Add(time.Duration(n)*time.Second))
					leaves[i] = evidence.LeafHash(recs[i])
					n++
				}
				return recs, leaves
			}
			// A server's writer has the trees a check writes at random
			// places in its cache as far as they fit: read them through
			// once, then commit.
			for _, q := range []string{
				`SELECT count(*) FROM check_index INDEXED BY check_index_subject WHERE subject > ''`,
			} {
				if _, err := s.w.ExecContext(b.Context(), q); err != nil {
					b.Fatal(err)
				}
			}
			for range 200 {
				recs, leaves := batch()
				if _, err := s.AppendLeaves(b.Context(), recs, leaves); err != nil {
					b.Fatal(err)
				}
			}
			misses, syscr := cacheMisses(b, s.w), readSyscalls()
			commits := 0
			for b.Loop() {
				b.StopTimer()
				recs, leaves := batch()
				b.StartTimer()
				if _, err := s.AppendLeaves(b.Context(), recs, leaves); err != nil {
					b.Fatal(err)
				}
				commits++
			}
			b.ReportMetric(float64(cacheMisses(b, s.w)-misses)/float64(commits), "misses/commit")
			b.ReportMetric(float64(readSyscalls()-syscr)/float64(commits), "syscr/commit")
		})
	}
}

// BenchmarkLastCheckAtSize measures a reader on the same database: the last
// check of a random subject (LastChecks, one probe: a descent of
// check_index_subject and a read of the check found), from 4 goroutines per CPU
// on the read pool (of the default size).
func BenchmarkLastCheckAtSize(b *testing.B) {
	path := sizedDB(b)
	for _, v := range sizeVariants {
		b.Run(v.name, func(b *testing.B) {
			// Only reads: on the built file itself.
			s, err := Open(b.Context(), filepath.Dir(path), v.opt)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			sizeSubjects := *sizeSubjectsFlag
			until := sizeStart.Add(time.Duration(*sizeChecksFlag) * time.Second)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
				for pb.Next() {
					p := service.CheckProbe{Subject: sizeSubject(rng.IntN(sizeSubjects)), Action: "government_procurement", At: until, Since: sizeStart}
					if _, err := s.LastChecks(b.Context(), "", []service.CheckProbe{p}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
