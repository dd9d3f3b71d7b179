package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/policy"
)

// errUsage: the command line was wrong; the usage is already printed.
var errUsage = errors.New("usage")

// modulePath names credgate when the build carries no module information.
const modulePath = "github.com/credgate/credgate"

// The settings each command reads (internal/config selections).
var (
	serveSettings  = []string{"server", "store", "redis", "cache", "upstream", "evidence", "access", "catalog", "log", "tracing", "events"}
	importSettings = []string{"store", "catalog"}
	// Client commands find the generated administrator credential in the
	// data dir, or take it from the environment or a file.
	clientSettings = []string{"client", "store.data_dir", "access.admin_client_id", "access.admin_client_secret"}
)

// commandFlags is a command's flag set with the settings it reads
// registered; usage prints head, the flags, and where else settings come
// from, on the flag set's output.
func commandFlags(name, head string, keys []string, stderr io.Writer) (*flag.FlagSet, *config.Loader) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Warnings (a secret given as a flag) go where the command's errors go.
	l := config.NewLoader(keys, config.WithWarnings(stderr))
	l.Register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), head)
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nA flag's setting may also come from its CREDGATE_* variable or a --config file\n(flag > environment > file > default); see docs/CONFIGURATION.md.")
	}
	return fs, l
}

// commandConfig parses args for a command that takes no arguments and no
// flags of its own, and loads its settings; a misuse is errUsage.
func commandConfig(name, head string, keys, args []string, stderr io.Writer) (*config.Config, error) {
	fs, loader := commandFlags(name, head, keys, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return nil, errUsage
	}
	return loader.Load()
}

// versionText is what "credgate version" prints: the module version, the
// VCS revision the binary was built from and the embedded catalogue's
// revision, which together say what rules a binary applies.
func versionText() string {
	info, _ := debug.ReadBuildInfo()
	return formatVersion(info)
}

// formatVersion renders build information (nil: none); a binary built
// without VCS stamping (-buildvcs=false, or outside a checkout) says so.
func formatVersion(info *debug.BuildInfo) string {
	module, version, revision, when, dirty := modulePath, "(devel)", "", "", false
	if info != nil {
		if info.Main.Path != "" {
			module = info.Main.Path
		}
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if revision == "" {
		revision = "unknown (built without VCS information)"
	} else {
		if dirty {
			revision += "+dirty"
		}
		if when != "" {
			revision += " (" + when + ")"
		}
	}
	catalogue := "unavailable"
	if cat, err := policy.BundledCatalog(); err == nil {
		catalogue = cat.Revision()
	} else {
		catalogue += ": " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "credgate %s\n", version)
	fmt.Fprintf(&b, "module    %s\n", module)
	fmt.Fprintf(&b, "revision  %s\n", revision)
	fmt.Fprintf(&b, "catalogue %s (embedded)\n", catalogue)
	return b.String()
}

const configUsage = `Usage: credgate config [--config FILE] [flags]

Prints every setting serve would run with, from the defaults, the file, the
environment and the flags, and where each value came from; secrets are shown
as (set). Exits 1, naming the setting, if a value is refused, or if a file,
directory or URL is one serve would refuse before it binds (the catalogue,
the holidays and sources files, key files and keys kept in the data dir, the
Redis URL, the data and spool dirs): a way to check a configuration before a
start. It writes nothing and connects to nothing, so a directory that cannot
be created or a database or Redis that is down shows only at the start.
`

// configCmd is "credgate config".
func configCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig("config", configUsage, append(serveSettings, "client"), args, stderr)
	if err != nil {
		return err
	}
	// The files, directories and URLs serve reads and checks before it
	// binds, with the same code.
	in, err := checkServeInputs(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if in.rdb != nil {
		in.rdb.Close() // never connected
	}
	w := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "SETTING\tVALUE\tFROM")
	for _, key := range config.Keys() {
		v, _ := cfg.Value(key)
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", key, v, cfg.Origin(key))
	}
	return w.Flush()
}

// unreachable explains a request that never reached the server at base:
// which URL was tried and how to point the command elsewhere (--url or
// CREDGATE_URL, client.url). Other errors are returned as they are.
func unreachable(base string, err error) error {
	return unreachableHint(base, "use --url or CREDGATE_URL to name another", err)
}

// unreachableHint is unreachable with the command's own way to name
// another server.
func unreachableHint(base, hint string, err error) error {
	var op *net.OpError
	var dns *net.DNSError
	var ue *url.Error
	cause := err
	switch {
	case errors.As(err, &op):
		cause = op
	case errors.As(err, &dns):
		cause = dns
	case errors.As(err, &ue) && ue.Timeout():
		cause = ue.Err
	default:
		return err
	}
	return &unreachableError{base: base, hint: hint, cause: cause, err: err}
}

type unreachableError struct {
	base, hint string
	cause, err error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach credgate at %s: %v — is `credgate serve` running there? %s", e.base, e.cause, e.hint)
}

func (e *unreachableError) Unwrap() error { return e.err }
