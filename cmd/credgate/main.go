// Command credgate is the credit check gateway: one binary whose
// subcommands serve the API, import list entries, load-test a server, and
// verify evidence receipts and audit the evidence log.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `credgate: the joint reward and punishment check gateway

Usage:
  credgate serve  [flags]        run the gateway (defaults: :8080, SQLite under ./data)
  credgate import [flags] FILE   import list entries from CSV or NDJSON, all or nothing
  credgate bench  [flags]        drive POST /v1/checks over loopback and report throughput and latency
  credgate partners COMMAND      create|list|show|update|rotate|revoke partners through the API (admin credential)
  credgate feedback submit|show|overdue
                                 execution feedback on checks, and checks whose feedback is overdue
  credgate stats --from T --to T [--by partner|action|list|region] [--monthly]
                                 tracking statistics of checks and feedback
  credgate report monthly --month YYYY-MM [--format csv|json]
                                 the monthly report the credit office files
  credgate coverage APPROVALS.csv
                                 which approvals had no check before them (应查必查)
  credgate watchlist upload FILE  add a partner's watchlist (millions of subjects) in parts, with progress
  credgate commitments list|add|show|fulfil|breach
                                 credit commitments (信用承诺) and their fulfilment or breach
  credgate authorities list|show|set|clear
                                 departments' subscriptions to the events of their measure authorities
  credgate screen FILE --action ACTION [--out RESULTS]
                                 screen a file of millions of subjects as a job, with progress, into a results file
  credgate verify --key KEY [--url URL] RECEIPT.json
                                 check an evidence receipt offline (exit 0 only if it verifies);
                                 with --url, also that it is still in today's log
  credgate audit --key KEY --url URL [--full]
                                 prove the log consistent with the checkpoint seen last time
  credgate catalog lint [DIR] [--sources DIR]
                                 check a measure catalogue against the source texts
  credgate catalog export DIR    copy the embedded catalogue into DIR for review (serve --catalog DIR)
  credgate spool integrate --dir DIR
                                 integrate the evidence spool of a replica that is gone
  credgate spool status --dir DIR
                                 a spool's replica id, records pending and the oldest one
  credgate migrate [flags]       bring the store's schema up to this version, then exit
  credgate keygen --data-dir DIR write the token and evidence keys that replicas share
  credgate backup OUT            copy the embedded SQLite database consistently while it serves
  credgate archive OUT           write the evidence log (records, tiles, checkpoints, keys) into a directory or .tar
                                 that credgate verify --archive checks with no server
  credgate config [flags]        print the settings serve would use and where each comes from
  credgate version               print the version, the VCS revision and the catalogue revision
  credgate help [COMMAND]        show this text, or a command's flags

Commands that talk to a running server (partners, feedback, stats, report, coverage, commitments, authorities,
watchlist, bench) use --url or CREDGATE_URL
(default http://localhost:8080). Every setting can also come from a YAML file (--config FILE)
or a CREDGATE_* variable: see docs/CONFIGURATION.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		ignoreHangup(os.Stderr)
	}
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// ignoreHangup keeps serve running on SIGHUP, which by default ends a Go
// program at once, without the drain SIGTERM gets. Operators send it
// expecting a reload, which serve does not do; each one is logged (in
// serve's default JSON format) so that they learn it. Other commands keep
// the default: a hang-up ends them with their terminal.
func ignoreHangup(w io.Writer) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	logger := slog.New(slog.NewJSONHandler(w, nil))
	go func() {
		for range hup {
			logger.Warn("SIGHUP ignored: settings are read at start; restart to apply them (SIGTERM drains, then stops)")
		}
	}()
}

// commands are credgate's subcommands.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"serve":     serve,
	"import":    importCmd,
	"bench":     benchCmd,
	"partners":  partnersCmd,
	"verify":    verifyCmd,
	"audit":     auditCmd,
	"catalog":   catalogCmd,
	"config":    configCmd,
	"feedback":  feedbackCmd,
	"stats":     statsCmd,
	"report":    reportCmd,
	"coverage":  coverageCmd,
	"spool":     spoolCmd,
	"watchlist": watchlistCmd,
	"screen":    screenCmd,
	"migrate":   migrateCmd,
	"keygen":    keygenCmd,
	"backup":    backupCmd,
	"archive":   archiveCmd,

	"commitments": commitmentsCmd,
	"authorities": authoritiesCmd,
}

// run is the command line: exit 0 on success and for help, 1 when a
// command fails, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return 0
		}
		// "credgate help serve" is "credgate serve --help".
		name, rest = rest[0], []string{"--help"}
	case "version", "-version", "--version":
		fmt.Fprint(stdout, versionText())
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "credgate: unknown command %q\n\n%s", name, usage)
		return 2
	}
	if len(rest) == 1 && rest[0] == "help" {
		rest = []string{"--help"} // "credgate partners help"
	}
	if wantsHelp(rest) {
		// Help that was asked for is the answer, not an error: it goes to
		// standard output and exits 0, whatever the command.
		if err := cmd(ctx, rest, stdout, stdout); err != nil && !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "credgate %s: %v\n", name, err)
			return 1
		}
		return 0
	}
	err := cmd(ctx, rest, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		var ee *exitError
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "credgate %s: %v\n", name, err)
			return ee.code
		}
		fmt.Fprintf(stderr, "credgate %s: %v\n", name, err)
		return 1
	}
}

// wantsHelp reports whether args ask for help: -h, -help or --help before
// any "--", wherever they stand (the flag package stops at the first one
// and prints the command's usage).
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}
