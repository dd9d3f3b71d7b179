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
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

const importUsage = `Usage: credgate import [flags] FILE.csv|FILE.ndjson

Imports list entries straight into the configured store, all or nothing:
every bad line is reported and nothing is applied unless the whole file is
good. The import is recorded in the evidence log as an administrative act.
`

// importCmd imports list entries straight into the configured store, in
// one transaction: every bad line is reported and nothing is applied
// unless the whole file is good.
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, loader := commandFlags("import", importUsage, importSettings, stderr)
	var format string
	fs.StringVar(&format, "format", "", "csv or ndjson (default: from the file extension)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	path := fs.Arg(0)
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
	bar := newProgress(stderr, info.Size())
	inputs, lines, bad, err := service.ParseImport(f, service.ImportFormat(format), bar.update)
	bar.done()
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
	// its actor, in the evidence log before the entries are stored.
	app := evidence.NewAppender(st)
	defer app.Close()
	ctx = service.WithActor(ctx, localActor())
	entries := service.NewEntries(st, cat, service.WithEntriesAudit(service.NewAudit(app)))
	if len(bad) == 0 {
		var got []policy.Entry
		got, err = entries.Import(ctx, inputs, lines)
		if err == nil {
			fmt.Fprintf(stdout, "imported %d entries from %s\n", len(got), path)
			return nil
		}
	} else {
		// Validate the well-formed lines too, so one run reports every
		// problem in the file.
		for i, in := range inputs {
			if _, perr := entries.Prepare(in); perr != nil {
				bad = append(bad, service.LineError{Line: lines[i], Err: perr})
			}
		}
		err = &service.ImportError{Lines: bad}
	}
	var imp *service.ImportError
	if errors.As(err, &imp) {
		sortLines(imp.Lines)
		for _, l := range imp.Lines {
			fmt.Fprintf(stderr, "%s:%d: %v\n", path, l.Line, l.Err)
		}
		return fmt.Errorf("%d bad lines; nothing was imported", len(imp.Lines))
	}
	return err
}

func sortLines(ls []service.LineError) {
	slices.SortStableFunc(ls, func(a, b service.LineError) int { return a.Line - b.Line })
}

// progress draws a progress bar on a terminal-ish writer, at most ten
// times a second.
type progress struct {
	w     io.Writer
	total int64
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, total int64) *progress { return &progress{w: w, total: total} }

func (p *progress) update(n int64) {
	if p.total <= 0 || time.Since(p.last) < 100*time.Millisecond && n < p.total {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := int(float64(width) * float64(n) / float64(p.total))
	filled = min(max(filled, 0), width)
	fmt.Fprintf(p.w, "\rreading [%s%s] %3d%%", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n*100/p.total)
	p.drawn = true
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
