package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// An archive is the log taken out of the database, up to one signed
// checkpoint, so that it can be verified after the server and its database
// are gone. Its layout is C2SP tlog-tiles (what the gateway serves under
// /v1/evidence/tlog/) with credgate's additions beside it:
//
//	checkpoint                 the archive's last signed checkpoint (size n)
//	tile/<L>/<N>[.p/<W>]       hash tiles of the tree of size n
//	tile/entries/<N>[.p/<W>]   entry bundles: every record's leaf data
//	keys                       every verifier key that signed, one a line
//	checkpoints/<S>            every stored checkpoint of size S ≤ n
//	records/<N>[.p/<W>]        the records of bundle N, one JSON object a
//	                           line, with body and salt (empty once erased)
//	credgate-archive.json      the manifest (ArchiveManifest), unsigned
//
// <N> and <S> are spelt as tlog-tiles spells tile indexes (x001/x234/067).
// A tar archive holds the same files in the order WriteArchive writes them
// (keys, checkpoint, then bundle by bundle: entries, records, the tiles and
// checkpoints as the tree reaches them; the manifest last), so that it can
// be verified in one pass without unpacking.

// ArchiveFormat names the layout in the manifest.
const ArchiveFormat = "credgate-evidence-archive-v1"

// Names of the archive's fixed files.
const (
	ArchiveManifestName   = "credgate-archive.json"
	ArchiveKeysName       = "keys"
	ArchiveCheckpointName = "checkpoint"
)

// Bounds on what a reader of an archive reads into memory at once.
const (
	maxArchiveSmall   = 1 << 20
	maxArchiveRecords = 256 << 20
	maxArchiveEntries = TileWidth * (2 + 0xffff)
)

// ErrArchive: an archive does not verify (a file altered, missing, out of
// place, or not what the signed checkpoints say); the message names the
// file.
var ErrArchive = errors.New("archive does not verify")

// ArchiveManifest describes an archive. It is not signed: a reader checks
// it against what the signed checkpoints prove.
type ArchiveManifest struct {
	Format      string    `json:"format"`
	Origin      string    `json:"origin"`
	Size        uint64    `json:"size"`
	RootHash    string    `json:"root_hash"`
	Checkpoints uint64    `json:"checkpoints"`
	Keys        int       `json:"keys"`
	Bodies      bool      `json:"bodies"`
	Erased      uint64    `json:"erased"`
	CreatedAt   time.Time `json:"created_at"`
}

// ArchivedRecord is one line of a records file.
type ArchivedRecord struct {
	Index   uint64    `json:"index"`
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Partner string    `json:"partner"`
	At      time.Time `json:"at"`
	// RecordHash is hex SHA-256(salt ‖ body); Body and Salt are base64,
	// both empty for an erased record.
	RecordHash string `json:"record_hash"`
	Body       string `json:"body"`
	Salt       string `json:"salt"`
}

