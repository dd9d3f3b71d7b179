package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credgate/credgate/policy"
)

// Push (信息推送): every change of an entry leaves an outbox row in the
// transaction that makes it (the stores write it by trigger). The fan-out
// here turns each row into one event per subscriber of each subject the
// change touches — partners that checked the subject within a window,
// partners whose watchlist holds it, and departments subscribed to the
// authority of a measure the change brings into or out of force
// (departments.go) — with the measures newly in or out of force for that
// partner's actions (a department's: its authorities' measures), decided
// by policy.Decide exactly as a check would be. Events are kept per
// partner, in one global order whose position is the feed's cursor, read
// from the pull feed (GET /v1/events) and delivered to webhooks
// (delivery.go).

// Errors of the event feed.
var (
	// ErrInvalidCursor: an after= that is not a cursor credgate gave.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrEventsUnavailable: the store keeps no events.
	ErrEventsUnavailable = errors.New("events are not available")
)

// Limits of the event feed.
const (
	// MaxEventPage caps the events of one feed page.
	MaxEventPage = 500
	// MaxEventWait caps a long-poll, well below the server's write
	// timeout.
	MaxEventWait = 30 * time.Second
	// fanoutBatch is how many outbox rows one fan-out step takes.
	fanoutBatch = 200
	// sweepEvery is how often validity ends and publications are looked
	// for: the delay of an expiry's or a publication's event, at most.
	sweepEvery = 30 * time.Second
	// fanoutLease is how long one process may hold the fan-out (claimed
	// per pass, released after it): far longer than a pass, and the delay
	// of events, at most, after a process dies in the middle of one.
	fanoutLease = time.Minute
)

// Defaults of push (events.* in the configuration).
const (
	DefaultCheckedWindow      = 90 * 24 * time.Hour
	DefaultEventRetention     = 30 * 24 * time.Hour
	DefaultEventsInterval     = 200 * time.Millisecond
	DefaultWebhookTimeout     = 10 * time.Second
	DefaultWebhookMinBackoff  = time.Second
	DefaultWebhookMaxBackoff  = 10 * time.Minute
	DefaultWebhookMaxAttempts = 15
)

// EventKind is what happened to a subject.
type EventKind string

// Event kinds. EventPublished is the passing of the published_at of an
// entry recorded before it: its listing was told while it was pending,
// its measures come into force now.
const (
	EventListed          EventKind = "listed"
	EventSuspended       EventKind = "suspended"
	EventRestored        EventKind = "restored"
	EventCorrected       EventKind = "corrected"
	EventRevoked         EventKind = "revoked"
	EventExpired         EventKind = "expired"
	EventPublished       EventKind = "published"
	EventExited          EventKind = "exited"
	EventRepaired        EventKind = "repaired"
	EventPointsThreshold EventKind = "points_threshold_crossed"
)

// Subscription reasons: why a partner is told.
const (
	SubscribedChecked   = "checked"
	SubscribedWatchlist = "watchlist"
)

// OutboxChange is one outbox row: entry id reached version Version at
// RecordedAt.
type OutboxChange struct {
	Seq        int64
	EntryID    string
	Version    int64
	RecordedAt time.Time
	// Kind is "" for a write of the entry, EventExpired for the end of
	// its validity (RecordedAt is then valid_until), EventPublished for
	// its publication (RecordedAt is published_at).
	Kind EventKind
}

// StoredEvent is an event as kept: its body is the event's JSON without
// the cursor, which is Seq.
type StoredEvent struct {
	Seq       int64
	ID        string
	Partner   string
	Kind      EventKind
	CreatedAt time.Time
	Body      []byte
}

// Subscriber is one partner subscribed to one subject, and why.
type Subscriber struct {
	Subject string
	Partner string
	Reason  string
}

