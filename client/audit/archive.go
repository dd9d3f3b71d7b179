package audit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

// Archives (credgate archive): the evidence log taken out of the database
// into a directory, or a tar file (a name ending in .tar), in the layout
// evidence/archive.go describes, and verified later with no server.

// ErrNotInArchive: a receipt verified offline, but the archive's tree is
// not the one its checkpoint signed (the archive ends before it, or holds
// another history).
var ErrNotInArchive = errors.New("not in the archived log")

// IsTarArchive reports whether path names a tar archive rather than a
// directory: by its name, as credgate archive chooses.
func IsTarArchive(path string) bool { return strings.HasSuffix(path, ".tar") }

// ArchiveWriter writes an archive under a temporary name beside its final
// one, and gives it the final name only once it is whole and synced
// (Commit): a failed or interrupted export leaves no partial archive under
// the final name. Files are mode 0600 (bodies hold personal data).
type ArchiveWriter struct {
	final, tmp string
	// a directory archive
	dirs map[string]bool
	// a tar archive
	f     *os.File
	bw    *bufio.Writer
	tw    *tar.Writer
	mtime time.Time
	done  bool
}

// CreateArchive starts an archive at path, which must not exist.
func CreateArchive(path string) (*ArchiveWriter, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s exists: an archive is never written over another file", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	parent, base := filepath.Dir(path), filepath.Base(path)
	w := &ArchiveWriter{final: path, mtime: time.Now().UTC().Truncate(time.Second)}
	if IsTarArchive(path) {
		f, err := os.CreateTemp(parent, "."+base+".partial-*")
		if err != nil {
			return nil, err
		}
		w.f, w.tmp = f, f.Name()
		w.bw = bufio.NewWriterSize(f, 1<<20)
		w.tw = tar.NewWriter(w.bw)
		return w, nil
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".partial-")
	if err != nil {
		return nil, err
	}
	w.tmp, w.dirs = tmp, map[string]bool{tmp: true}
	return w, nil
}