func (a ArchivedRecord) record() (Record, error) {
	h, err := decodeHex32(a.RecordHash)
	if err != nil {
		return Record{}, fmt.Errorf("record_hash: %w", err)
	}
	body, err := base64.StdEncoding.Strict().DecodeString(a.Body)
	if err != nil {
		return Record{}, fmt.Errorf("body is not base64: %w", err)
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(a.Salt)
	if err != nil {
		return Record{}, fmt.Errorf("salt is not base64: %w", err)
	}
	return Record{Index: a.Index, ID: a.ID, Kind: a.Kind, Partner: a.Partner, At: a.At, Body: body, Salt: salt, Hash: h}, nil
}

// groupedIndex spells n as tlog-tiles spells tile indexes.
func groupedIndex(n uint64) string {
	return strings.TrimPrefix(TileCoord{Entries: true, Index: n, Width: TileWidth}.Path(), "tile/entries/")
}

// ArchiveCheckpointPath is the name of the archived checkpoint of size.
func ArchiveCheckpointPath(size uint64) string { return "checkpoints/" + groupedIndex(size) }

// ArchiveRecordsPath is the name of the records file of entry bundle t.
func ArchiveRecordsPath(t TileCoord) string {
	return "records/" + strings.TrimPrefix(t.Path(), "tile/entries/")
}

// ArchiveNameWithin reports whether name is a file the layout has in an
// archive of a tree of size: a reader that finds another file has an
// archive someone added to.
func ArchiveNameWithin(name string, size uint64) bool {
	switch name {
	case ArchiveManifestName, ArchiveKeysName, ArchiveCheckpointName:
		return true
	}
	if rest, ok := strings.CutPrefix(name, "checkpoints/"); ok {
		t, err := ParseTilePath("entries/" + rest)
		return err == nil && t.Full() && t.Index <= size
	}
	p, ok := strings.CutPrefix(name, "tile/")
	if !ok {
		rest, ok := strings.CutPrefix(name, "records/")
		if !ok {
			return false
		}
		p = "entries/" + rest
	}
	t, err := ParseTilePath(p)
	if err != nil {
		return false
	}
	return TileWidthAt(t.Level, t.Index, size) == t.Width
}

// ArchiveSource is what WriteArchive reads from a store.
type ArchiveSource interface {
	NodeReader
	RecordsBetween(ctx context.Context, from, to uint64) ([]Record, error)
	// CheckpointsFrom lists the stored checkpoints of sizes from … through,
	// smallest first, at most limit of them.
	CheckpointsFrom(ctx context.Context, from, through uint64, limit int) ([]StoredCheckpoint, error)
	VerifierKeys(ctx context.Context) ([]StoredKey, error)
}

// ArchiveSink receives an archive's files in order.
type ArchiveSink interface {
	PutArchiveFile(name string, data []byte) error
}

// ArchiveFiles reads an archive's files. A file that is not there is an
// error wrapping fs.ErrNotExist. A reader of a tar stream is asked for the
// files in the order they were written, and answers fs.ErrNotExist for a
// name that is not the next one.
type ArchiveFiles interface {
	ReadArchiveFile(name string, limit int64) ([]byte, error)
}

// ArchiveOptions are WriteArchive's options.
type ArchiveOptions struct {
	// Bodies writes records/ (bodies and salts: the personal data the
	// log holds); without it only the leaf data is archived.
	Bodies bool
	// ExtraKeys are verifier keys to archive beside the stored ones (a
	// previous origin's, which the database does not list).
	ExtraKeys []string
	// Now stamps the manifest (default time.Now).
	Now func() time.Time
}

// WriteArchive writes the log up to the stored checkpoint end into sink,
// bundle by bundle (memory is bounded by one bundle's records), checking
// as it goes what it writes exactly as VerifyArchive will: every leaf from
// its record, every stored tile against the tree its leaves make, every
// checkpoint's signature (by the stored keys) and root. A log that does
// not verify is not archived: the error wraps ErrArchive or ErrTreeCorrupt.
func WriteArchive(ctx context.Context, src ArchiveSource, end StoredCheckpoint, sink ArchiveSink, opts ArchiveOptions) (ArchiveManifest, error) {
	stored, err := src.VerifierKeys(ctx)
	if err != nil {
		return ArchiveManifest{}, err
	}
	var keys []string
	var keysFile bytes.Buffer
	keysFile.WriteString("# credgate evidence verifier keys, oldest first: every key that signed this log's checkpoints\n")
	for _, k := range stored {
		if !slices.Contains(keys, k.Key) {
			keys = append(keys, k.Key)
			fmt.Fprintf(&keysFile, "# first used %s\n%s\n", k.AddedAt.UTC().Format(time.RFC3339), k.Key)
		}
	}
	for _, k := range opts.ExtraKeys {
		if k = strings.TrimSpace(k); !slices.Contains(keys, k) {
			keys = append(keys, k)
			fmt.Fprintf(&keysFile, "# given to the export\n%s\n", k)
		}
	}
	vs, err := Verifiers(keys...)
	if err != nil {
		return ArchiveManifest{}, err
	}
	sc, err := OpenCheckpoint(end.Note, vs, "")
	if err != nil {
		return ArchiveManifest{}, fmt.Errorf("the checkpoint of %d records: %w", end.Size, err)
	}
	if err := sink.PutArchiveFile(ArchiveKeysName, keysFile.Bytes()); err != nil {
		return ArchiveManifest{}, err
	}
	if err := sink.PutArchiveFile(ArchiveCheckpointName, sc.Note); err != nil {
		return ArchiveManifest{}, err
	}
	w := &archiveWriter{src: src, sink: sink, bodies: opts.Bodies, size: sc.Size}
	c := &archiveCheck{io: w, vs: vs, end: sc, bodies: opts.Bodies}
	if err := c.run(ctx); err != nil {
		return ArchiveManifest{}, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	m := ArchiveManifest{Format: ArchiveFormat, Origin: sc.Origin, Size: sc.Size, RootHash: base64.StdEncoding.EncodeToString(sc.Root[:]),
		Checkpoints: c.checkpoints, Keys: len(keys), Bodies: opts.Bodies, Erased: c.erased, CreatedAt: now().UTC()}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return ArchiveManifest{}, err
	}
	return m, sink.PutArchiveFile(ArchiveManifestName, append(b, '\n'))
}

// archiveIO is where the check reads each file: from the store (writing
// it to the sink) or from an archive.
type archiveIO interface {
	entries(ctx context.Context, t TileCoord) ([]byte, error)
	// records returns nil, nil when the archive holds no bodies.
	records(ctx context.Context, t TileCoord) ([]byte, error)
	tile(ctx context.Context, t TileCoord) ([]byte, error)
	// checkpoint returns nil, nil when none of that size is stored.
	checkpoint(ctx context.Context, size uint64) ([]byte, error)
}

// archiveWriter reads from the store and writes what it read.
type archiveWriter struct {
	src    ArchiveSource
	sink   ArchiveSink
	bodies bool
	size   uint64
	recs   []Record
	cps    map[uint64][]byte
}

func (w *archiveWriter) entries(ctx context.Context, t TileCoord) ([]byte, error) {
	from := t.Index * TileWidth
	to := from + uint64(t.Width)
	recs, err := w.src.RecordsBetween(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var out []byte
	for i, r := range recs {
		if r.Index != from+uint64(i) {
			return nil, fmt.Errorf("%w: record %d is missing from the store", ErrTreeCorrupt, from+uint64(i))
		}
		d := LeafData(r)
		if len(d) > 0xffff {
			return nil, fmt.Errorf("%w: record %d's leaf data is %d bytes", ErrTreeCorrupt, r.Index, len(d))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(d)))
		out = append(out, d...)
	}
	if uint64(len(recs)) != to-from {
		return nil, fmt.Errorf("%w: record %d is missing from the store", ErrTreeCorrupt, from+uint64(len(recs)))
	}
	w.recs = recs
	if err := w.loadCheckpoints(ctx, from+1, to); err != nil {
		return nil, err
	}
	return out, w.sink.PutArchiveFile(t.Path(), out)
}

func (w *archiveWriter) loadCheckpoints(ctx context.Context, from, through uint64) error {
	cps, err := w.src.CheckpointsFrom(ctx, from, through, int(through-from)+1)
	if err != nil {
		return err
	}
	w.cps = make(map[uint64][]byte, len(cps))
	for _, c := range cps {
		w.cps[c.Size] = c.Note
	}
	return nil
}

func (w *archiveWriter) records(_ context.Context, t TileCoord) ([]byte, error) {
	if !w.bodies {
		return nil, nil
	}
	var out []byte
	for _, r := range w.recs {
		b, err := json.Marshal(ArchivedRecord{Index: r.Index, ID: r.ID, Kind: r.Kind, Partner: r.Partner, At: r.At.UTC(),
			RecordHash: hex.EncodeToString(r.Hash[:]), Body: base64.StdEncoding.EncodeToString(r.Body), Salt: base64.StdEncoding.EncodeToString(r.Salt)})
		if err != nil {
			return nil, err
		}
		out = append(append(out, b...), '\n')
	}
	return out, w.sink.PutArchiveFile(ArchiveRecordsPath(t), out)
}

func (w *archiveWriter) tile(ctx context.Context, t TileCoord) ([]byte, error) {
	b, err := TileHashes(ctx, w.src, t, w.size)
	if err != nil {
		return nil, err
	}
	return b, w.sink.PutArchiveFile(t.Path(), b)
}

func (w *archiveWriter) checkpoint(ctx context.Context, size uint64) ([]byte, error) {
	if size == 0 {
		if err := w.loadCheckpoints(ctx, 0, 0); err != nil {
			return nil, err
		}
	}
	n, ok := w.cps[size]
	if !ok {
		return nil, nil
	}
	return n, w.sink.PutArchiveFile(ArchiveCheckpointPath(size), n)
}

// archiveCheck walks the log in the archive's order, recomputing the tree
// from the entries.
type archiveCheck struct {
	io     archiveIO
	vs     note.Verifiers
	end    SignedCheckpoint
	bodies bool

	checkpoints uint64
	erased      uint64
	erasedAt    []uint64
	origins     []string
	bundles     uint64 // bundles with a records file

	// watch: sizes whose root and indexes whose entry the caller wants.
	watchRoots   map[uint64][HashSize]byte
	watchEntries map[uint64][]byte
	watchRecords map[uint64]Record

	tree  *Tree
	tiles [maxTileLevel + 1][]byte // the hashes of the open tile of each level
}

// maxErasedListed bounds the erased positions an ArchiveReport lists.
const maxErasedListed = 1000

func (c *archiveCheck) fail(name, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrArchive, name, fmt.Sprintf(format, args...))
}

