package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

const importUsage = `Usage: credgate import [flags] FILE.csv|FILE.ndjson

Imports list entries straight into the configured store, all or nothing:
the file streams through (any size), every bad line is reported (up to
1000) and nothing is applied unless the whole file is good. The import is
recorded in the evidence log as an administrative act.
`

// importCmd imports list entries straight into the configured store, in
// one transaction: every bad line is reported and nothing is applied
// unless the whole file is good.
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, loader := commandFlags("import", importUsage, importSettings, stderr)
	var format string
	fs.StringVar(&format, "format", "", "csv or ndjson (default: from the file extension)")
	// Flags may stand before or after FILE, as for screen and partners.
	files, err := parseClientArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	path := files[0]
	if format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			format = "csv"
		case ".ndjson", ".jsonl":
			format = "ndjson"
		default:
			return fmt.Errorf("cannot tell the format of %s: use --format csv|ndjson", path)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	cat, err := loadCatalog(cfg.Catalog)
	if err != nil {
		return err
	}
	st, _, closeStore, err := openStore(ctx, cfg.Store, false)
	if err != nil {
		return err
	}
	defer closeStore()
	// The import is an administrative act: recorded, with the local user as
	// its actor, in the evidence log before the entries are swapped in.
	app := evidence.NewAppender(st)
	defer app.Close()
	ctx = service.WithActor(ctx, localActor())
	entries := service.NewEntries(st, cat, service.WithEntriesAudit(service.NewAudit(app)))
	bar := newProgress(stderr, info.Size(), "importing "+filepath.Base(path), "bytes")
	res, err := entries.ImportFile(ctx, f, service.ImportFormat(format), bar.set)
	bar.done()
	if err == nil {
		fmt.Fprintf(stdout, "imported %d entries from %s\n", res.Count, path)
		return nil
	}
	var imp *service.ImportError
	if errors.As(err, &imp) {
		sortLines(imp.Lines)
		for _, l := range imp.Lines {
			fmt.Fprintf(stderr, "%s:%d: %v\n", path, l.Line, l.Err)
		}
		more := ""
		if len(imp.Lines) >= service.MaxImportErrors {
			more = " (reading stopped there)"
		}
		return fmt.Errorf("%d bad lines%s; nothing was imported", len(imp.Lines), more)
	}
	return err
}

func sortLines(ls []service.LineError) {
	slices.SortStableFunc(ls, func(a, b service.LineError) int { return a.Line - b.Line })
}
