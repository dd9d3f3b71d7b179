package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// maxHolidaysFile bounds a holidays file: a year's notice is a few hundred
// bytes.
const maxHolidaysFile = 1 << 20

// catalogConfig says which catalogue a command applies: the one embedded
// in the binary, or a reviewed copy in a directory, and a holidays file
// for years the catalogue's calendar does not cover yet.
type catalogConfig struct {
	dir      string
	holidays string
}

func (c *catalogConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dir, "catalog", os.Getenv("CREDGATE_CATALOG"), "directory of a reviewed catalogue (*.yaml, as `credgate catalog export` writes it) to apply instead of the embedded one (env CREDGATE_CATALOG)")
	fs.StringVar(&c.holidays, "holidays", os.Getenv("CREDGATE_HOLIDAYS"), "YAML file with a calendar section (the shape of calendar.yaml) adding the holidays of years the catalogue does not cover (env CREDGATE_HOLIDAYS)")
}

// catalogOrigin says where the applied catalogue came from, for the
// evidence log.
type catalogOrigin struct {
	// source is "embedded" or the catalogue directory's absolute path.
	source string
}

// load reads and validates the catalogue and the holidays file. It writes
// nothing, so a bad catalogue stops a start before any file is created;
// errors name the file and the entry at fault.
func (c *catalogConfig) load() (*policy.Catalog, catalogOrigin, error) {
	var (
		cat    *policy.Catalog
		origin = catalogOrigin{source: "embedded"}
		err    error
	)
	if c.dir == "" {
		cat, err = policy.BundledCatalog()
		if err != nil {
			return nil, origin, fmt.Errorf("embedded catalogue: %w", err)
		}
	} else {
		abs, err := filepath.Abs(c.dir)
		if err != nil {
			return nil, origin, fmt.Errorf("catalogue %s: %w", c.dir, err)
		}
		if info, err := os.Stat(abs); err != nil || !info.IsDir() {
			if err == nil {
				err = errors.New("not a directory")
			}
			return nil, origin, fmt.Errorf("catalogue %s: %w", c.dir, err)
		}
		origin.source = abs
		if cat, err = policy.LoadCatalog(os.DirFS(abs)); err != nil {
			return nil, origin, fmt.Errorf("catalogue %s: %w", abs, err)
		}
	}
	if c.holidays != "" {
		data, err := readBounded(c.holidays, maxHolidaysFile)
		if err != nil {
			return nil, origin, fmt.Errorf("holidays file: %w", err)
		}
		if cat, err = cat.WithHolidays(c.holidays, data); err != nil {
			return nil, origin, err
		}
	}
	return cat, origin, nil
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

// recordCatalogInUse appends the catalogue this replica applies to the
// evidence log, as an administrative act of credgate itself, at every
// start: an auditor can tell which revision, from where, with which
// calendar years and holidays file, each replica answered with.
func recordCatalogInUse(ctx context.Context, audit *service.Audit, cat *policy.Catalog, origin catalogOrigin) error {
	host, _ := os.Hostname()
	details := map[string]any{
		"revision": cat.Revision(), "origin": origin.source,
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