func (c *archiveCheck) run(ctx context.Context) error {
	t, err := TreeFrom(Head{Root: EmptyRoot()})
	if err != nil {
		return err
	}
	c.tree = t
	if err := c.checkpointAt(ctx, 0); err != nil {
		return err
	}
	n := c.end.Size
	for b := uint64(0); b*TileWidth < n; b++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		bt := TileCoord{Entries: true, Index: b, Width: TileWidthAt(0, b, n)}
		if err := c.bundle(ctx, bt); err != nil {
			return err
		}
	}
	// The right edge: the partial tiles of every level.
	for l := uint8(0); int(l) <= maxTileLevel; l++ {
		nodes := n >> (TileHeight * uint(l))
		if nodes%TileWidth == 0 {
			continue
		}
		if err := c.closeTile(ctx, TileCoord{Level: l, Index: nodes / TileWidth, Width: int(nodes % TileWidth)}); err != nil {
			return err
		}
	}
	if root := c.tree.Root(); c.tree.Size() != n || root != c.end.Root {
		return c.fail(ArchiveCheckpointName, "the entries make a tree of %d records with root %x, the checkpoint signed %d records with root %x",
			c.tree.Size(), root, n, c.end.Root)
	}
	if c.bodies && c.bundles != (n+TileWidth-1)/TileWidth {
		return c.fail("records/", "%d of %d entry bundles have their records", c.bundles, (n+TileWidth-1)/TileWidth)
	}
	return nil
}

