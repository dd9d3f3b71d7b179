package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/service"
)

const watchlistUsage = `Usage: credgate watchlist COMMAND [flags] [FILE]

A partner's watchlist: the subjects it is told about (GET /v1/events, its
webhook) whether or not it checked them, such as a bank's whole loan book.

Commands:
  upload [--remove] [--part N] FILE
                 add (or remove) the subjects of FILE, one USCC or ID number per line
                 (a CSV file's first column; blank lines, # comments and a "subject" header
                 are skipped), in parts of N lines (at most 100000), each applied whole;
                 a progress bar on standard error shows the parts sent
  size           how many subjects the watchlist holds

Every command takes --url, --config and --credentials FILE: the partner's credential as
JSON {client_id, client_secret} (or --client-id with CREDGATE_ADMIN_CLIENT_SECRET).
A part refused for a bad line stops the upload there, naming the file's line; the parts
before it stay applied, and uploading the file again is harmless (adding a watched subject
changes nothing).
`

func watchlistCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, watchlistUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("watchlist "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), watchlistUsage) }
	var cf clientFlags
	cf.register(fs)
	remove := fs.Bool("remove", false, "remove the subjects instead of adding them")
	part := fs.Int("part", service.MaxWatchlistBatch, "lines per request (at most 100000)")
	if err := fs.Parse(rest); err != nil {
		return errUsage
	}
	switch {
	case sub == "upload" && fs.NArg() == 1 && *part >= 1 && *part <= service.MaxWatchlistBatch:
	case sub == "size" && fs.NArg() == 0:
	default:
		fs.Usage()
		return errUsage
	}
	// A part is up to 100 000 lines, which a busy server may take longer
	// than the client's default 30 s to store; the bound stays, wider.
	cl, err := cf.client(client.WithTimeout(watchlistPartTimeout))
	if err != nil {
		return err
	}
	if sub == "size" {
		n, err := cl.WatchlistSize(ctx)
		if err != nil {
			return unreachable(cl.BaseURL(), err)
		}
		fmt.Fprintln(stdout, n)
		return nil
	}
	op := service.WatchAdd
	if *remove {
		op = service.WatchRemove
	}
	res, err := uploadWatchlist(ctx, cl, fs.Arg(0), op, *part, stderr)
	if err != nil {
		return unreachable(cl.BaseURL(), err)
	}
	fmt.Fprintf(stdout, "%s: %d subjects read, %d %s, watchlist now %d\n", fs.Arg(0), res.received, res.changed,
		map[string]string{service.WatchAdd: "added", service.WatchRemove: "removed"}[op], res.size)
	return nil
}

// watchlistPartTimeout bounds each request of an upload (one part).
const watchlistPartTimeout = 5 * time.Minute

type uploadTotals struct {
	received int
	changed  int64
	size     int64
}

// uploadWatchlist sends path in parts of at most part lines, with a
// progress bar over the file's bytes on progress.
func uploadWatchlist(ctx context.Context, cl *client.Client, path, op string, part int, progress io.Writer) (uploadTotals, error) {
	f, err := os.Open(path)
	if err != nil {
		return uploadTotals{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return uploadTotals{}, err
	}
	bar := progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(progress), progressbar.OptionShowBytes(true),
		progressbar.OptionSetDescription("watchlist "+op), progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowCount(), progressbar.OptionOnCompletion(func() { fmt.Fprintln(progress) }))
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var (
		tot       uploadTotals
		buf       bytes.Buffer
		lines     int
		firstLine = 1 // the file's line of the part's first line
		line      int
	)
	send := func() error {
		if lines == 0 {
			return nil
		}
		res, err := cl.UpdateWatchlist(ctx, op, buf.Bytes())
		if err != nil {
			var e *client.Error
			if errors.As(err, &e) && len(e.Lines) > 0 {
				return fmt.Errorf("%s line %d: %s (nothing of this part was applied; %d subjects before it were)",
					path, firstLine+e.Lines[0].Line-1, e.Lines[0].Detail, tot.received)
			}
			return err
		}
		tot.received += res.Received
		tot.changed += res.Changed
		tot.size = res.Size
		_ = bar.Add(buf.Len())
		buf.Reset()
		lines = 0
		firstLine = line + 1
		return nil
	}
	for sc.Scan() {
		line++
		buf.Write(sc.Bytes())
		buf.WriteByte('\n')
		lines++
		if lines == part {
			if err := send(); err != nil {
				return tot, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return tot, fmt.Errorf("%s: %w", path, err)
	}
	if err := send(); err != nil {
		return tot, err
	}
	_ = bar.Finish()
	return tot, nil
}
