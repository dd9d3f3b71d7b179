// Package durable writes small files so that a crash leaves either the
// old file or the new one whole, never a part, and a power loss after it
// returns keeps the new one: the evidence spool's marks, the server's
// spooled records and the screening CLI's job and receipt files all rest
// on it. Standard library only: evidence, the inner layer, may use it.
package durable

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteFile replaces dir/name with data: written whole to a temporary
// file in dir (mode 0600, owner only: these files hold records of checks
// and subjects' ID numbers), synced, renamed over name, and the directory
// synced so that the rename itself survives a power loss. dir is created
// (mode 0700) when missing. On error the temporary file is removed and
// name is as it was.
func WriteFile(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// CreateTemp opens with O_EXCL and mode 0600 whatever the umask
	// (which can only take bits away). The leading dot keeps it out of
	// listings that look for name's pattern.
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes dir's entries (a rename into it) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