func (c *archiveCheck) bundle(ctx context.Context, bt TileCoord) error {
	name := bt.Path()
	raw, err := c.io.entries(ctx, bt)
	if errors.Is(err, fs.ErrNotExist) {
		return c.fail(name, "missing")
	}
	if err != nil {
		return err
	}
	entries, err := ParseEntryBundle(raw)
	if err != nil {
		return c.fail(name, "%v", err)
	}
	if len(entries) != bt.Width {
		return c.fail(name, "holds %d entries, the tree of %d records has %d there", len(entries), c.end.Size, bt.Width)
	}
	recs, err := c.records(ctx, bt, entries)
	if err != nil {
		return err
	}
	first := bt.Index * TileWidth
	for i, e := range entries {
		idx := first + uint64(i)
		leaf := sha256.Sum256(append([]byte{0}, e...))
		if _, ok := c.watchEntries[idx]; ok {
			c.watchEntries[idx] = bytes.Clone(e)
			if recs != nil {
				c.watchRecords[idx] = recs[i]
			}
		}
		var tileErr error
		c.tree.Append(leaf, func(id NodeID, h [HashSize]byte) {
			if tileErr != nil || id.Level%TileHeight != 0 {
				return
			}
			l := id.Level / TileHeight
			c.tiles[l] = append(c.tiles[l], h[:]...)
			if len(c.tiles[l]) == TileWidth*HashSize {
				tileErr = c.closeTile(ctx, TileCoord{Level: uint8(l), Index: id.Index / TileWidth, Width: TileWidth})
			}
		})
		if tileErr != nil {
			return tileErr
		}
		if err := c.checkpointAt(ctx, idx+1); err != nil {
			return err
		}
	}
	return nil
}

