package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/credgate/credgate/internal/durable"
)

// The spool is where a replica keeps the evidence of the checks it
// answered while the log's database could not commit them: an
// append-only local file, each entry checksummed and fsync'd before the
// answer leaves, later integrated into the log in order (service/spool.go).
//
// spool.log is a sequence of entries:
//
//	length  uint32, big-endian: the payload's size
//	hcrc    uint32: CRC-32C of the length bytes
//	pcrc    uint32: CRC-32C of the payload
//	payload JSON of spoolEntry
//
// The length has a checksum of its own so that a damaged length in the
// middle of the file is told from a write cut short at its end: only the
// latter is a torn tail, which a crash leaves behind and open truncates
// (it was never synced, so never answered on). Anything else that does not
// check is ErrSpoolCorrupt, and the spool refuses to open rather than skip
// what it cannot read.
//
// replica holds the replica's id, written whole (temporary file, fsync,
// rename) when the spool is created. integrated holds the position up to
// which entries are in the log: a fixed-width decimal (markSize bytes),
// written whole when the spool is opened and then rewritten in place and
// fsync'd at each mark. Rewriting blocks the file already has needs no
// free space, so a spool that filled its disk can still be integrated and
// then emptied (a temporary file per mark could not be written there). The
// mark fits in one sector, whose write a disk does whole, as PostgreSQL
// assumes of pg_control; older releases wrote it unpadded, which both read.

// Errors of the spool.
var (
	// ErrSpoolCorrupt: an entry before the end of the spool does not check.
	ErrSpoolCorrupt = errors.New("evidence spool corrupt")
	// ErrSpoolFull: appending would take the spool past its size limit.
	ErrSpoolFull = errors.New("evidence spool full")
	// ErrSpoolBroken: a write or sync of the spool failed; after a failed
	// fsync nothing written since the last good one can be trusted, so the
	// spool takes no more entries until it is reopened.
	ErrSpoolBroken = errors.New("evidence spool broken")
	// ErrSpoolLocked: another process holds the spool directory.
	ErrSpoolLocked = errors.New("evidence spool in use by another process")
	// ErrNotSpool: a directory that was to hold a spool already has none
	// (no replica file): WithSpoolExisting, ReadSpoolStats.
	ErrNotSpool = errors.New("not a spool directory (no replica file)")
)

const (
	spoolFile      = "spool.log"
	integratedFile = "integrated"
	replicaFile    = "replica"
	lockFile       = "spool.lock"
	// markSize is the size of the integrated file: 20 digits (any uint64)
	// and a newline.
	markSize    = 21
	entryHeader = 12
	// MaxSpoolEntry bounds one entry's payload (a record's body is at most
	// a few hundred KiB).
	MaxSpoolEntry = 4 << 20
	// DefaultSpoolMaxBytes is the default size limit of a spool file.
	DefaultSpoolMaxBytes = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SpoolEntry is a spooled record and its place in the replica's spool.
type SpoolEntry struct {
	// Position is the entry's position in the replica's spool, from 1,
	// never reused (not even after the spool is compacted).
	Position uint64
	Replica  string
	Record   Record
}

// spoolEntry is an entry's payload.
type spoolEntry struct {
	Position uint64    `json:"position"`
	Replica  string    `json:"replica"`
	ID       string    `json:"id"`
	Kind     Kind      `json:"kind"`
	Partner  string    `json:"partner"`
	At       time.Time `json:"at"`
	Body     []byte    `json:"body"`
	Salt     []byte    `json:"salt"`
	Hash     string    `json:"hash"`
}

// Spool is one replica's evidence spool. It is safe for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64
	// existing: open only a spool that is there (WithSpoolExisting).
	existing bool
	replica  string
	lock     *os.File
	// mark is the integrated file, rewritten in place.
	mark *os.File

	mu   sync.Mutex
	cond *sync.Cond
	f    *os.File
	size int64 // bytes written
	// synced is the size known durable; syncing says a sync is under way
	// (its caller syncs for everyone who wrote before it: group commit).
	synced  int64
	syncing bool
	broken  error
	// next is the position the next entry takes; integrated the last
	// position in the log.
	next, integrated uint64
	// pending are the offsets and times of the entries after integrated.
	pending []pendingEntry
}

