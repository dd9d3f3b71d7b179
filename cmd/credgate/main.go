// Command credgate is the credit check gateway: one binary whose
// subcommands serve the API, import list entries, load-test a server, and
// verify evidence receipts and audit the evidence log.
package main

import (
	"context"
	"fmt"
	"io"
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
  credgate verify --key KEY RECEIPT.json
                                 check an evidence receipt offline (exit 0 only if it verifies)
  credgate audit --key KEY --url URL [--full]
                                 prove the log consistent with the checkpoint seen last time
  credgate catalog lint [DIR] [--sources DIR]
                                 check a measure catalogue against the source texts
  credgate help                  show this text

Run "credgate COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "import":
		err = importCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	case "partners":
		err = partnersCmd(ctx, args[1:], stdout, stderr)
	case "verify":
		err = verifyCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		err = auditCmd(ctx, args[1:], stdout, stderr)
	case "catalog":
		err = catalogCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "credgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintf(stderr, "credgate %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