// records checks the bundle's records file against its entries.
func (c *archiveCheck) records(ctx context.Context, bt TileCoord, entries [][]byte) ([]Record, error) {
	name := ArchiveRecordsPath(bt)
	raw, err := c.io.records(ctx, bt)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && raw == nil) {
		if c.bodies {
			return nil, c.fail(name, "missing")
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.bodies = true
	c.bundles++
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	if len(lines) != len(entries) {
		return nil, c.fail(name, "holds %d records, its entry bundle %d", len(lines), len(entries))
	}
	out := make([]Record, len(lines))
	for i, line := range lines {
		idx := bt.Index*TileWidth + uint64(i)
		var a ArchivedRecord
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return nil, c.fail(name, "line %d: %v", i+1, err)
		}
		r, err := a.record()
		if err != nil {
			return nil, c.fail(name, "line %d: %v", i+1, err)
		}
		if r.Index != idx {
			return nil, c.fail(name, "line %d is record %d, not %d", i+1, r.Index, idx)
		}
		if !bytes.Equal(LeafData(r), entries[i]) {
			return nil, c.fail(name, "record %d (%s): its id, kind, partner, time or record hash differ from its entry in %s", idx, r.ID, bt.Path())
		}
		if len(r.Body) == 0 && len(r.Salt) == 0 {
			c.erased++
			if len(c.erasedAt) < maxErasedListed {
				c.erasedAt = append(c.erasedAt, idx)
			}
		} else if RecordHash(r.Salt, r.Body) != r.Hash {
			return nil, c.fail(name, "record %d (%s): SHA-256(salt ‖ body) is not its record hash: the body or salt was altered", idx, r.ID)
		}
		out[i] = r
	}
	return out, nil
}

// closeTile compares the archived tile t with the hashes the entries gave.
func (c *archiveCheck) closeTile(ctx context.Context, t TileCoord) error {
	want := c.tiles[t.Level]
	c.tiles[t.Level] = nil
	if len(want) != t.Width*HashSize {
		return fmt.Errorf("%w: %d hashes computed for %s", ErrTreeCorrupt, len(want)/HashSize, t.Path())
	}
	got, err := c.io.tile(ctx, t)
	if errors.Is(err, fs.ErrNotExist) {
		return c.fail(t.Path(), "missing")
	}
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return c.fail(t.Path(), "holds %d bytes, want %d", len(got), len(want))
	}
	for i := 0; i < t.Width; i++ {
		if g, w := got[i*HashSize:(i+1)*HashSize], want[i*HashSize:(i+1)*HashSize]; !bytes.Equal(g, w) {
			return c.fail(t.Path(), "hash %d (tree node %d/%d) is %x but the entries give %x",
				i, uint(t.Level)*TileHeight, t.Index*TileWidth+uint64(i), g, w)
		}
	}
	return nil
}

