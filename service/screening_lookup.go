package service

import (
	"context"
	"errors"
)

// EntryBatchLookup reads the entries affecting many subjects at once, as
// LookupEntries does one subject's: a screening job looks up a batch of
// subjects in one round trip to the store instead of one each. The answer
// has every subject asked about.
type EntryBatchLookup interface {
	LookupEntriesBatch(ctx context.Context, subjects []string) (map[string]Lookup, error)
}

// ErrBatchLookupUnsupported: the store reads subjects one at a time only.
var ErrBatchLookupUnsupported = errors.New("the store has no batch lookup")

// WithScreeningsLookup makes jobs read each batch's entries with l (the
// store, not the check path's cache, which a file of distinct subjects
// would only churn; serve puts only the cache's listed filter in front of
// it) instead of one lookup per subject through the checker.
func WithScreeningsLookup(l EntryBatchLookup) ScreeningsOption {
	return func(s *Screenings) { s.batch = l }
}
