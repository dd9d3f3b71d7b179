package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/credgate/credgate/policy"
)

// catalogExport copies the catalogue embedded in the binary into a
// directory, where a region reviews it, adds its own measures and serves
// it with --catalog. It refuses a directory that already holds catalogue
// files, so a reviewed copy is never overwritten.
func catalogExport(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("catalog export", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintln(stderr, "Usage: credgate catalog export DIR\n\nWrites the embedded catalogue's *.yaml files into DIR (created if missing).")
	}
	if err := fset.Parse(args); err != nil {
		return errUsage
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return errUsage
	}
	dir := fset.Arg(0)
	if existing, _ := filepath.Glob(filepath.Join(dir, "*.yaml")); len(existing) > 0 {
		return fmt.Errorf("%s already holds catalogue files (%s …); export into an empty directory", dir, filepath.Base(existing[0]))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := policy.BundledFiles()
	names, err := fs.Glob(src, "*.yaml")
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return errors.New("the embedded catalogue has no files")
	}
	for _, name := range names {
		data, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		// O_EXCL: a file that appeared meanwhile is not overwritten.
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	// The copy loads and has the embedded revision until it is changed.
	cat, err := policy.LoadCatalog(os.DirFS(dir))
	if err != nil {
		return fmt.Errorf("the exported copy does not load: %w", err)
	}
	fmt.Fprintf(stdout, "exported %d files to %s (revision %s)\n", len(names), dir, cat.Revision())
	return nil
}