// checkpointAt checks the archived checkpoint of size, if any, against the
// tree, which has just reached that size.
func (c *archiveCheck) checkpointAt(ctx context.Context, size uint64) error {
	if _, ok := c.watchRoots[size]; ok {
		c.watchRoots[size] = c.tree.Root()
	}
	name := ArchiveCheckpointPath(size)
	raw, err := c.io.checkpoint(ctx, size)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && raw == nil) {
		if size == c.end.Size {
			return c.fail(name, "missing: the archive's checkpoint is not among its checkpoints")
		}
		return nil
	}
	if err != nil {
		return err
	}
	cp, err := OpenCheckpoint(raw, c.vs, "")
	if err != nil {
		return c.fail(name, "%v", err)
	}
	if cp.Size != size {
		return c.fail(name, "is a checkpoint of %d records, filed as one of %d", cp.Size, size)
	}
	if root := c.tree.Root(); cp.Root != root {
		return c.fail(name, "signs root %x for %d records, but the archived entries give %x", cp.Root, size, root)
	}
	if size == c.end.Size && !bytes.Equal(raw, c.end.Note) {
		return c.fail(name, "differs from %s, of the same size", ArchiveCheckpointName)
	}
	if !slices.Contains(c.origins, cp.Origin) {
		c.origins = append(c.origins, cp.Origin)
	}
	c.checkpoints++
	return nil
}

// archiveReader reads an archive for the check.
type archiveReader struct{ files ArchiveFiles }

func (r archiveReader) read(name string, limit int64) ([]byte, error) {
	return r.files.ReadArchiveFile(name, limit)
}

func (r archiveReader) entries(_ context.Context, t TileCoord) ([]byte, error) {
	return r.read(t.Path(), maxArchiveEntries)
}

func (r archiveReader) records(_ context.Context, t TileCoord) ([]byte, error) {
	return r.read(ArchiveRecordsPath(t), maxArchiveRecords)
}

func (r archiveReader) tile(_ context.Context, t TileCoord) ([]byte, error) {
	return r.read(t.Path(), TileWidth*HashSize)
}

func (r archiveReader) checkpoint(_ context.Context, size uint64) ([]byte, error) {
	return r.read(ArchiveCheckpointPath(size), MaxNoteSize)
}

// ArchiveVerifyOptions are VerifyArchive's options.
type ArchiveVerifyOptions struct {
	// Verifiers are the pinned keys every checkpoint must verify with;
	// nil trusts the archive's own keys file.
	Verifiers note.Verifiers
	// Origin, when not empty, must be the archive checkpoint's.
	Origin string
	// Roots: sizes whose root the report should give (a receipt's);
	// Entries: indexes whose archived entry and record it should give.
	Roots, Entries []uint64
}

// ArchiveReport is what VerifyArchive established.
type ArchiveReport struct {
	Manifest    ArchiveManifest
	Checkpoint  SignedCheckpoint
	Checkpoints uint64
	Origins     []string
	// Keys are the archive's keys; PinnedOnly whether the checkpoints were
	// verified with keys given by the caller (false: the archive's own).
	Keys   []string
	Pinned bool
	Bodies bool
	Erased uint64
	// ErasedAt lists the first erased positions (at most 1000).
	ErasedAt []uint64
	Roots    map[uint64][HashSize]byte
	Entries  map[uint64][]byte
	Records  map[uint64]Record
}

// ParseArchiveKeys reads the keys file: one verifier key a line, #
// comments.
func ParseArchiveKeys(b []byte) []string {
	var keys []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys
}