type pendingEntry struct {
	pos    uint64
	offset int64
	at     time.Time
}

// SpoolOption configures a Spool.
type SpoolOption func(*Spool)

// WithSpoolMaxBytes limits the spool file's size; past it Append fails
// with ErrSpoolFull (and the check fails closed).
func WithSpoolMaxBytes(n int64) SpoolOption {
	return func(s *Spool) {
		if n > 0 {
			s.maxBytes = n
		}
	}
}

// WithSpoolExisting makes OpenSpool refuse a directory that holds no
// spool (ErrNotSpool) instead of creating one there: an operator who
// points `credgate spool integrate` at the wrong directory is told so,
// and nothing is written to it.
func WithSpoolExisting() SpoolOption {
	return func(s *Spool) { s.existing = true }
}

// OpenSpool opens (creating it if needed) the spool in dir and locks it
// for this process. A torn tail is truncated; a corrupt entry before it is
// ErrSpoolCorrupt.
func OpenSpool(dir string, opts ...SpoolOption) (*Spool, error) {
	s := &Spool{dir: dir, maxBytes: DefaultSpoolMaxBytes}
	for _, o := range opts {
		o(s)
	}
	s.cond = sync.NewCond(&s.mu)
	if s.existing {
		if _, err := readReplica(dir); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrSpoolLocked, dir)
		}
		return nil, fmt.Errorf("spool lock: %w", err)
	}
	s.lock = lock
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Spool) open() error {
	var err error
	if s.existing {
		s.replica, err = readReplica(s.dir)
	} else {
		s.replica, err = readOrCreateReplica(s.dir)
	}
	if err != nil {
		return err
	}
	if s.integrated, err = readIntegrated(s.dir); err != nil {
		return err
	}
	if s.mark, err = openMark(s.dir, s.integrated); err != nil {
		return err
	}
	path := filepath.Join(s.dir, spoolFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	s.f = f
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read spool: %w", err)
	}
	entries, offsets, good, err := scanSpool(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if s.pending, s.next, err = pendingOf(path, s.replica, s.integrated, entries, offsets); err != nil {
		return err
	}
	if good < int64(len(data)) {
		// A torn tail: never synced, so never answered on.
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("truncate the spool's torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync spool: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return err
	}
	s.size, s.synced = good, good
	if len(s.pending) == 0 && s.size > 0 {
		return s.compact()
	}
	return nil
}

// pendingOf checks the entries read from a spool file (in order, the
// replica's own) and returns those after integrated, and the next
// position.
func pendingOf(path, replica string, integrated uint64, entries []SpoolEntry, offsets []int64) ([]pendingEntry, uint64, error) {
	var pending []pendingEntry
	next := integrated + 1
	for i, e := range entries {
		if i > 0 && e.Position != entries[i-1].Position+1 {
			return nil, 0, fmt.Errorf("%s: %w: position %d follows %d", path, ErrSpoolCorrupt, e.Position, entries[i-1].Position)
		}
		if e.Replica != replica {
			return nil, 0, fmt.Errorf("%s: %w: entry %d is of replica %q, the spool of %q", path, ErrSpoolCorrupt, e.Position, e.Replica, replica)
		}
		if e.Position > integrated {
			pending = append(pending, pendingEntry{pos: e.Position, offset: offsets[i], at: e.Record.At})
		}
		next = max(next, e.Position+1)
	}
	if len(pending) > 0 && pending[0].pos != integrated+1 {
		return nil, 0, fmt.Errorf("%s: %w: entries %d to %d are missing", path, ErrSpoolCorrupt, integrated+1, pending[0].pos-1)
	}
	return pending, next, nil
}

// Replica is the replica's id, generated when the spool was created.
func (s *Spool) Replica() string { return s.replica }

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Append writes recs to the spool and returns once they are durable (one
// fsync for every record appended meanwhile), with their positions. The
// records must be sealed.
func (s *Spool) Append(ctx context.Context, recs ...Record) ([]SpoolEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]SpoolEntry, len(recs))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return nil, s.broken
	}
	var buf bytes.Buffer
	offsets := make([]int64, len(recs))
	for i, r := range recs {
		if r.Salt == nil {
			return nil, fmt.Errorf("%w: record %q is not sealed", ErrInvalidRecord, r.ID)
		}
		if err := r.Validate(); err != nil {
			return nil, err
		}
		out[i] = SpoolEntry{Position: s.next + uint64(i), Replica: s.replica, Record: r}
		offsets[i] = s.size + int64(buf.Len())
		if err := appendEntry(&buf, out[i]); err != nil {
			return nil, err
		}
	}
	if s.size+int64(buf.Len()) > s.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes held, limit %d", ErrSpoolFull, s.size, s.maxBytes)
	}
	if _, err := s.f.Write(buf.Bytes()); err != nil {
		// Cut back what was partly written; if that fails too, trust
		// nothing more.
		if terr := s.f.Truncate(s.size); terr != nil {
			s.broken = fmt.Errorf("%w: write: %w", ErrSpoolBroken, err)
		} else if _, serr := s.f.Seek(s.size, io.SeekStart); serr != nil {
			s.broken = fmt.Errorf("%w: write: %w", ErrSpoolBroken, err)
		}
		return nil, fmt.Errorf("write spool: %w", err)
	}
	s.size += int64(buf.Len())
	end := s.size
	s.next += uint64(len(recs))
	for i := range out {
		s.pending = append(s.pending, pendingEntry{pos: out[i].Position, offset: offsets[i], at: out[i].Record.At})
	}
	if err := s.syncTo(end); err != nil {
		return nil, err
	}
	return out, nil
}

