package evidence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The log is also served as C2SP tlog-tiles (c2sp.org/tlog-tiles), so that
// transparency tooling that knows nothing of credgate (witnesses, monitors,
// Tessera's client) can follow it:
//
//   - a hash tile (level L, index N) holds the hashes of the stored nodes
//     (TileHeight·L, N·256 … N·256+W-1), 32 bytes each, concatenated;
//   - an entry bundle N holds the leaf data (LeafData) of records
//     N·256 … N·256+W-1, each as a big-endian uint16 length and the bytes.
//
// A record's tree leaf is the RFC 6962 leaf hash of exactly the bytes its
// bundle holds (SHA-256(0x00 ‖ LeafData)), so a tlog client hashes bundle
// entries as it would any RFC 6962 log's. The bundle commits to a record's
// salted body hash, not to the body.

// TileHeight is the height of a tile: a full tile covers 2^8 nodes.
const TileHeight = 8

// TileWidth is the number of hashes (or entries) in a full tile.
const TileWidth = 1 << TileHeight

// maxTileLevel is the highest tile level a 64-bit tree can have.
const maxTileLevel = 63 / TileHeight

// ErrNoTile: the tile asked for is not (yet) in the committed tree, or its
// path is malformed.
var ErrNoTile = errors.New("no such tile")

// TileCoord names a tile: Level 0 tiles hold leaf hashes, level L tiles the
// hashes of subtrees of 256^L leaves; Width is 1…256 (256 is a full tile).
// Entries names an entry bundle (Level is then 0).
type TileCoord struct {
	Entries bool
	Level   uint8
	Index   uint64
	Width   int
}

// Full reports whether the tile is a full one (and so immutable).
func (t TileCoord) Full() bool { return t.Width == TileWidth }

// Path is the tile's path below the log's prefix, as tlog-tiles spells it:
// tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], where N is written in
// groups of three digits, all but the last prefixed with x
// (1234067 → x001/x234/067).
func (t TileCoord) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Entries {
		b.WriteString("entries/")
	} else {
		b.WriteString(strconv.Itoa(int(t.Level)))
		b.WriteByte('/')
	}
	var groups []string
	n := t.Index
	for {
		groups = append(groups, fmt.Sprintf("%03d", n%1000))
		if n /= 1000; n == 0 {
			break
		}
	}
	for i := len(groups) - 1; i >= 0; i-- {
		if i > 0 {
			b.WriteByte('x')
		}
		b.WriteString(groups[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	if !t.Full() {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.Width))
	}
	return b.String()
}

// maxTilePath bounds a tile path: "entries/" and seven groups of "x000/"
// and ".p/256" fit with room to spare.
const maxTilePath = 64

// ParseTilePath parses what follows "tile/": "<L>/<N>[.p/<W>]" or
// "entries/<N>[.p/<W>]". It accepts exactly the paths Path writes: no
// leading zeros in L or W, every index group three digits, no group of
// leading zeros beyond the last one, W in 1…255.
func ParseTilePath(p string) (TileCoord, error) {
	bad := func(why string) (TileCoord, error) {
		return TileCoord{}, fmt.Errorf("%w: tile path %q: %s", ErrNoTile, truncate(p, maxTilePath), why)
	}
	if len(p) > maxTilePath {
		return bad("too long")
	}
	var t TileCoord
	head, rest, ok := strings.Cut(p, "/")
	if !ok {
		return bad("no index")
	}
	if head == "entries" {
		t.Entries = true
	} else {
		l, err := smallDecimal(head, maxTileLevel)
		if err != nil {
			return bad("level must be 0…" + strconv.Itoa(maxTileLevel))
		}
		t.Level = uint8(l)
	}
	t.Width = TileWidth
	if idx, w, partial := strings.Cut(rest, ".p/"); partial {
		width, err := smallDecimal(w, TileWidth-1)
		if err != nil || width == 0 {
			return bad("partial width must be 1…255")
		}
		t.Width, rest = width, idx
	}
	groups := strings.Split(rest, "/")
	for i, g := range groups {
		last := i == len(groups)-1
		if !last {
			if !strings.HasPrefix(g, "x") {
				return bad("every index group but the last starts with x")
			}
			g = g[1:]
		}
		if len(g) != 3 || g[0] < '0' || g[0] > '9' || g[1] < '0' || g[1] > '9' || g[2] < '0' || g[2] > '9' {
			return bad("index groups are three digits")
		}
		if i == 0 && !last && g == "000" {
			return bad("index has a leading group of zeros")
		}
		v := uint64(g[0]-'0')*100 + uint64(g[1]-'0')*10 + uint64(g[2]-'0')
		if t.Index > (1<<64-1-v)/1000 {
			return bad("index out of range")
		}
		t.Index = t.Index*1000 + v
	}
	return t, nil
}