// VerifyArchive verifies an archive with no server: the final checkpoint's
// signature, then bundle by bundle the tree recomputed from the entries
// (each record's body against its record hash, and its leaf data against
// its entry), every archived tile against it, and every archived
// checkpoint's signature and root; finally the manifest against all that.
// The first thing that fails is the error, wrapping ErrArchive and naming
// the file. Memory is bounded by one bundle's records.
func VerifyArchive(ctx context.Context, files ArchiveFiles, opts ArchiveVerifyOptions) (ArchiveReport, error) {
	var rep ArchiveReport
	fail := func(name, format string, args ...any) (ArchiveReport, error) {
		return ArchiveReport{}, fmt.Errorf("%w: %s: %s", ErrArchive, name, fmt.Sprintf(format, args...))
	}
	kb, err := files.ReadArchiveFile(ArchiveKeysName, maxArchiveSmall)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(ArchiveKeysName, "missing (is this a credgate archive?)")
	}
	if err != nil {
		return ArchiveReport{}, err
	}
	rep.Keys = ParseArchiveKeys(kb)
	own, err := Verifiers(rep.Keys...)
	if err != nil {
		return fail(ArchiveKeysName, "%v", err)
	}
	vs := opts.Verifiers
	rep.Pinned = vs != nil
	if vs == nil {
		if len(rep.Keys) == 0 {
			return fail(ArchiveKeysName, "holds no key")
		}
		vs = own
	}
	raw, err := files.ReadArchiveFile(ArchiveCheckpointName, MaxNoteSize)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(ArchiveCheckpointName, "missing")
	}
	if err != nil {
		return ArchiveReport{}, err
	}
	sc, err := OpenCheckpoint(raw, vs, opts.Origin)
	if err != nil {
		return fail(ArchiveCheckpointName, "%v", err)
	}
	rep.Checkpoint = sc
	c := &archiveCheck{io: archiveReader{files}, vs: vs, end: sc,
		watchRoots: map[uint64][HashSize]byte{}, watchEntries: map[uint64][]byte{}, watchRecords: map[uint64]Record{}}
	for _, s := range opts.Roots {
		if s <= sc.Size {
			c.watchRoots[s] = [HashSize]byte{}
		}
	}
	for _, i := range opts.Entries {
		if i < sc.Size {
			c.watchEntries[i] = nil
		}
	}
	if err := c.run(ctx); err != nil {
		return ArchiveReport{}, err
	}
	mb, err := files.ReadArchiveFile(ArchiveManifestName, maxArchiveSmall)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(ArchiveManifestName, "missing")
	}
	if err != nil {
		return ArchiveReport{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep.Manifest); err != nil {
		return fail(ArchiveManifestName, "%v", err)
	}
	m := rep.Manifest
	switch {
	case m.Format != ArchiveFormat:
		return fail(ArchiveManifestName, "format %q, want %q", m.Format, ArchiveFormat)
	case m.Origin != sc.Origin || m.Size != sc.Size || m.RootHash != base64.StdEncoding.EncodeToString(sc.Root[:]):
		return fail(ArchiveManifestName, "says %q, %d records, root %s; the checkpoint signed %q, %d records, root %s",
			m.Origin, m.Size, m.RootHash, sc.Origin, sc.Size, base64.StdEncoding.EncodeToString(sc.Root[:]))
	case m.Checkpoints != c.checkpoints:
		return fail(ArchiveManifestName, "says %d checkpoints, the archive holds %d", m.Checkpoints, c.checkpoints)
	case m.Keys != len(rep.Keys):
		return fail(ArchiveManifestName, "says %d keys, %s holds %d", m.Keys, ArchiveKeysName, len(rep.Keys))
	case m.Bodies != c.bodies || m.Erased != c.erased:
		return fail(ArchiveManifestName, "says bodies %t, %d erased; the archive holds bodies %t, %d erased", m.Bodies, m.Erased, c.bodies, c.erased)
	}
	rep.Checkpoints, rep.Origins, rep.Bodies, rep.Erased, rep.ErasedAt = c.checkpoints, c.origins, c.bodies, c.erased, c.erasedAt
	rep.Roots, rep.Entries, rep.Records = c.watchRoots, c.watchEntries, c.watchRecords
	return rep, nil
}
