package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/credgate/credgate/policy"
)

// ErrDataUnavailable: the entries affecting a subject could not be read
// from anywhere (no cached copy and the store did not answer). Nothing is
// answered: an unknown subject is never "clear".
var ErrDataUnavailable = errors.New("entry data unavailable")

// Lookup is what an EntryLookup finds for a subject.
type Lookup struct {
	// Entries affecting the subject. A cache shares them between callers:
	// they must not be modified.
	Entries []policy.Entry
	// AsOf is when the entries were last known to be current: the time
	// of the read from the store, or later if the cache has since
	// confirmed that nothing about the subject changed. Zero means the
	// entries were read from the store by this call: they are current as
	// of the call.
	AsOf time.Time
}

// EntryLookup is how the check path reads the entries affecting a subject
// (directly or as a responsible person, whatever their status) and how
// fresh they are. Every store is one (service.Store), answering with a
// zero AsOf; the cache tier decorates one (cache.Tier) and answers as of
// its last confirmation. Answers carry AsOf as data_as_of.
type EntryLookup interface {
	LookupEntries(ctx context.Context, subject string) (Lookup, error)
}

// SourceFreshness is one upstream source as the check path sees it: the
// lists it feeds and the time of its last good snapshot.
type SourceFreshness struct {
	Name  string
	Lists []string
	// SyncedAt is when the source's current snapshot was last confirmed
	// from upstream; zero when it never was.
	SyncedAt time.Time
	// MaxAge bounds how old the snapshot may be for answers to rest on it.
	MaxAge time.Duration
}

// SourceMonitor reports the upstream sources' freshness. It is called on
// every check: it must not block, and the slice it returns must not be
// modified by the caller.
type SourceMonitor interface {
	Freshness() []SourceFreshness
}

// Reasons an answer is unverifiable (stable codes clients switch on).
const (
	// UnverifiableDataStale: the entry data is older than the staleness
	// bound and could not be refreshed (the store is unreachable).
	UnverifiableDataStale = "data_stale"
	// UnverifiableSourceStale: an upstream source feeding a list with
	// measures for the action has no snapshot younger than its bound.
	UnverifiableSourceStale = "source_stale"
	// UnverifiableSourceNeverSynced: such a source never delivered a
	// good snapshot.
	UnverifiableSourceNeverSynced = "source_never_synced"
)

// UnverifiableView says why an answer's outcome is unverifiable.
type UnverifiableView struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	Source string `json:"source,omitempty"`
}

// WithMaxStaleness bounds the age of the entry data an answer may rest on:
// past it the outcome is unverifiable. Zero (the default) sets no bound.
func WithMaxStaleness(d time.Duration) CheckerOption {
	return func(c *Checker) { c.maxStaleness = d }
}

// WithSources makes answers depend on the freshness of the upstream
// sources: data_as_of is no later than the last good snapshot of any
// source feeding a list with measures for the action, and past a source's
// bound the outcome is unverifiable.
func WithSources(m SourceMonitor) CheckerOption {
	return func(c *Checker) {
		c.sources = m
		c.actionLists = map[listAction]bool{}
		for _, ms := range c.catalog.Measures() {
			for _, a := range ms.Actions {
				c.actionLists[listAction{ms.List, a}] = true
			}
		}
	}
}

type listAction struct{ list, action string }

// lookup reads the entries affecting subject and when they were current.
func (c *Checker) lookup(ctx context.Context, subject string) (Lookup, error) {
	// Taken before the read: data read from the store by this call is at
	// least this fresh.
	at := c.now().UTC()
	found, err := c.entries.LookupEntries(ctx, subject)
	if err != nil {
		return Lookup{}, fmt.Errorf("%w: %w", ErrDataUnavailable, err)
	}
	if found.AsOf.IsZero() {
		found.AsOf = at
	}
	return found, nil
}

// freshness is the answer's data_as_of: the oldest of the entry data and
// the snapshots of the sources that matter for action, and why the answer
// is unverifiable, if it is.
func (c *Checker) freshness(action string, asOf, now time.Time) (time.Time, *UnverifiableView) {
	asOf = asOf.UTC()
	var why *UnverifiableView
	if c.maxStaleness > 0 && now.Sub(asOf) > c.maxStaleness {
		why = &UnverifiableView{Reason: UnverifiableDataStale, Detail: fmt.Sprintf(
			"the entry data was last confirmed %s ago, more than the %s bound, and the store could not be reached",
			now.Sub(asOf).Round(time.Second), c.maxStaleness)}
	}
	if c.sources == nil {
		return asOf, why
	}
	for _, s := range c.sources.Freshness() {
		if !c.matters(s, action) {
			continue
		}
		if s.SyncedAt.IsZero() {
			if why == nil {
				why = &UnverifiableView{Reason: UnverifiableSourceNeverSynced, Source: s.Name,
					Detail: fmt.Sprintf("upstream source %s has not delivered a good snapshot yet", s.Name)}
			}
			continue
		}
		if s.SyncedAt.Before(asOf) {
			asOf = s.SyncedAt.UTC()
		}
		if s.MaxAge > 0 && now.Sub(s.SyncedAt) > s.MaxAge && why == nil {
			why = &UnverifiableView{Reason: UnverifiableSourceStale, Source: s.Name, Detail: fmt.Sprintf(
				"the last good snapshot of upstream source %s is %s old, more than its %s bound",
				s.Name, now.Sub(s.SyncedAt).Round(time.Second), s.MaxAge)}
		}
	}
	return asOf, why
}

// matters reports whether source s feeds a list with measures for action.
func (c *Checker) matters(s SourceFreshness, action string) bool {
	for _, l := range s.Lists {
		if c.actionLists[listAction{l, action}] {
			return true
		}
	}
	return false
}