// EventStore keeps the outbox, the subscriptions, the events and their
// deliveries. Adapters pass the conformance suite's event tests.
type EventStore interface {
	// PendingChanges returns up to limit outbox rows, oldest first.
	PendingChanges(ctx context.Context, limit int) ([]OutboxChange, error)
	// SweepExpired adds, for the changes time alone made since the
	// previous sweep and at or before now, an outbox row of kind
	// EventExpired for each entry, not revoked, whose validity ended, and
	// one of kind EventPublished for each entry, not revoked, whose
	// published_at passed and was set by a version recorded before it
	// (told pending); the first sweep adds none. It returns how many.
	SweepExpired(ctx context.Context, now time.Time) (int64, error)
	// ClaimFanout takes for holder, or renews, the exclusive right to fan
	// the outbox out, until now+lease; false when another holder has it
	// and its lease has not ended.
	ClaimFanout(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error)
	// ReleaseFanout gives holder's right up (nothing if it has lost it).
	ReleaseFanout(ctx context.Context, holder string) error
	// EntryVersion returns version v of entry id from its history;
	// ErrNotFound when there is none.
	EntryVersion(ctx context.Context, id string, v int64) (policy.Entry, error)
	// Subscribers returns, for each of subjects, the partners whose
	// watchlist holds it and those that checked it at or after
	// checkedSince (checks answered at the time; one as of a past time
	// subscribes no one), ordered by subject, partner, reason.
	Subscribers(ctx context.Context, subjects []string, checkedSince time.Time) ([]Subscriber, error)
	// PublishEvents, in one transaction, deletes the outbox rows done and
	// inserts events (assigning Seq in order) and, for each event whose
	// partner has a webhook, a pending delivery due at its CreatedAt. If
	// any of done is gone (another replica published it) nothing is
	// written and the error is ErrConflict.
	PublishEvents(ctx context.Context, done []int64, events []StoredEvent) error
	// Events returns up to limit events of partner with Seq > after, in
	// Seq order.
	Events(ctx context.Context, partner string, after int64, limit int) ([]StoredEvent, error)
	// PruneEvents deletes events created before before (with their
	// deliveries).
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	// AuthoritySubscriptions returns every department's subscription by
	// authority (departments.go), ordered by partner then authority.
	AuthoritySubscriptions(ctx context.Context) ([]AuthoritySubscription, error)
}

// PartnerLister lists partners (the fan-out resolves subscribers' actions
// and scope).
type PartnerLister interface {
	ListPartners(ctx context.Context) ([]Partner, error)
}

// AffectingReader reads the entries affecting a subject from the store
// (never a cache: the fan-out must see the change it announces).
type AffectingReader interface {
	EntriesAffecting(ctx context.Context, subject string) ([]policy.Entry, error)
}

// Acts of push, recorded in the evidence log. ActWebhookSkipped is a
// delivery not sent, its event being out of the partner's scope when it
// fell due (delivery.go).
const (
	ActEventsPublished    Act = "events_published"
	ActWebhookSet         Act = "webhook_set"
	ActWebhookRemoved     Act = "webhook_removed"
	ActWebhookDelivered   Act = "webhook_delivered"
	ActWebhookDeadLetter  Act = "webhook_dead_lettered"
	ActWebhookSkipped     Act = "webhook_skipped"
	ActWebhookReplayed    Act = "webhook_replayed"
	ActWatchlistChanged   Act = "watchlist_changed"
	actEventsPublishedMax     = fanoutBatch
)

// MeasureChange is what a change did to one of the partner's actions.
type MeasureChange struct {
	Action        string         `json:"action"`
	OutcomeBefore policy.Outcome `json:"outcome_before"`
	Outcome       policy.Outcome `json:"outcome"`
	// InForce are the measures newly in force, OutOfForce those no longer
	// in force, for this action.
	InForce    []MeasureView `json:"measures_in_force"`
	OutOfForce []MeasureView `json:"measures_out_of_force"`
}

// Event is one change told to one partner.
type Event struct {
	ID string `json:"id"`
	// Cursor is the event's position in the feed: GET /v1/events?after=
	// it returns the events after this one.
	Cursor       string      `json:"cursor"`
	Kind         EventKind   `json:"kind"`
	Subject      SubjectView `json:"subject"`
	EntryID      string      `json:"entry_id"`
	EntryVersion int64       `json:"entry_version"`
	List         string      `json:"list"`
	EntryStatus  string      `json:"entry_status"`
	OccurredAt   time.Time   `json:"occurred_at"`
	Subscription []string    `json:"subscription"`
	// Authorities are, in a department's event, the authorities it
	// subscribed to whose measures the change brought into or out of
	// force.
	Authorities []string        `json:"authorities,omitempty"`
	Changes     []MeasureChange `json:"changes"`
}