// smallDecimal parses a decimal of at most max, without sign or leading
// zeros.
func smallDecimal(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int(c-'0')
	}
	if n > max {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// tileAvailable reports whether the tree of the given size holds the
// tile: its level has at least Index·256+Width nodes.
func tileAvailable(t TileCoord, size uint64) bool {
	if t.Width < 1 || t.Width > TileWidth || int(t.Level) > maxTileLevel {
		return false
	}
	nodes := size >> (TileHeight * uint(t.Level))
	if t.Index > (nodes / TileWidth) {
		return false
	}
	return t.Index*TileWidth+uint64(t.Width) <= nodes
}

// TileWidthAt is the width of tile (level, index) in the tree of the
// given size: 256 for a full tile, fewer for the rightmost, 0 when the
// tree has no such tile.
func TileWidthAt(level uint8, index, size uint64) int {
	nodes := size >> (TileHeight * uint(level))
	if index >= (nodes+TileWidth-1)/TileWidth {
		return 0
	}
	return int(min(nodes-index*TileWidth, TileWidth))
}

// TileHashes reads the hashes of a tile from stored nodes.
func TileHashes(ctx context.Context, r NodeReader, t TileCoord, size uint64) ([]byte, error) {
	if t.Entries || !tileAvailable(t, size) {
		return nil, fmt.Errorf("%w: %s is not in the tree of %d records", ErrNoTile, t.Path(), size)
	}
	ids := make([]NodeID, t.Width)
	for i := range ids {
		ids[i] = NodeID{Level: uint(t.Level) * TileHeight, Index: t.Index*TileWidth + uint64(i)}
	}
	hs, err := r.TreeNodes(ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(ids) {
		return nil, fmt.Errorf("%w: read %d of %d nodes of %s", ErrTreeCorrupt, len(hs), len(ids), t.Path())
	}
	out := make([]byte, 0, len(hs)*HashSize)
	for _, h := range hs {
		out = append(out, h[:]...)
	}
	return out, nil
}

// Tile is a hash tile of the committed tree (tlog-tiles).
func (l *Log) Tile(ctx context.Context, t TileCoord) ([]byte, error) {
	head, err := l.store.TreeHead(ctx)
	if err != nil {
		return nil, err
	}
	return TileHashes(ctx, l.store, t, head.Size)
}

// EntryBundle is an entry bundle of the committed tree (tlog-tiles): the
// leaf data of each record, length-prefixed. A record missing from the
// store is corruption: its leaf cannot be served.
func (l *Log) EntryBundle(ctx context.Context, t TileCoord) ([]byte, error) {
	head, err := l.store.TreeHead(ctx)
	if err != nil {
		return nil, err
	}
	if !t.Entries || !tileAvailable(t, head.Size) {
		return nil, fmt.Errorf("%w: %s is not in the tree of %d records", ErrNoTile, t.Path(), head.Size)
	}
	from := t.Index * TileWidth
	to := from + uint64(t.Width)
	recs, err := l.store.RecordsBetween(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var out []byte
	next := from
	for _, r := range recs {
		if r.Index != next {
			break
		}
		d := LeafData(r)
		if len(d) > 0xffff {
			return nil, fmt.Errorf("%w: record %d's leaf data is %d bytes", ErrTreeCorrupt, r.Index, len(d))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(d)))
		out = append(out, d...)
		next++
	}
	if next != to {
		return nil, fmt.Errorf("%w: record %d is missing from the store", ErrTreeCorrupt, next)
	}
	return out, nil
}

// ParseEntryBundle splits an entry bundle into its entries.
func ParseEntryBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: entry bundle ends inside a length", ErrNoTile)
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b)-2 < n {
			return nil, fmt.Errorf("%w: entry bundle ends inside an entry", ErrNoTile)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
		if len(out) > TileWidth {
			return nil, fmt.Errorf("%w: entry bundle of more than %d entries", ErrNoTile, TileWidth)
		}
	}
	return out, nil
}

