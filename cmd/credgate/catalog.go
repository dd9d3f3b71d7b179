package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/credgate/credgate/policy"
)

// errLintFaults: the catalogue has faults, each already printed.
var errLintFaults = errors.New("catalogue has faults")

const catalogUsage = `Usage: credgate catalog lint [DIR] [--sources DIR]
       credgate catalog export DIR

export writes the catalogue built into this binary to DIR, as the start of
a reviewed catalogue (serve --catalog DIR).

lint:

Checks a measure catalogue (the *.yaml files of DIR; default: the catalogue
built into this binary) against the source texts (the *.txt files of
--sources, default ../shared/seeds): every measure's text must occur in the
section its source names, its effect must follow the text's verb, local
measures must be scoped to the place that issued them, and no placeholder
may be served as an authority. Prints every fault as file:line: measure:
message and exits 1 if there is any; prints "clean" and exits 0 otherwise.
`

// catalogCmd runs the catalogue subcommands: lint and export.
func catalogCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, catalogUsage)
		return errUsage
	}
	switch args[0] {
	case "lint":
		return catalogLint(args[1:], stdout, stderr)
	case "export":
		return catalogExport(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, catalogUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "credgate catalog: unknown command %q\n\n%s", args[0], catalogUsage)
		return errUsage
	}
}

func catalogLint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalog lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sources := fs.String("sources", "../shared/seeds", "directory of the source texts (*.txt)")
	fs.Usage = func() {
		fmt.Fprint(stderr, catalogUsage)
		fs.PrintDefaults()
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, catalogUsage)
			fs.PrintDefaults()
			return nil
		}
	}
	// DIR may come before or after the flags.
	var dirs []string
	for {
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(dirs) > 1 {
		fs.Usage()
		return errUsage
	}
	if st, err := os.Stat(*sources); err != nil || !st.IsDir() {
		return fmt.Errorf("source texts: %s is not a directory", *sources)
	}
	catalog := policy.BundledFiles()
	name := "bundled catalogue"
	if len(dirs) == 1 {
		if st, err := os.Stat(dirs[0]); err != nil || !st.IsDir() {
			return fmt.Errorf("catalogue: %s is not a directory", dirs[0])
		}
		catalog, name = os.DirFS(dirs[0]), dirs[0]
	}
	faults := policy.LintCatalog(catalog, os.DirFS(*sources))
	for _, f := range faults {
		fmt.Fprintln(stdout, f)
	}
	if len(faults) > 0 {
		return fmt.Errorf("%w: %d in %s", errLintFaults, len(faults), name)
	}
	fmt.Fprintln(stdout, "clean")
	return nil
}