// syncTo waits until the file is durable up to end, syncing it itself if
// no sync that covers end is under way. Called with s.mu held.
func (s *Spool) syncTo(end int64) error {
	for s.synced < end {
		if s.broken != nil {
			return s.broken
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		target := s.size
		s.mu.Unlock()
		err := s.f.Sync()
		s.mu.Lock()
		s.syncing = false
		if err != nil {
			s.broken = fmt.Errorf("%w: fsync: %w", ErrSpoolBroken, err)
		} else {
			s.synced = max(s.synced, target)
		}
		s.cond.Broadcast()
	}
	return nil
}

// Pending returns up to n entries not yet integrated, in order.
func (s *Spool) Pending(n int) ([]SpoolEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 || n <= 0 {
		return nil, nil
	}
	if s.synced < s.size {
		// Only what is durable is handed out: an entry whose sync failed
		// was never answered on.
		if err := s.syncTo(s.size); err != nil {
			return nil, err
		}
	}
	take := s.pending[:min(n, len(s.pending))]
	from := take[0].offset
	to := s.size
	if len(take) < len(s.pending) {
		to = s.pending[len(take)].offset
	}
	buf := make([]byte, to-from)
	if _, err := s.f.ReadAt(buf, from); err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	entries, good, err := ScanSpool(buf)
	if err != nil || good != int64(len(buf)) || len(entries) != len(take) {
		return nil, fmt.Errorf("%w: entries %d to %d no longer read back: %v", ErrSpoolCorrupt, take[0].pos, take[len(take)-1].pos, err)
	}
	return entries, nil
}

// MarkIntegrated records that every entry up to pos is in the log. The
// mark is durable before it returns; once nothing is pending, the spool
// file is emptied (positions go on from where they were).
func (s *Spool) MarkIntegrated(pos uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos <= s.integrated {
		return nil
	}
	if pos >= s.next {
		return fmt.Errorf("mark spool position %d integrated: only %d entries were spooled", pos, s.next-1)
	}
	// In place: the blocks are the file's already, so a full disk does
	// not stop the mark, and the compaction after it that frees the disk.
	if _, err := s.mark.WriteAt(markBytes(pos), 0); err != nil {
		return fmt.Errorf("mark spool integrated: %w", err)
	}
	if err := s.mark.Sync(); err != nil {
		return fmt.Errorf("mark spool integrated: %w", err)
	}
	s.integrated = pos
	i := 0
	for i < len(s.pending) && s.pending[i].pos <= pos {
		i++
	}
	s.pending = s.pending[i:]
	if len(s.pending) == 0 {
		return s.compact()
	}
	return nil
}

// compact empties a spool whose entries are all integrated. Called with
// s.mu held (or before the spool is shared).
func (s *Spool) compact() error {
	for s.syncing {
		s.cond.Wait()
	}
	if len(s.pending) > 0 {
		return nil // appended to while the sync finished
	}
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("compact spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("compact spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		s.broken = fmt.Errorf("%w: fsync: %w", ErrSpoolBroken, err)
		return s.broken
	}
	s.size, s.synced = 0, 0
	return nil
}

// SpoolStats is the spool's state.
type SpoolStats struct {
	Replica string
	Pending int
	// Oldest is the time of the oldest pending record; zero when none.
	Oldest     time.Time
	Bytes      int64
	Integrated uint64 // the last position in the log
	Next       uint64
	Broken     error
}

// Stats reports the spool's state.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SpoolStats{Replica: s.replica, Pending: len(s.pending), Bytes: s.size, Integrated: s.integrated, Next: s.next, Broken: s.broken}
	if len(s.pending) > 0 {
		st.Oldest = s.pending[0].at
	}
	return st
}

