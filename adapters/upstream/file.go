package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/credgate/credgate/service"
)

// FileFeed is a data feed: a CSV or NDJSON file in the import format
// (service.ParseImport), either the newest file dropped into a directory
// or the file at a URL. The whole file is the snapshot.
type FileFeed struct {
	dir    string
	url    *url.URL
	format service.ImportFormat // empty: from the file's extension
	getter httpGetter
}

// NewDirFeed reads the newest feed file in dir. Files whose names start
// with "." or end in ".tmp" or ".part" are ignored, so that a writer can
// write under such a name and rename when done: a half-written file is
// never read. format may be empty to go by extension (.csv; .ndjson or
// .jsonl).
func NewDirFeed(dir string, format service.ImportFormat, opts ...HTTPOption) (*FileFeed, error) {
	if dir == "" {
		return nil, errors.New("upstream: a feed directory is required")
	}
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	return &FileFeed{dir: dir, format: format, getter: newGetter(opts, nil)}, nil
}

// NewURLFeed reads the feed file at rawURL. Without a format, it goes by
// the URL's extension, then the Content-Type.
func NewURLFeed(rawURL string, format service.ImportFormat, opts ...HTTPOption) (*FileFeed, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("upstream: the feed URL must be an absolute http(s) URL")
	}
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	return &FileFeed{url: u, format: format, getter: newGetter(opts, nil)}, nil
}

func checkFormat(f service.ImportFormat) error {
	switch f {
	case "", service.FormatCSV, service.FormatNDJSON:
		return nil
	}
	return fmt.Errorf("upstream: unknown feed format %q (csv or ndjson)", f)
}

func formatOf(name string) service.ImportFormat {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return service.FormatCSV
	case ".ndjson", ".jsonl":
		return service.FormatNDJSON
	}
	return ""
}

// Fetch reads and parses the feed file. A line that does not parse
// rejects the snapshot (a *service.SnapshotError listing every bad line).
func (f *FileFeed) Fetch(ctx context.Context) ([]service.SourceItem, error) {
	var (
		b      []byte
		format = f.format
		err    error
	)
	if f.url != nil {
		var h map[string][]string
		if b, h, err = f.getter.get(ctx, f.url); err != nil {
			return nil, err
		}
		if format == "" {
			format = formatOf(f.url.Path)
		}
		if format == "" && len(h["Content-Type"]) > 0 {
			switch mt, _, _ := mime.ParseMediaType(h["Content-Type"][0]); mt {
			case "text/csv":
				format = service.FormatCSV
			case "application/x-ndjson", "application/ndjson", "application/jsonl":
				format = service.FormatNDJSON
			}
		}
		if format == "" {
			return nil, fmt.Errorf("%w: cannot tell the format of %s", ErrMalformed, redact(f.url))
		}
	} else {
		var name string
		if name, err = f.newest(); err != nil {
			return nil, err
		}
		if format == "" {
			format = formatOf(name)
		}
		if b, err = f.read(name); err != nil {
			return nil, err
		}
	}
	return parseFeed(b, format)
}

// parseFeed maps a feed file to items.
func parseFeed(b []byte, format service.ImportFormat) ([]service.SourceItem, error) {
	inputs, lines, bad, err := service.ParseImport(bytes.NewReader(b), format, nil)
	if err != nil {
		if errors.Is(err, service.ErrImportTooLarge) {
			return nil, fmt.Errorf("%w: %w", service.ErrSnapshotTooLarge, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(bad) > 0 {
		return nil, &service.SnapshotError{Lines: bad}
	}
	items := make([]service.SourceItem, len(inputs))
	for i := range inputs {
		items[i] = service.SourceItem{Line: lines[i], Input: inputs[i]}
	}
	return items, nil
}

// newest returns the name of the newest feed file in the directory.
func (f *FileFeed) newest() (string, error) {
	des, err := os.ReadDir(f.dir)
	if err != nil {
		return "", fmt.Errorf("%w: read feed directory: %w", ErrTransient, err)
	}
	var (
		best    string
		bestMod int64
	)
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") ||
			strings.HasSuffix(name, ".part") || (f.format == "" && formatOf(name) == "") {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		// Newest by modification time; among equals, the last name.
		if m := info.ModTime().UnixNano(); best == "" || m > bestMod || (m == bestMod && name > best) {
			best, bestMod = name, m
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w in %s", ErrNoFeedFile, f.dir)
	}
	return best, nil
}

func (f *FileFeed) read(name string) ([]byte, error) {
	fh, err := os.Open(filepath.Join(f.dir, name))
	if err != nil {
		return nil, fmt.Errorf("%w: open feed file: %w", ErrTransient, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, f.getter.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read feed file: %w", ErrTransient, err)
	}
	if int64(len(b)) > f.getter.maxBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrPayloadTooLarge, name, f.getter.maxBytes)
	}
	return b, nil
}
