package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// maxHolidaysFile bounds a holidays file: a year's notice is a few hundred
// bytes.
const maxHolidaysFile = 1 << 20

// loadCatalog reads and validates the catalogue a command applies: the
// one embedded in the binary, or a reviewed copy in catalog.dir, with the
// holidays file catalog.holidays for years the catalogue's calendar does
// not cover yet. It says where the catalogue came from (Catalog.Origin:
// "embedded" or the directory's absolute path). It writes nothing, so a
// bad catalogue stops a start before any file is created; errors name the
// setting, the file and the entry at fault.
func loadCatalog(c config.Catalog) (*policy.Catalog, error) {
	var cat *policy.Catalog
	if c.Dir == "" {
		bundled, err := policy.BundledCatalog()
		if err != nil {
			return nil, fmt.Errorf("embedded catalogue: %w", err)
		}
		cat = bundled.WithOrigin("embedded")
	} else {
		abs, err := filepath.Abs(c.Dir)
		if err != nil {
			return nil, fmt.Errorf("catalog.dir: catalogue %s: %w", c.Dir, err)
		}
		if info, err := os.Stat(abs); err != nil || !info.IsDir() {
			if err == nil {
				err = errors.New("not a directory")
			}
			return nil, fmt.Errorf("catalog.dir: catalogue %s: %w", c.Dir, err)
		}
		loaded, err := policy.LoadCatalog(os.DirFS(abs))
		if err != nil {
			return nil, fmt.Errorf("catalog.dir: catalogue %s: %w", abs, err)
		}
		cat = loaded.WithOrigin(abs)
	}
	if c.Holidays != "" {
		data, err := readBounded(c.Holidays, maxHolidaysFile)
		if err != nil {
			return nil, fmt.Errorf("catalog.holidays: %w", err)
		}
		if cat, err = cat.WithHolidays(c.Holidays, data); err != nil {
			return nil, fmt.Errorf("catalog.holidays: %w", err)
		}
	}
	return cat, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// recordCatalogLoaded appends the catalogue this replica applies to the
// evidence log as the act catalog_in_use, an administrative act of
// credgate itself, at every start: an auditor can tell which revision,
// from where, with which calendar years and holidays file, each replica
// answered with.
func recordCatalogLoaded(ctx context.Context, audit *service.Audit, cat *policy.Catalog) error {
	host, _ := os.Hostname()
	details := map[string]any{
		"revision": cat.Revision(), "origin": cat.Origin(),
		"calendar_years": cat.Calendar().Covered(),
		"actions":        len(cat.Actions()), "lists": len(cat.Lists()), "measures": len(cat.Measures()),
		"host": host, "pid": os.Getpid(),
	}
	if h := cat.Holidays(); h.Name != "" {
		details["holidays"] = map[string]any{"file": h.Name, "digest": h.Digest, "covers": h.Covers, "base_revision": h.BaseRevision}
	}
	if _, err := audit.Record(ctx, service.ActCatalogInUse, cat.Revision(), details); err != nil {
		return fmt.Errorf("record the catalogue in use: %w", err)
	}
	return nil
}