// WireEvent returns the JSON an event is sent as: its stored body with
// the cursor added, byte for byte the same at every read.
func WireEvent(e StoredEvent) []byte {
	c := strconv.AppendQuote(nil, strconv.FormatInt(e.Seq, 10))
	out := make([]byte, 0, len(e.Body)+len(c)+12)
	out = append(out, `{"cursor":`...)
	out = append(out, c...)
	if len(e.Body) > 2 {
		out = append(out, ',')
	}
	return append(out, e.Body[1:]...)
}

// ParseCursor reads an after= value: "" is the start.
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%w: %q", ErrInvalidCursor, s)
	}
	return n, nil
}

// Events fans changes out to subscribers and serves the pull feed.
type Events struct {
	store    EventStore
	entries  AffectingReader
	partners PartnerLister
	catalog  *policy.Catalog
	audit    *Audit
	logger   *slog.Logger
	now      func() time.Time
	// holder names this process's claims of the fan-out.
	holder string

	checkedWindow time.Duration
	retention     time.Duration
	interval      time.Duration

	// authorityActions holds, for each authority of the catalogue, the
	// actions its measures bind: what a department's events decide.
	authorityActions map[string][]string

	// published is closed and replaced whenever this process publishes
	// events, waking long-polls; other replicas' events are found by the
	// long-poll's own polling.
	mu        sync.Mutex
	published chan struct{}
	// kick asks the fan-out loop for a pass now.
	kick chan struct{}
}

// EventsOption configures Events.
type EventsOption func(*Events)

// WithEventsClock sets the clock (tests).
func WithEventsClock(now func() time.Time) EventsOption { return func(e *Events) { e.now = now } }

// WithCheckedWindow sets how long after a check a partner is told about
// the subject (events.checked_window).
func WithCheckedWindow(d time.Duration) EventsOption {
	return func(e *Events) {
		if d > 0 {
			e.checkedWindow = d
		}
	}
}

// WithEventRetention sets how long events are kept (events.retention).
func WithEventRetention(d time.Duration) EventsOption {
	return func(e *Events) {
		if d > 0 {
			e.retention = d
		}
	}
}

// WithFanoutInterval sets how often the outbox is read (events.interval).
func WithFanoutInterval(d time.Duration) EventsOption {
	return func(e *Events) {
		if d > 0 {
			e.interval = d
		}
	}
}

// WithEventsAudit records publications in the evidence log.
func WithEventsAudit(a *Audit) EventsOption { return func(e *Events) { e.audit = a } }

// WithEventsLogger sets the logger; it never receives subjects.
func WithEventsLogger(l *slog.Logger) EventsOption { return func(e *Events) { e.logger = l } }