// ReadSpoolStats reads the state of the spool in dir without opening it:
// nothing is locked, created, truncated or compacted, so that it may look
// at a copy that must stay as it was, or beside the replica running on it
// (whose figures then move meanwhile). A torn tail is not counted.
// ErrNotSpool: dir holds no spool.
func ReadSpoolStats(dir string) (SpoolStats, error) {
	replica, err := readReplica(dir)
	if err != nil {
		return SpoolStats{}, err
	}
	// The file before the mark: a running replica only raises the mark,
	// and empties the file only up to it, so what is read then still
	// follows the mark read after it.
	path := filepath.Join(dir, spoolFile)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return SpoolStats{}, fmt.Errorf("read spool: %w", err)
	}
	integrated, err := readIntegrated(dir)
	if err != nil {
		return SpoolStats{}, err
	}
	entries, offsets, good, err := scanSpool(data)
	if err != nil {
		return SpoolStats{}, fmt.Errorf("%s: %w", path, err)
	}
	pending, next, err := pendingOf(path, replica, integrated, entries, offsets)
	if err != nil {
		return SpoolStats{}, err
	}
	st := SpoolStats{Replica: replica, Pending: len(pending), Bytes: good, Integrated: integrated, Next: next}
	if len(pending) > 0 {
		st.Oldest = pending[0].at
	}
	return st, nil
}

// Close closes the spool and releases its directory.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.f != nil {
		err = s.f.Close()
		s.f = nil
		if s.broken == nil {
			s.broken = fmt.Errorf("%w: closed", ErrSpoolBroken)
		}
	}
	if s.mark != nil {
		s.mark.Close()
		s.mark = nil
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
	return err
}

// appendEntry encodes e onto buf.
func appendEntry(buf *bytes.Buffer, e SpoolEntry) error {
	r := e.Record
	payload, err := json.Marshal(spoolEntry{Position: e.Position, Replica: e.Replica, ID: r.ID, Kind: r.Kind,
		Partner: r.Partner, At: r.At, Body: r.Body, Salt: r.Salt, Hash: hex.EncodeToString(r.Hash[:])})
	if err != nil {
		return fmt.Errorf("encode spool entry: %w", err)
	}
	if len(payload) > MaxSpoolEntry {
		return fmt.Errorf("%w: record %q is %d bytes, more than a spool entry holds (%d)", ErrInvalidRecord, r.ID, len(payload), MaxSpoolEntry)
	}
	var h [entryHeader]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[4:8], crc32.Checksum(h[0:4], castagnoli))
	binary.BigEndian.PutUint32(h[8:12], crc32.Checksum(payload, castagnoli))
	buf.Write(h[:])
	buf.Write(payload)
	return nil
}

// ScanSpool reads the entries of a spool file. It returns them and the
// length of the part that checks; a shorter length than data is a torn
// tail (a final entry cut short, or zeros past the last entry), which the
// caller may truncate. A damaged entry with anything but zeros after it is
// ErrSpoolCorrupt: it is never skipped.
func ScanSpool(data []byte) ([]SpoolEntry, int64, error) {
	out, _, good, err := scanSpool(data)
	return out, good, err
}