// TileFetcher fetches tiles of a log served as tlog-tiles; the client
// package implements it over HTTP.
type TileFetcher interface {
	Tile(ctx context.Context, t TileCoord) ([]byte, error)
}

// TileNodes reads the nodes of the tree of a given size from its tiles, so
// that InclusionProof, ConsistencyProof and RootAt work against a log that
// only serves tiles. A node at tree level 8L+r is rehashed from 2^r hashes
// of one level-L tile. It caches the tiles it fetched and is not safe for
// concurrent use; it trusts the tiles, which is sound because every proof
// is then verified against a signed root.
type TileNodes struct {
	fetch TileFetcher
	size  uint64
	tiles map[TileCoord][]byte
}

// NewTileNodes reads the tree of size through f, caching the tiles it
// fetches.
func NewTileNodes(f TileFetcher, size uint64) *TileNodes {
	return &TileNodes{fetch: f, size: size, tiles: map[TileCoord][]byte{}}
}

// TreeNodes implements NodeReader.
func (n *TileNodes) TreeNodes(ctx context.Context, ids []NodeID) ([][HashSize]byte, error) {
	out := make([][HashSize]byte, len(ids))
	for i, id := range ids {
		if id.Level >= 64 || (id.Index+1) > n.size>>id.Level {
			return nil, fmt.Errorf("%w: node %v is not in the tree of %d", ErrTreeSize, id, n.size)
		}
		level := id.Level / TileHeight
		r := id.Level % TileHeight
		first := id.Index << r // the node's first descendant at the tile's level
		t := TileCoord{Level: uint8(level), Index: first / TileWidth}
		t.Width = TileWidthAt(t.Level, t.Index, n.size)
		tile, err := n.tile(ctx, t)
		if err != nil {
			return nil, err
		}
		off := int(first % TileWidth)
		hs := make([][]byte, 1<<r)
		for k := range hs {
			hs[k] = tile[(off+k)*HashSize : (off+k+1)*HashSize]
		}
		for len(hs) > 1 {
			next := make([][]byte, len(hs)/2)
			for k := range next {
				next[k] = hashChildren(hs[2*k], hs[2*k+1])
			}
			hs = next
		}
		out[i] = to32(hs[0])
	}
	return out, nil
}

func (n *TileNodes) tile(ctx context.Context, t TileCoord) ([]byte, error) {
	if b, ok := n.tiles[t]; ok {
		return b, nil
	}
	b, err := n.fetch.Tile(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", t.Path(), err)
	}
	// A server may answer a partial tile with the full one (tlog-tiles
	// allows it); only the first Width hashes are ours.
	if len(b) < t.Width*HashSize || len(b)%HashSize != 0 {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want %d", ErrTreeCorrupt, t.Path(), len(b), t.Width*HashSize)
	}
	b = b[:t.Width*HashSize]
	n.tiles[t] = b
	return b, nil
}
