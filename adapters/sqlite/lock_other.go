//go:build !unix

package sqlite

import "os"

// Without flock the data dir is not locked: credgate is served from Unix.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) error { return nil }