// PutArchiveFile implements evidence.ArchiveSink.
func (w *ArchiveWriter) PutArchiveFile(name string, data []byte) error {
	if !fs.ValidPath(name) {
		return fmt.Errorf("archive file name %q", name)
	}
	if w.tw != nil {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: w.mtime}
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := w.tw.Write(data)
		return err
	}
	p := filepath.Join(w.tmp, filepath.FromSlash(name))
	if dir := filepath.Dir(p); !w.dirs[dir] {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for d := dir; !w.dirs[d]; d = filepath.Dir(d) {
			w.dirs[d] = true
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// Commit syncs the archive and gives it its final name.
func (w *ArchiveWriter) Commit() error {
	if w.done {
		return errors.New("archive already committed or aborted")
	}
	w.done = true
	var err error
	if w.tw != nil {
		err = w.tw.Close()
		if err == nil {
			err = w.bw.Flush()
		}
		if err == nil {
			err = w.f.Sync()
		}
		err = errors.Join(err, w.f.Close())
		if err == nil {
			// A link fails if the final name was taken meanwhile, where a
			// rename would replace it.
			if err = os.Link(w.tmp, w.final); err == nil {
				err = os.Remove(w.tmp)
			}
		}
	} else {
		dirs := make([]string, 0, len(w.dirs))
		for d := range w.dirs {
			dirs = append(dirs, d)
		}
		slices.Sort(dirs)
		for i := len(dirs) - 1; i >= 0 && err == nil; i-- { // deepest first
			err = syncDir(dirs[i])
		}
		if err == nil {
			if _, statErr := os.Lstat(w.final); statErr == nil {
				err = fmt.Errorf("%s was created meanwhile: the archive is left at %s", w.final, w.tmp)
				return err
			}
			err = os.Rename(w.tmp, w.final)
		}
	}
	if err != nil {
		os.RemoveAll(w.tmp)
		return err
	}
	return syncDir(filepath.Dir(w.final))
}

// Abort removes what was written; a no-op after Commit.
func (w *ArchiveWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.f != nil {
		w.f.Close()
	}
	os.RemoveAll(w.tmp)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// ArchiveReader reads an archive: a directory, or a tar file read in one
// pass in the order credgate archive wrote it.
type ArchiveReader struct {
	dir string
	// a tar archive
	f    *os.File
	tr   *tar.Reader
	next *tar.Header
	eof  bool
}

// OpenArchive opens the archive at path (a directory, or a tar file).
func OpenArchive(path string) (*ArchiveReader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return &ArchiveReader{dir: path}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &ArchiveReader{f: f, tr: tar.NewReader(bufio.NewReaderSize(f, 1<<20))}, nil
}

// Close closes the archive.
func (r *ArchiveReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// ReadArchiveFile implements evidence.ArchiveFiles.
func (r *ArchiveReader) ReadArchiveFile(name string, limit int64) ([]byte, error) {
	if r.tr == nil {
		f, err := os.Open(filepath.Join(r.dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readAtMost(f, name, limit)
	}
	hdr, err := r.peek()
	if err != nil {
		return nil, err
	}
	if hdr == nil || tarName(hdr.Name) != name {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	r.next = nil
	return readAtMost(r.tr, name, limit)
}

func readAtMost(rd io.Reader, name string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", evidence.ErrArchive, name, limit)
	}
	return b, nil
}

// peek returns the next regular file's header (nil at the end).
func (r *ArchiveReader) peek() (*tar.Header, error) {
	for r.next == nil && !r.eof {
		hdr, err := r.tr.Next()
		if errors.Is(err, io.EOF) {
			r.eof = true
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: not a readable tar file: %w", evidence.ErrArchive, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
			r.next = hdr
		default:
			return nil, fmt.Errorf("%w: %s: not a regular file", evidence.ErrArchive, hdr.Name)
		}
	}
	return r.next, nil
}

func tarName(n string) string { return strings.TrimPrefix(path.Clean(n), "./") }

// leftover finds a file the archive of a tree of size should not hold:
// one after the manifest in a tar, one the layout has no place for in a
// directory.
func (r *ArchiveReader) leftover(size uint64) error {
	if r.tr != nil {
		hdr, err := r.peek()
		if err != nil {
			return err
		}
		if hdr != nil {
			return fmt.Errorf("%w: %s: unexpected file (out of the order credgate archive writes, or added: unpack the tar and verify the directory to tell)",
				evidence.ErrArchive, tarName(hdr.Name))
		}
		return nil
	}
	return filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(r.dir, p)
		if err != nil || d.IsDir() {
			return err
		}
		if name := filepath.ToSlash(rel); !d.Type().IsRegular() || !evidence.ArchiveNameWithin(name, size) {
			return fmt.Errorf("%w: %s: unexpected file: the layout of an archive of %d records has no place for it", evidence.ErrArchive, name, size)
		}
		return nil
	})
}

// ReceiptInArchive is one receipt's result against an archive.
type ReceiptInArchive struct {
	Verified evidence.Verified
	// ErasedInArchive: the archive holds the record with its body erased.
	ErasedInArchive bool
	// Err is nil, or wraps evidence.ErrRecordErased (verified, body
	// erased in the receipt), or is why it failed.
	Err error
}

// VerifyArchive verifies the archive at path with no server
// (evidence.VerifyArchive), and every receipt against it: each verifies
// offline with the same keys, its checkpoint's root is the archived tree's
// at its size, and its record is the archived entry at its index. vs nil
// trusts the archive's own keys file. A receipt's failure is in its
// result; the error is the archive's.
func VerifyArchive(ctx context.Context, path string, vs note.Verifiers, origin string, receipts [][]byte) (evidence.ArchiveReport, []ReceiptInArchive, error) {
	parsed := make([]evidence.Receipt, len(receipts))
	results := make([]ReceiptInArchive, len(receipts))
	opts := evidence.ArchiveVerifyOptions{Verifiers: vs, Origin: origin}
	for i, raw := range receipts {
		r, err := evidence.ParseReceipt(raw)
		if err != nil {
			results[i].Err = err
			continue
		}
		parsed[i] = r
		opts.Roots = append(opts.Roots, r.TreeSize)
		opts.Entries = append(opts.Entries, r.LeafIndex)
	}
	ar, err := OpenArchive(path)
	if err != nil {
		return evidence.ArchiveReport{}, nil, err
	}
	defer ar.Close()
	rep, err := evidence.VerifyArchive(ctx, ar, opts)
	if err != nil {
		return evidence.ArchiveReport{}, nil, err
	}
	if err := ar.leftover(rep.Checkpoint.Size); err != nil {
		return evidence.ArchiveReport{}, nil, err
	}
	if vs == nil {
		if vs, err = evidence.Verifiers(rep.Keys...); err != nil {
			return evidence.ArchiveReport{}, nil, err
		}
	}
	for i := range receipts {
		if results[i].Err == nil {
			results[i] = receiptInArchive(parsed[i], vs, rep)
		}
	}
	return rep, results, nil
}

func receiptInArchive(r evidence.Receipt, vs note.Verifiers, rep evidence.ArchiveReport) ReceiptInArchive {
	v, err := evidence.VerifyReceipt(r, vs)
	if err != nil && !errors.Is(err, evidence.ErrRecordErased) {
		return ReceiptInArchive{Err: err}
	}
	res := ReceiptInArchive{Verified: v, Err: err}
	n := rep.Checkpoint.Size
	cp := v.Checkpoint
	if cp.Size > n {
		res.Err = fmt.Errorf("%w: the receipt's checkpoint signed %d records, the archive ends at %d: archive a later checkpoint", ErrNotInArchive, cp.Size, n)
		return res
	}
	if root := rep.Roots[cp.Size]; root != cp.Root {
		res.Err = fmt.Errorf("%w: forked: the archived tree of %d records has root %x, the receipt's checkpoint signed %x: the archive holds another history",
			ErrNotInArchive, cp.Size, root, cp.Root)
		return res
	}
	if e := rep.Entries[v.Record.Index]; !bytes.Equal(e, evidence.LeafData(v.Record)) {
		res.Err = fmt.Errorf("%w: the archived entry %d is not the receipt's record", ErrNotInArchive, v.Record.Index)
		return res
	}
	if a, ok := rep.Records[v.Record.Index]; ok && len(a.Body) == 0 && len(a.Salt) == 0 {
		res.ErasedInArchive = true
	}
	return res
}