// NewEvents returns the fan-out and feed over store; entries are read
// as the check path reads them, partners for the subscribers' actions.
func NewEvents(store EventStore, entries AffectingReader, partners PartnerLister, cat *policy.Catalog, opts ...EventsOption) *Events {
	e := &Events{
		store: store, entries: entries, partners: partners, catalog: cat, logger: slog.Default(), now: time.Now,
		holder:        "fanout-" + rand.Text(),
		checkedWindow: DefaultCheckedWindow, retention: DefaultEventRetention, interval: DefaultEventsInterval,
		published: make(chan struct{}), kick: make(chan struct{}, 1),
		authorityActions: map[string][]string{},
	}
	for _, m := range cat.Measures() {
		for _, a := range m.Actions {
			if !slices.Contains(e.authorityActions[m.Authority], a) {
				e.authorityActions[m.Authority] = append(e.authorityActions[m.Authority], a)
			}
		}
	}
	for _, as := range e.authorityActions {
		slices.Sort(as)
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Kick asks for a fan-out pass now (after a change in this process).
func (e *Events) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run fans the outbox out until ctx ends, and prunes old events hourly.
func (e *Events) Run(ctx context.Context) {
	tick := time.NewTicker(e.interval)
	defer tick.Stop()
	var pruned, swept time.Time
	for {
		if now := e.now(); now.Sub(swept) >= sweepEvery {
			if _, err := e.SweepExpired(ctx); err != nil && ctx.Err() == nil {
				e.logger.Warn("expiry sweep", "error", err)
			} else {
				swept = now
			}
		}
		for {
			n, err := e.FanOut(ctx)
			if err != nil {
				if ctx.Err() == nil {
					e.logger.Warn("event fan-out", "error", err)
				}
				break
			}
			if n == 0 {
				break
			}
		}
		if now := e.now(); now.Sub(pruned) > time.Hour {
			if _, err := e.store.PruneEvents(ctx, now.Add(-e.retention)); err != nil && ctx.Err() == nil {
				e.logger.Warn("event pruning", "error", err)
			} else {
				pruned = now
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.kick:
		}
	}
}

// SweepExpired puts the validity ends and publications since the last
// sweep in the outbox (the first sweep only starts); Run calls it every
// sweepEvery.
func (e *Events) SweepExpired(ctx context.Context) (int64, error) {
	return e.store.SweepExpired(ctx, e.now().UTC().Truncate(time.Microsecond))
}

// FanOut turns up to one batch of outbox rows into events and publishes
// them; it returns how many rows it consumed.
//
// One process at a time computes and publishes (ClaimFanout): each records
// the events in the evidence log before they exist, and two computing the
// same rows at once each recorded events of their own, of which only one
// set could be published (the other's ids named events that never were).
// A process that finds the fan-out claimed consumes nothing this pass.
func (e *Events) FanOut(ctx context.Context) (int, error) {
	// A read first: an idle outbox costs no claim, which is a write.
	changes, err := e.store.PendingChanges(ctx, fanoutBatch)
	if err != nil || len(changes) == 0 {
		return 0, err
	}
	now := e.now().UTC().Truncate(time.Microsecond)
	claimed, err := e.store.ClaimFanout(ctx, e.holder, now, fanoutLease)
	if err != nil || !claimed {
		return 0, err
	}
	defer func() {
		// Released even when ctx ended: otherwise the others wait out the
		// lease. Left to the lease if the store does not answer.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := e.store.ReleaseFanout(rctx, e.holder); err != nil {
			e.logger.Warn("event fan-out release", "error", err)
		}
	}()
	// Read again under the claim: another process may have published the
	// rows read before it.
	changes, err = e.store.PendingChanges(ctx, fanoutBatch)
	if err != nil || len(changes) == 0 {
		return 0, err
	}
	partners, err := e.partnerIndex(ctx)
	if err != nil {
		return 0, err
	}
	depts, err := e.departments(ctx, partners)
	if err != nil {
		return 0, err
	}
	var (
		events []StoredEvent
		done   = make([]int64, 0, len(changes))
	)
	for _, c := range changes {
		evs, err := e.eventsFor(ctx, c, partners, depts, now)
		if err != nil {
			return 0, fmt.Errorf("outbox row %d: %w", c.Seq, err)
		}
		events = append(events, evs...)
		done = append(done, c.Seq)
	}
	var recorded []string
	if len(events) > 0 && e.audit != nil {
		if recorded, err = e.recordPublication(ctx, events); err != nil {
			e.recordUnpublished(ctx, recorded, err)
			return 0, err
		}
	}
	if err := e.store.PublishEvents(ctx, done, events); err != nil {
		// Past the lease (a pass of more than fanoutLease) another process
		// may have published these rows: the records name events that do
		// not exist, and say so.
		e.recordUnpublished(ctx, recorded, err)
		if errors.Is(err, ErrConflict) {
			return 0, nil // another replica published these rows
		}
		return 0, err
	}
	if len(events) > 0 {
		e.mu.Lock()
		close(e.published)
		e.published = make(chan struct{})
		e.mu.Unlock()
	}
	return len(changes), nil
}

// recordPublication records, before the events exist, which events are
// published: their ids, partners and body hashes (never subjects, which
// may be persons' numbers), in records of at most fanoutBatch events. It
// returns the ids of the records made, those before a failure included.
func (e *Events) recordPublication(ctx context.Context, events []StoredEvent) ([]string, error) {
	var ids []string
	for start := 0; start < len(events); start += actEventsPublishedMax {
		part := events[start:min(len(events), start+actEventsPublishedMax)]
		list := make([]map[string]string, len(part))
		for i, ev := range part {
			h := sha256.Sum256(ev.Body)
			list[i] = map[string]string{"id": ev.ID, "partner": ev.Partner, "kind": string(ev.Kind), "body_sha256": hex.EncodeToString(h[:])}
		}
		rec, err := e.audit.Record(WithActor(ctx, Actor{ClientID: SystemActorID, Role: RoleSystem}), ActEventsPublished, "events", map[string]any{"events": list})
		if err != nil {
			return ids, err
		}
		ids = append(ids, rec.ID)
	}
	return ids, nil
}

// recordUnpublished follows each events_published record of a
// publication that failed with an act_failed naming it, as Audit does for
// any act: the events it lists were never published.
func (e *Events) recordUnpublished(ctx context.Context, records []string, cause error) {
	if len(records) == 0 {
		return
	}
	// The failure records must not be lost to the pass's deadline.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	fctx = WithActor(fctx, Actor{ClientID: SystemActorID, Role: RoleSystem})
	for _, id := range records {
		if _, err := e.audit.Record(fctx, ActFailed, "events", map[string]any{
			"act": string(ActEventsPublished), "act_id": id, "failure": failureClass(cause)}); err != nil {
			e.logger.Warn("event fan-out: recording a failed publication", "error", err)
			return
		}
	}
}

func (e *Events) partnerIndex(ctx context.Context) (map[string]Partner, error) {
	all, err := e.partners.ListPartners(ctx)
	if err != nil {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	idx := make(map[string]Partner, len(all))
	for _, p := range all {
		if p.Status == PartnerActive {
			idx[p.ClientID] = p
		}
	}
	return idx, nil
}

// department is a partner subscribed by authority (departments.go).
type department struct {
	partner     Partner
	authorities []string
	// actions are those the authorities' measures bind, sorted.
	actions []string
}

// departments reads the subscriptions by authority once per fan-out batch:
// a few rows per department, whatever the number of subjects, so that a
// change costs one decision per department's action and never a scan.
func (e *Events) departments(ctx context.Context, partners map[string]Partner) ([]department, error) {
	subs, err := e.store.AuthoritySubscriptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("authority subscriptions: %w", err)
	}
	var out []department
	for _, s := range subs {
		p, ok := partners[s.Partner]
		if !ok || p.Role != RolePartner {
			continue
		}
		if len(out) == 0 || out[len(out)-1].partner.ClientID != s.Partner {
			out = append(out, department{partner: p})
		}
		d := &out[len(out)-1]
		d.authorities = append(d.authorities, s.Authority)
		for _, a := range e.authorityActions[s.Authority] {
			if !slices.Contains(d.actions, a) {
				d.actions = append(d.actions, a)
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].actions)
	}
	return out, nil
}

// eventsFor builds the events of one outbox row.
func (e *Events) eventsFor(ctx context.Context, c OutboxChange, partners map[string]Partner, depts []department, now time.Time) ([]StoredEvent, error) {
	after, err := e.store.EntryVersion(ctx, c.EntryID, c.Version)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // history predating it: nothing to tell
	}
	if err != nil {
		return nil, err
	}
	atBefore, atAfter := now, now
	var before *policy.Entry
	switch c.Kind {
	case EventExpired, EventPublished:
		// Nothing was written: the same version, just before and at the
		// end of its validity, or its publication. An entry held until an
		// exit application is decided (or changed since) has not expired;
		// one that was not pending until then (changed since) was not
		// published then.
		atBefore, atAfter = c.RecordedAt.Add(-time.Microsecond), c.RecordedAt
		if c.Kind == EventExpired && after.StatusAt(atAfter) != policy.StatusExpired {
			return nil, nil
		}
		if c.Kind == EventPublished && (after.StatusAt(atBefore) != policy.StatusPending || after.StatusAt(atAfter) == policy.StatusPending) {
			return nil, nil
		}
		b := after
		before = &b
	default:
		if c.Version <= 1 {
			break
		}
		b, err := e.store.EntryVersion(ctx, c.EntryID, c.Version-1)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err == nil {
			before = &b
		}
	}
	kind := classify(before, after, now)
	if c.Kind == EventExpired || c.Kind == EventPublished {
		kind = c.Kind
	}
	subjects := affected(after)
	if before != nil {
		for _, s := range affected(*before) {
			if !slices.Contains(subjects, s) {
				subjects = append(subjects, s)
			}
		}
	}
	subs, err := e.store.Subscribers(ctx, subjects, now.Add(-e.checkedWindow))
	if err != nil {
		return nil, err
	}
	// Group reasons per (subject, partner); subs are ordered.
	type key struct{ subject, partner string }
	var order []key
	reasons := map[key][]string{}
	for _, s := range subs {
		k := key{s.Subject, s.Partner}
		if _, ok := reasons[k]; !ok {
			order = append(order, k)
		}
		if !slices.Contains(reasons[k], s.Reason) {
			reasons[k] = append(reasons[k], s.Reason)
		}
	}
	// Departments follow every subject the change touches; whether they
	// are told depends on their measures (below).
	deptOf := make(map[string]*department, len(depts))
	for i := range depts {
		d := &depts[i]
		deptOf[d.partner.ClientID] = d
		for _, s := range subjects {
			k := key{s, d.partner.ClientID}
			if _, ok := reasons[k]; !ok {
				order = append(order, k)
			}
			reasons[k] = append(reasons[k], SubscribedAuthority)
		}
	}
	if len(depts) > 0 {
		slices.SortStableFunc(order, func(a, b key) int {
			if a.subject != b.subject {
				return strings.Compare(a.subject, b.subject)
			}
			return strings.Compare(a.partner, b.partner)
		})
	}
	var out []StoredEvent
	inputs := map[string]*changeInputs{}
	for _, k := range order {
		p, ok := partners[k.partner]
		if !ok {
			continue
		}
		subject, err := policy.ParseSubjectID(k.subject)
		if err != nil {
			continue // not a subject credgate would answer about
		}
		if !CallerOf(p).mayCheckKind(subject.Kind) {
			continue // not entitled to this kind of subject (persons' numbers)
		}
		in, ok := inputs[k.subject]
		if !ok {
			f, err := e.entries.EntriesAffecting(ctx, k.subject)
			if err != nil {
				return nil, fmt.Errorf("look up entries: %w", err)
			}
			in = newChangeInputs(subject, f, before, after, atBefore, atAfter)
			inputs[k.subject] = in
		}
		rs := slices.Clone(reasons[k])
		var changes []MeasureChange
		own := slices.ContainsFunc(rs, func(r string) bool { return r != SubscribedAuthority })
		if own {
			// The partner's own actions, every measure.
			actions := p.Actions
			if p.Role != RolePartner {
				actions = nil
			}
			changes = make([]MeasureChange, 0, len(actions))
			for _, a := range actions {
				if _, ok := e.catalog.Action(a); !ok {
					continue
				}
				mc, err := e.actionChange(in, a, p.Region)
				if err != nil {
					return nil, err
				}
				changes = append(changes, mc)
			}
		}
		var auths []string
		if d := deptOf[k.partner]; d != nil {
			// The department's authorities: the actions their measures
			// bind, each with only those measures, kept when one of them
			// came into or went out of force.
			for _, a := range d.actions {
				if slices.ContainsFunc(changes, func(mc MeasureChange) bool { return mc.Action == a }) {
					continue // already told in full
				}
				if _, ok := e.catalog.Action(a); !ok {
					continue
				}
				mc, err := e.actionChange(in, a, p.Region)
				if err != nil {
					return nil, err
				}
				if mc = onlyAuthorities(mc, d.authorities); len(mc.InForce)+len(mc.OutOfForce) > 0 {
					changes = append(changes, mc)
				}
			}
			for _, mc := range changes {
				for _, m := range slices.Concat(mc.InForce, mc.OutOfForce) {
					if slices.Contains(d.authorities, m.Authority) && !slices.Contains(auths, m.Authority) {
						auths = append(auths, m.Authority)
					}
				}
			}
			slices.Sort(auths)
			if len(auths) == 0 {
				rs = slices.DeleteFunc(rs, func(r string) bool { return r == SubscribedAuthority })
			}
		}
		if len(rs) == 0 {
			continue // a department none of whose measures changed
		}
		if p.Role == RolePartner && !e.disclosed(before, after) && !namesEntry(changes, after.ID) {
			// The entry's list is kept by the department that recorded
			// it (policy.List.KeptByDepartment, 篇十三 第七条(二)): a
			// partner is told of it only as the basis of a measure that
			// came into or went out of force, as a check shows it only as
			// a measure's basis (policy.Finding.Disclosed).
			continue
		}
		slices.Sort(rs)
		if changes == nil {
			changes = []MeasureChange{}
		}
		id, err := newID("evt_")
		if err != nil {
			return nil, err
		}
		ev := Event{
			ID: id, Kind: kind, Subject: SubjectView{ID: subject.Value, Kind: subject.Kind},
			EntryID: after.ID, EntryVersion: after.Version, List: after.List, EntryStatus: string(after.StatusAt(atAfter)),
			OccurredAt: c.RecordedAt.UTC(), Subscription: rs, Authorities: auths, Changes: changes,
		}
		body, err := json.Marshal(struct {
			Event
			Cursor string `json:"cursor,omitempty"`
		}{Event: ev})
		if err != nil {
			return nil, err
		}
		out = append(out, StoredEvent{ID: id, Partner: p.ClientID, Kind: kind, CreatedAt: now, Body: body})
	}
	return out, nil
}

// disclosed reports whether the entry, before and after the change, is on
// lists whose entries partners may be told of.
func (e *Events) disclosed(before *policy.Entry, after policy.Entry) bool {
	return e.catalog.ListDisclosed(after.List) && (before == nil || e.catalog.ListDisclosed(before.List))
}

// namesEntry reports whether a measure of changes, newly in or out of
// force, rests on entry id.
func namesEntry(changes []MeasureChange, id string) bool {
	for _, mc := range changes {
		for _, m := range slices.Concat(mc.InForce, mc.OutOfForce) {
			if m.EntryID == id {
				return true
			}
		}
	}
	return false
}

// changeInputs are what the decisions about one subject before and after a
// change read: the entry before and after it with the subject's other
// entries as they are now, and the decisions made so far, by action and
// region, which partners and departments share.
type changeInputs struct {
	subject           policy.SubjectID
	withBefore        []policy.Entry
	withAfter         []policy.Entry
	atBefore, atAfter time.Time
	decided           map[[2]string]MeasureChange
}

func newChangeInputs(subject policy.SubjectID, current []policy.Entry, before *policy.Entry, after policy.Entry, atBefore, atAfter time.Time) *changeInputs {
	others := make([]policy.Entry, 0, len(current))
	for _, x := range current {
		if x.ID != after.ID {
			others = append(others, x)
		}
	}
	withBefore := others
	if before != nil {
		withBefore = append(slices.Clip(others), *before)
	}
	return &changeInputs{subject: subject, withBefore: withBefore, withAfter: append(slices.Clip(others), after),
		atBefore: atBefore, atAfter: atAfter, decided: map[[2]string]MeasureChange{}}
}

// actionChange decides action for a caller in region with the entry
// before and after the change, as a check by that caller would, and keeps
// the measures whose being in force differs.
func (e *Events) actionChange(in *changeInputs, action, region string) (MeasureChange, error) {
	k := [2]string{action, region}
	if mc, ok := in.decided[k]; ok {
		return mc, nil
	}
	q := policy.Query{Subject: in.subject, Action: action, At: in.atBefore, Context: policy.CheckContext{Region: region}, ViolationsUnknown: true}
	db, err := policy.Decide(e.catalog, q, in.withBefore)
	if err != nil {
		return MeasureChange{}, err
	}
	q.At = in.atAfter
	da, err := policy.Decide(e.catalog, q, in.withAfter)
	if err != nil {
		return MeasureChange{}, err
	}
	mc := MeasureChange{Action: action, OutcomeBefore: db.Outcome, Outcome: da.Outcome,
		InForce: inForceDiff(da, db), OutOfForce: inForceDiff(db, da)}
	in.decided[k] = mc
	return mc, nil
}

// onlyAuthorities keeps the measures of mc whose authority is one of
// authorities.
func onlyAuthorities(mc MeasureChange, authorities []string) MeasureChange {
	keep := func(ms []MeasureView) []MeasureView {
		out := []MeasureView{}
		for _, m := range ms {
			if slices.Contains(authorities, m.Authority) {
				out = append(out, m)
			}
		}
		return out
	}
	mc.InForce, mc.OutOfForce = keep(mc.InForce), keep(mc.OutOfForce)
	return mc
}

// inForceDiff lists the measures applied in a and not in b.
func inForceDiff(a, b policy.Decision) []MeasureView {
	inB := map[string]bool{}
	for _, m := range b.Measures {
		if m.Status == policy.MeasureApplied {
			inB[m.Measure.ID] = true
		}
	}
	out := []MeasureView{}
	seen := map[string]bool{}
	for _, m := range a.Measures {
		if m.Status == policy.MeasureApplied && !inB[m.Measure.ID] && !seen[m.Measure.ID] {
			seen[m.Measure.ID] = true
			out = append(out, measureView(m))
		}
	}
	return out
}

// classify names a change from the entry before (nil: new) and after it.
func classify(before *policy.Entry, after policy.Entry, now time.Time) EventKind {
	sa := after.StatusAt(now)
	if before == nil {
		if after.Derivation != nil && after.Derivation.Points > 0 {
			return EventPointsThreshold
		}
		return EventListed
	}
	sb := before.StatusAt(now)
	switch {
	case sa == policy.StatusRevoked && sb != policy.StatusRevoked:
		return EventRevoked
	case sa == policy.StatusUnderObjection && sb != policy.StatusUnderObjection:
		return EventSuspended
	case sb == policy.StatusUnderObjection && sa != policy.StatusUnderObjection:
		return EventRestored
	case sa == policy.StatusRepaired && sb != policy.StatusRepaired:
		return EventRepaired
	case sa == policy.StatusExpired && sb != policy.StatusExpired:
		return EventExited
	}
	return EventCorrected
}

// FeedPage is a page of the pull feed.
type FeedPage struct {
	Events []json.RawMessage
	// Next is the cursor to ask after next: the last event's read (served
	// or, out of the caller's scope, passed over), or the one asked after
	// when there was none.
	Next string
}

// Feed returns the caller's events after the cursor, waiting up to wait
// for the first one when there is none yet (long-poll). Events the
// caller's scope, as it is now, no longer covers (eventInScope: a kind of
// subject or every action it told about taken from the partner since it
// was made) are passed over, not served.
func (e *Events) Feed(ctx context.Context, caller Caller, after string, limit int, wait time.Duration) (FeedPage, error) {
	cur, err := ParseCursor(after)
	if err != nil {
		return FeedPage{}, err
	}
	if limit <= 0 || limit > MaxEventPage {
		limit = MaxEventPage
	}
	wait = min(max(wait, 0), MaxEventWait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(max(e.interval, 100*time.Millisecond))
	defer poll.Stop()
	for {
		e.mu.Lock()
		woken := e.published
		e.mu.Unlock()
		evs, err := e.store.Events(ctx, caller.ClientID, cur, limit)
		if err != nil {
			return FeedPage{}, err
		}
		page := FeedPage{Events: make([]json.RawMessage, 0, len(evs))}
		for _, ev := range evs {
			cur = ev.Seq
			if eventInScope(caller, ev.Body) {
				page.Events = append(page.Events, WireEvent(ev))
			}
		}
		if len(page.Events) > 0 || wait == 0 {
			page.Next = strconv.FormatInt(cur, 10)
			return page, nil
		}
		if len(evs) > 0 {
			continue // all passed over: read on after them
		}
		select {
		case <-ctx.Done():
			return FeedPage{}, ctx.Err()
		case <-deadline.C:
			wait = 0
		case <-woken:
		case <-poll.C:
		}
	}
}

// PushStore is everything push keeps: the outbox and events, watchlists,
// departments' subscriptions by authority, webhooks and deliveries. Both
// stores provide it.
type PushStore interface {
	EventStore
	WatchlistStore
	AuthorityStore
	WebhookStore
}
