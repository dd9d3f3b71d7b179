package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
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

// sizeDir is where this test process keeps the databases built for the size
// benchmarks, so that -count and several benchmarks build each once; removed
// when the process ends (TestMain) unless it is -size.cache's.
func sizeDir() string {
	if *sizeCacheFlag != "" {
		return filepath.Join(*sizeCacheFlag, fmt.Sprintf("credgate-size-bench-%d-%d", *sizeChecksFlag, *sizeSubjectsFlag))
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("credgate-size-bench-%d-%d-%d", os.Getpid(), *sizeChecksFlag, *sizeSubjectsFlag))
}

// sizePages are the page sizes the size benchmarks compare: SQLite's
// default and two larger, each a database built with it (a file keeps the
// page size it was created with).
var sizePages = []int{4096, 8192, 16384}

// builtDir is the directory of the database built with pages of pageSize
// bytes; 4 096's keeps the name it had before page sizes were compared.
func builtDir(pageSize int) string {
	if pageSize == 4096 {
		return filepath.Join(sizeDir(), "built")
	}
	return filepath.Join(sizeDir(), fmt.Sprintf("built-page%d", pageSize))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if *sizeCacheFlag == "" {
		os.RemoveAll(sizeDir())
	}
	os.Exit(code)
}

// sizedDB returns the path of a database with pages of pageSize bytes
// holding sizeChecks checks on random subjects, building it on first use:
// the store's own commit, 4 096 checks at a time, with a page cache large
// enough that the build does not wait on the reads it is about to measure.
// The same checks on the same subjects for every page size.
func sizedDB(b *testing.B, pageSize int) string {
	dir := builtDir(pageSize)
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	start := time.Now()
	sizeChecks, sizeSubjects := *sizeChecksFlag, *sizeSubjectsFlag
	tmp := dir + ".building"
	if err := os.RemoveAll(tmp); err != nil {
		b.Fatal(err)
	}
	s, err := Open(context.Background(), tmp, func(c *config) { c.writeCacheKiB, c.pageSize = 1<<20, pageSize })
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
			fmt.Fprintf(os.Stderr, "size benchmarks, page %d: %d checks written in %s\n", pageSize, n+1, time.Since(start).Round(time.Second))
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
	b.Logf("built %d checks over %d subjects, pages of %d bytes, in %s: %d MiB", sizeChecks, sizeSubjects, pageSize, time.Since(start).Round(time.Second), st.Size()>>20)
	return path
}

// copySized copies the database built with pageSize into a directory of
// b's and opens a store on it with opts: each benchmark writes to a file of
// its own.
func copySized(b *testing.B, pageSize int, opts ...Option) (*Store, string) {
	from, err := os.Open(sizedDB(b, pageSize))
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
	return s, dir
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

// procIO is the process's I/O counters so far (/proc/self/io): read and
// write system calls and bytes written; -1 each where there is none.
func procIO() (syscr, syscw, wchar int64) {
	syscr, syscw, wchar = -1, -1, -1
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(": "))
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			continue
		}
		switch string(k) {
		case "syscr":
			syscr = n
		case "syscw":
			syscw = n
		case "wchar":
			wchar = n
		}
	}
	return
}

// walMark reads the WAL index's header (the first 48 bytes of the -shm
// file, in the machine's byte order): the frames in the WAL (mxFrame) and
// the salts, which change when a writer starts the WAL over.
func walMark(b *testing.B, dir string) (frames uint32, salt uint64) {
	f, err := os.Open(filepath.Join(dir, FileName+"-shm"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var h [48]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		b.Fatal(err)
	}
	return binary.NativeEndian.Uint32(h[16:]), binary.NativeEndian.Uint64(h[32:])
}

// walFramesSince is the frames the commits since (frames0, salt0) wrote:
// the difference, or all of the WAL if a writer started it over (the
// only writer is the benchmark's, which reads the mark after each commit).
func walFramesSince(frames0 uint32, salt0 uint64, frames uint32, salt uint64) uint32 {
	if salt != salt0 {
		return frames
	}
	return frames - frames0
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
// checks over 200 000 subjects, for each of sizePages and sizeVariants
// (page=N/cache=…). Besides ns/op (a commit) it reports per commit the
// pages the writer read into its cache (misses), the WAL frames it wrote
// and their bytes (a 24-byte header and a page each), and the process's
// read and write syscalls and bytes written, the checkpointer's included.
// The writer first reads the trees written at random places and makes 200
// commits untimed, so that its cache holds what a running server's would.
// It is a benchmark only: each page size's build takes minutes and 2 GiB
// of disk.
func BenchmarkCommitAtSize(b *testing.B) {
	for _, pageSize := range sizePages {
		b.Run(fmt.Sprintf("page=%d", pageSize), func(b *testing.B) {
			sizedDB(b, pageSize)
			for _, v := range sizeVariants {
				b.Run(v.name, func(b *testing.B) { benchCommitAtSize(b, pageSize, v.opt) })
			}
		})
	}
}

func benchCommitAtSize(b *testing.B, pageSize int, opt Option) {
	s, dir := copySized(b, pageSize, opt)
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
	// A server's writer has the trees a check writes at random places in
	// its cache as far as they fit: read them through once, then commit.
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
	misses := cacheMisses(b, s.w)
	syscr, syscw, wchar := procIO()
	mark, salt := walMark(b, dir)
	var commits, frames int
	for b.Loop() {
		b.StopTimer()
		recs, leaves := batch()
		b.StartTimer()
		if _, err := s.AppendLeaves(b.Context(), recs, leaves); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		// After each commit: the WAL may start over at the next.
		m, sa := walMark(b, dir)
		frames += int(walFramesSince(mark, salt, m, sa))
		mark, salt = m, sa
		b.StartTimer()
		commits++
	}
	syscr1, syscw1, wchar1 := procIO()
	per := func(v int64) float64 { return float64(v) / float64(commits) }
	b.ReportMetric(per(int64(cacheMisses(b, s.w)-misses)), "misses/commit")
	b.ReportMetric(per(int64(frames)), "frames/commit")
	b.ReportMetric(per(int64(frames)*int64(24+pageSize))/1024, "walKiB/commit")
	b.ReportMetric(per(syscr1-syscr), "syscr/commit")
	b.ReportMetric(per(syscw1-syscw), "syscw/commit")
	b.ReportMetric(per(wchar1-wchar)/1024, "wKiB/commit")
}

// BenchmarkLastCheckAtSize measures a reader on the same databases (each
// of sizePages and sizeVariants): the last check of a random subject
// (LastChecks, one probe: a descent of check_index_subject and a read of
// the check found), from 4 goroutines per CPU on the read pool (of the
// default size).
func BenchmarkLastCheckAtSize(b *testing.B) {
	for _, pageSize := range sizePages {
		b.Run(fmt.Sprintf("page=%d", pageSize), func(b *testing.B) {
			path := sizedDB(b, pageSize)
			for _, v := range sizeVariants {
				b.Run(v.name, func(b *testing.B) { benchLastCheckAtSize(b, path, v.opt) })
			}
		})
	}
}

func benchLastCheckAtSize(b *testing.B, path string, opt Option) {
	// Only reads: on the built file itself.
	s, err := Open(b.Context(), filepath.Dir(path), opt)
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
}