// scanSpool is ScanSpool, with the offset of each entry.
func scanSpool(data []byte) ([]SpoolEntry, []int64, int64, error) {
	var out []SpoolEntry
	var offsets []int64
	off := 0
	for off < len(data) {
		rest := data[off:]
		if len(rest) < entryHeader {
			return out, offsets, int64(off), nil // a header cut short
		}
		n := binary.BigEndian.Uint32(rest[0:4])
		if crc32.Checksum(rest[0:4], castagnoli) != binary.BigEndian.Uint32(rest[4:8]) {
			if allZero(rest) {
				return out, offsets, int64(off), nil
			}
			return nil, nil, 0, fmt.Errorf("%w: entry header at byte %d does not check", ErrSpoolCorrupt, off)
		}
		if n == 0 || n > MaxSpoolEntry {
			return nil, nil, 0, fmt.Errorf("%w: entry at byte %d claims %d bytes", ErrSpoolCorrupt, off, n)
		}
		if uint64(len(rest)-entryHeader) < uint64(n) {
			return out, offsets, int64(off), nil // a payload cut short
		}
		payload := rest[entryHeader : entryHeader+int(n)]
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(rest[8:12]) {
			if allZero(rest[entryHeader+int(n):]) {
				// The last entry's payload did not reach the disk whole.
				return out, offsets, int64(off), nil
			}
			return nil, nil, 0, fmt.Errorf("%w: entry at byte %d does not match its checksum", ErrSpoolCorrupt, off)
		}
		e, err := decodeEntry(payload)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%w: entry at byte %d: %w", ErrSpoolCorrupt, off, err)
		}
		out = append(out, e)
		offsets = append(offsets, int64(off))
		off += entryHeader + int(n)
	}
	return out, offsets, int64(off), nil
}

func decodeEntry(payload []byte) (SpoolEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var p spoolEntry
	if err := dec.Decode(&p); err != nil {
		return SpoolEntry{}, err
	}
	if dec.More() {
		return SpoolEntry{}, errors.New("data after the entry")
	}
	h, err := decodeHex32(p.Hash)
	if err != nil {
		return SpoolEntry{}, fmt.Errorf("hash: %w", err)
	}
	r := Record{ID: p.ID, Kind: p.Kind, Partner: p.Partner, At: p.At, Body: p.Body, Salt: p.Salt, Hash: h}
	if err := r.Validate(); err != nil {
		return SpoolEntry{}, err
	}
	if p.Position == 0 || p.Replica == "" {
		return SpoolEntry{}, errors.New("no position or replica")
	}
	if RecordHash(r.Salt, r.Body) != r.Hash {
		return SpoolEntry{}, fmt.Errorf("record %q: %w", r.ID, ErrRecordHash)
	}
	return SpoolEntry{Position: p.Position, Replica: p.Replica, Record: r}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readReplica reads the replica id kept in dir: ErrNotSpool when there is
// none.
func readReplica(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, replicaFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", dir, ErrNotSpool)
	}
	if err != nil {
		return "", fmt.Errorf("spool replica id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " \n\t") {
		return "", fmt.Errorf("%w: %s holds no replica id", ErrSpoolCorrupt, filepath.Join(dir, replicaFile))
	}
	return id, nil
}

// readOrCreateReplica reads the replica id kept in dir, or generates one.
func readOrCreateReplica(dir string) (string, error) {
	id, err := readReplica(dir)
	if !errors.Is(err, ErrNotSpool) {
		return id, err
	}
	raw := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	id = "replica-" + hex.EncodeToString(raw)
	if err := durable.WriteFile(dir, replicaFile, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("spool replica id: %w", err)
	}
	return id, nil
}

func readIntegrated(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, integratedFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("spool mark: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrSpoolCorrupt, filepath.Join(dir, integratedFile), err)
	}
	return n, nil
}

// markBytes is the integrated file's content for pos: fixed width, so
// that each mark overwrites the one before whole.
func markBytes(pos uint64) []byte {
	return []byte(fmt.Sprintf("%020d\n", pos))
}

// openMark opens the integrated file for rewriting in place, first
// writing it whole (temporary file and rename) when it is missing or
// unpadded (written by an older release), with integrated in it.
func openMark(dir string, integrated uint64) (*os.File, error) {
	path := filepath.Join(dir, integratedFile)
	if fi, err := os.Stat(path); err != nil || fi.Size() != markSize {
		if err := durable.WriteFile(dir, integratedFile, markBytes(integrated)); err != nil {
			return nil, fmt.Errorf("spool mark: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool mark: %w", err)
	}
	return f, nil
}
