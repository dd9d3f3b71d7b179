package service

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"time"
)

// Webhook delivery: every event for a partner with a webhook gets a
// delivery row, written with the event. A worker claims due deliveries
// (a lease, so that one replica sends each; SKIP LOCKED on PostgreSQL),
// POSTs the event signed with credgate's webhook key, and records the
// attempt: delivered on a 2xx, retried with exponential backoff otherwise,
// dead after the last attempt, when an administrator can replay it. A
// delivery whose event the partner's scope no longer covers (its scope
// narrowed since the event was made) is skipped, never sent.
// Deliveries are at least once: a receiver deduplicates by the event id
// (webhook-id header), which is the same at every attempt.
//
// The signature follows Standard Webhooks' asymmetric scheme: the
// webhook-signature header is "v1a," and the base64 Ed25519 signature of
// "<webhook-id>.<webhook-timestamp>.<body>", verifiable with the public key
// published at /.well-known/credgate-webhook-keys.json (client.VerifyWebhook).

// Errors of webhooks.
var (
	// ErrInvalidWebhook: a URL that is not an absolute http(s) URL.
	ErrInvalidWebhook = errors.New("invalid webhook")
	// ErrWebhooksUnavailable: the server is not configured for webhooks.
	ErrWebhooksUnavailable = errors.New("webhooks are not available")
	// ErrDeliveryLeaseLost: an attempt's outcome was not recorded, since
	// the delivery is no longer leased by the claim that made it (claimed
	// again after its lease ran out, or removed with its webhook).
	ErrDeliveryLeaseLost = errors.New("delivery lease lost")
)

// Delivery states. A skipped delivery was not sent, and never will be:
// its event was out of the partner's scope when it fell due (the feed
// passes it over too). It is not the receiver's failure, so not dead.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"
	DeliverySkipped   = "skipped"
)

// Webhook headers (Standard Webhooks).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// maxWebhookURL bounds a webhook URL.
const maxWebhookURL = 2048

// Webhook is a partner's webhook.
type Webhook struct {
	Partner   string    `json:"partner"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Delivery is one event's delivery to a webhook.
type Delivery struct {
	Event      StoredEvent
	URL        string
	State      string
	Attempts   int
	NextAt     time.Time
	LastStatus int
	LastError  string
	UpdatedAt  time.Time
	// LeasedUntil is, on a claimed delivery, the end of the claim's lease:
	// it also tells this claim from a later one (DeliveryAttempt.Lease).
	LeasedUntil time.Time
}

// DeliveryAttempt is one entry of the delivery log.
type DeliveryAttempt struct {
	EventSeq int64
	Attempt  int
	At       time.Time
	Status   int
	Error    string
	Duration time.Duration
	// Lease, when set, is the LeasedUntil of the claim the attempt was
	// made under: the attempt is recorded only while that claim still
	// holds the delivery, else RecordAttempt fails with
	// ErrDeliveryLeaseLost, so that a replica whose lease ran out does not
	// record over the one that claimed the delivery since.
	Lease time.Time
}

// DeliveryShare shares what one claim leases among partners, so that a
// partner whose receiver is slow cannot take every worker.
type DeliveryShare struct {
	// PerPartner bounds a partner's deliveries in flight: those in Busy
	// and those the claim leases (0: no bound).
	PerPartner int
	// Busy is how many of each partner's deliveries the claimer has in
	// flight.
	Busy map[string]int
}

// DeliveryFilter selects deliveries, by event seq.
type DeliveryFilter struct {
	Partner string // "" for all
	State   string // "" for all
	After   int64
	Limit   int
}

// WebhookStore keeps webhooks and deliveries.
type WebhookStore interface {
	SetWebhook(ctx context.Context, w Webhook) error
	// Webhook returns ErrNotFound when the partner has none.
	Webhook(ctx context.Context, partner string) (Webhook, error)
	// DeleteWebhook removes the webhook and its pending deliveries.
	DeleteWebhook(ctx context.Context, partner string) error
	// ClaimDeliveries leases up to limit pending deliveries due at now
	// (not leased, or their lease run out) until now+lease, earliest due
	// first, with their events and the partner's current URL; with a
	// share, no more of one partner's than share.PerPartner allows.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int, share ...DeliveryShare) ([]Delivery, error)
	// RecordAttempt logs the attempt and sets the delivery's state, next
	// due time and attempts, releasing its lease; with a.Lease set, only
	// if the delivery is still leased by that claim (else
	// ErrDeliveryLeaseLost, and nothing is recorded).
	RecordAttempt(ctx context.Context, a DeliveryAttempt, state string, next time.Time) error
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// ReplayDeliveries makes the partner's dead deliveries (those of the
	// event ids given, or all when none) pending again, due now, with
	// their attempts reset; it returns the event ids replayed.
	ReplayDeliveries(ctx context.Context, partner string, eventIDs []string, now time.Time) ([]string, error)
}

// WebhookSigner signs webhook requests with an Ed25519 key.
type WebhookSigner struct {
	key ed25519.PrivateKey
	kid string
}

// DeriveWebhookKey derives the webhook signing key from the token key's
// seed (HKDF-SHA256), so that replicas sharing the token key sign webhooks
// alike without another secret to distribute; a webhook key cannot be
// used to mint tokens, nor the other way round.
func DeriveWebhookKey(tokenKey ed25519.PrivateKey) (ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, tokenKey.Seed(), nil, "credgate webhook signing key v1", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// NewWebhookSigner returns a signer with key; its key id is the RFC 7638
// thumbprint of the public key.
func NewWebhookSigner(key ed25519.PrivateKey) *WebhookSigner {
	pub := key.Public().(ed25519.PublicKey)
	th := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return &WebhookSigner{key: key, kid: base64.RawURLEncoding.EncodeToString(th[:])}
}

// KeyID is the signing key's id.
func (s *WebhookSigner) KeyID() string { return s.kid }

// JWKS is the public key set receivers verify with.
func (s *WebhookSigner) JWKS() []byte {
	pub := s.key.Public().(ed25519.PublicKey)
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": s.kid,
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	return b
}

// Sign returns the webhook-signature header value for the message.
func (s *WebhookSigner) Sign(id string, ts int64, body []byte) string {
	msg := make([]byte, 0, len(id)+len(body)+24)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = strconv.AppendInt(msg, ts, 10)
	msg = append(msg, '.')
	msg = append(msg, body...)
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, msg))
}

// ValidateWebhookURL checks a webhook URL.
func ValidateWebhookURL(raw string) error {
	if len(raw) > maxWebhookURL {
		return fmt.Errorf("%w: url longer than %d bytes", ErrInvalidWebhook, maxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidWebhook, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: an absolute http(s) URL without credentials or fragment", ErrInvalidWebhook)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: port %s is not from 1 to 65535", ErrInvalidWebhook, p)
		}
	}
	return nil
}

// WebhookFailureNotAllowed is a WebhookSender's failure when its address
// policy (events.webhook_allow) refused to connect to the webhook's host
// (adapters/webhook's FailureNotAllowed).
const WebhookFailureNotAllowed = "address not allowed"

// WebhookURLChecker is a WebhookSender that can tell, when a webhook is
// set, that it would refuse to send to the URL: its host is an address
// webhooks may not reach (loopback, private, link-local …), or a name
// that resolves to one. SetWebhook refuses such a URL; the sender checks
// again at each connection, where a name may resolve otherwise.
type WebhookURLChecker interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// Deliverer sends webhooks and administers them.
type Deliverer struct {
	store WebhookStore
	// partners tells, before each attempt, whether the event's partner is
	// still active, and its scope (nil: not checked; see
	// WithDeliveryPartners).
	partners PartnerReader
	signer   *WebhookSigner
	audit    *Audit
	sender   WebhookSender
	// timeout bounds one attempt (events.webhook_timeout).
	timeout time.Duration
	logger  *slog.Logger
	now     func() time.Time

	interval    time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
	maxAttempts int
	// lease is how long a claim holds a delivery: one attempt's worst
	// case, timeout plus deliveryLeaseMargin. Deliveries are claimed only
	// for workers free to start them at once, so no claimed delivery
	// waits for another's attempt.
	lease time.Duration
	// parallel is the attempts in flight at once; perPartner of them at
	// most for one partner, so that a partner whose receiver is slow
	// holds no more than half the workers.
	parallel   int
	perPartner int
	// kick asks for a pass now.
	kick chan struct{}
}

// deliveryLeaseMargin is what a delivery's lease adds to the attempt's
// timeout: the read of the partner before the request, and the evidence
// record (its commit is bounded at 10 s) and the store's write after it.
const deliveryLeaseMargin = 30 * time.Second

// DelivererOption configures a Deliverer.
type DelivererOption func(*Deliverer)

// WithDeliveryBackoff sets the first and the longest wait between
// attempts (webhook.min_backoff, webhook.max_backoff).
func WithDeliveryBackoff(first, longest time.Duration) DelivererOption {
	return func(d *Deliverer) {
		if first > 0 {
			d.minBackoff = first
		}
		if longest >= d.minBackoff {
			d.maxBackoff = longest
		}
	}
}

// WithDeliveryAttempts sets after how many failed attempts a delivery is
// dead (webhook.max_attempts).
func WithDeliveryAttempts(n int) DelivererOption {
	return func(d *Deliverer) {
		if n > 0 {
			d.maxAttempts = n
		}
	}
}

// WithDeliveryTimeout sets the timeout of one attempt (webhook.timeout).
func WithDeliveryTimeout(t time.Duration) DelivererOption {
	return func(d *Deliverer) {
		if t > 0 {
			d.timeout = t
		}
	}
}

// WithDeliveryInterval sets how often due deliveries are looked for.
func WithDeliveryInterval(t time.Duration) DelivererOption {
	return func(d *Deliverer) {
		if t > 0 {
			d.interval = t
		}
	}
}

// WithDeliveryAudit records state changes in the evidence log.
func WithDeliveryAudit(a *Audit) DelivererOption { return func(d *Deliverer) { d.audit = a } }

// WithDeliveryPartners sets where the deliverer reads a partner's status
// and scope before each attempt: a revoked partner's deliveries are
// dead-lettered, never sent, and those of events its scope no longer
// covers are skipped. NewDeliverer reads it from the WebhookStore when that is
// also a PartnerReader (every store is), or a BoundedPushStore over one.
func WithDeliveryPartners(r PartnerReader) DelivererOption {
	return func(d *Deliverer) {
		if r != nil {
			d.partners = r
		}
	}
}

// WithDeliveryLogger sets the logger (it never receives event bodies).
func WithDeliveryLogger(l *slog.Logger) DelivererOption { return func(d *Deliverer) { d.logger = l } }

// WebhookSender sends one signed webhook request (adapters/webhook over
// HTTP). status is the receiver's status (0: none); failure is "" on a
// 2xx answer, else why not, never naming the URL.
type WebhookSender interface {
	Post(ctx context.Context, url string, header map[string]string, body []byte) (status int, failure string)
}

// NewDeliverer returns the webhook deliverer, sending through sender.
func NewDeliverer(store WebhookStore, signer *WebhookSigner, sender WebhookSender, opts ...DelivererOption) *Deliverer {
	d := &Deliverer{
		store: store, signer: signer, sender: sender, timeout: DefaultWebhookTimeout, logger: slog.Default(), now: time.Now,
		interval: DefaultEventsInterval, minBackoff: DefaultWebhookMinBackoff, maxBackoff: DefaultWebhookMaxBackoff,
		maxAttempts: DefaultWebhookMaxAttempts,
		parallel:    8, kick: make(chan struct{}, 1),
	}
	switch st := store.(type) {
	case PartnerReader:
		d.partners = st
	case *BoundedPushStore:
		if r, ok := st.PushStore.(PartnerReader); ok {
			d.partners = boundedPartners{r, st.bound}
		}
	}
	for _, o := range opts {
		o(d)
	}
	d.lease = d.timeout + deliveryLeaseMargin
	d.perPartner = max(1, d.parallel/2)
	return d
}

// boundedPartners reads partners with a BoundedPushStore's deadline.
type boundedPartners struct {
	r     PartnerReader
	bound *BoundedStore
}

func (b boundedPartners) PartnerByClientID(ctx context.Context, clientID string) (Partner, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) (Partner, error) { return b.r.PartnerByClientID(ctx, clientID) })
}

// Signer returns the signer (for the published key).
func (d *Deliverer) Signer() *WebhookSigner { return d.signer }

// Kick asks for a delivery pass now.
func (d *Deliverer) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: it claims due deliveries whenever a worker
// is free (at each tick, kick and finished attempt), and waits for the
// attempts in flight before it returns.
func (d *Deliverer) Run(ctx context.Context) {
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	w := d.newWorkers()
	defer w.drain()
	for {
		if ctx.Err() != nil {
			return
		}
		if _, err := w.fill(ctx, d.now().UTC()); err != nil && ctx.Err() == nil {
			d.logger.Warn("webhook delivery", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case f := <-w.done:
			if err := w.finish(f); err != nil && ctx.Err() == nil {
				d.logger.Warn("webhook delivery", "error", err)
			}
		case <-tick.C:
		case <-d.kick:
		}
	}
}

// DeliverDue attempts the deliveries due now, claiming them as workers
// free, and returns how many it attempted once they are done. Those that
// fall due while it runs (a retry among them) are left to the next pass,
// so that a pass ends.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	w := d.newWorkers()
	start := d.now().UTC()
	var (
		n    int
		errs []error
	)
	for {
		if ctx.Err() == nil && errs == nil {
			k, err := w.fill(ctx, start)
			n += k
			if err != nil {
				errs = append(errs, err)
			}
		}
		if w.inflight == 0 {
			return n, errors.Join(errs...)
		}
		if err := w.finish(<-w.done); err != nil {
			errs = append(errs, err)
		}
	}
}

// workers are a Deliverer's attempts in flight, used by one goroutine
// (Run's or DeliverDue's).
type workers struct {
	d        *Deliverer
	inflight int
	busy     map[string]int // attempts in flight by partner
	done     chan finished
}

// finished is an attempt's end.
type finished struct {
	partner string
	err     error
}

func (d *Deliverer) newWorkers() *workers {
	return &workers{d: d, busy: map[string]int{}, done: make(chan finished, d.parallel)}
}

// fill claims due deliveries for the free workers, no more than the
// partner's share (perPartner in flight), and starts their attempts.
// dueBy is how late a delivery may fall due to be claimed; the lease runs
// from now whatever it is.
func (w *workers) fill(ctx context.Context, dueBy time.Time) (int, error) {
	d := w.d
	free := d.parallel - w.inflight
	if free <= 0 {
		return 0, nil
	}
	lease := d.lease + max(0, d.now().UTC().Sub(dueBy))
	ds, err := d.store.ClaimDeliveries(ctx, dueBy, lease, free, DeliveryShare{PerPartner: d.perPartner, Busy: w.busy})
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	stopped, scopes, err := d.stoppedPartners(ctx, ds)
	if err != nil {
		// Nothing sent: the leases run out and the deliveries are claimed
		// again, when the partners can be read.
		return 0, err
	}
	for _, dl := range ds {
		partner := dl.Event.Partner
		ns := notSent{why: stopped[partner], state: DeliveryDead}
		if c, ok := scopes[partner]; ok && ns.why == "" && !eventInScope(c, dl.Event.Body) {
			ns = notSent{why: SkippedOutOfScope, state: DeliverySkipped}
		}
		w.busy[partner]++
		w.inflight++
		go func() { w.done <- finished{partner, d.attempt(ctx, dl, ns)} }()
	}
	return len(ds), nil
}

// finish counts an attempt's end and returns its error.
func (w *workers) finish(f finished) error {
	w.inflight--
	if w.busy[f.partner]--; w.busy[f.partner] <= 0 {
		delete(w.busy, f.partner)
	}
	return f.err
}

// drain waits for the attempts in flight (at shutdown: their context has
// ended, and what they could not record is attempted again once their
// leases run out).
func (w *workers) drain() {
	for w.inflight > 0 {
		_ = w.finish(<-w.done)
	}
}

// stoppedPartners reads, once per claim, each partner of ds and returns
// why those that must receive nothing more are stopped, and the scope of
// the others as it is now. The fan-out gives a revoked partner no new
// events, nor a partner events out of its scope, but deliveries written
// before its revocation or the narrowing of its scope (a receiver that
// was down) are still pending.
func (d *Deliverer) stoppedPartners(ctx context.Context, ds []Delivery) (map[string]string, map[string]Caller, error) {
	if d.partners == nil {
		return nil, nil, nil
	}
	stopped := map[string]string{}
	scopes := map[string]Caller{}
	seen := map[string]bool{}
	for _, dl := range ds {
		id := dl.Event.Partner
		if seen[id] {
			continue
		}
		seen[id] = true
		p, err := d.partners.PartnerByClientID(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			stopped[id] = StoppedPartnerUnknown
		case err != nil:
			return nil, nil, fmt.Errorf("read partner of deliveries: %w", err)
		case p.Status != PartnerActive:
			stopped[id] = StoppedPartnerRevoked
		default:
			scopes[id] = CallerOf(p)
		}
	}
	return stopped, scopes, nil
}

// Why a delivery was dead-lettered without being sent: its delivery log's
// error, and the reason of its webhook_dead_lettered act.
const (
	StoppedPartnerRevoked = "not sent: the partner is revoked"
	StoppedPartnerUnknown = "not sent: the partner no longer exists"
)

// SkippedOutOfScope is why a delivery was skipped: its delivery log's
// error, and the reason of its webhook_skipped act.
const SkippedOutOfScope = "not sent: out of the partner's scope"

// notSent is why a delivery is not to be sent ("": it is) and the state
// it is left in.
type notSent struct {
	why   string
	state string
}

// attempt POSTs one event and records the outcome; a delivery not to be
// sent (its partner revoked, its event out of the partner's scope) is
// left in ns.state at once, with ns.why as its error, and nothing is
// sent.
func (d *Deliverer) attempt(ctx context.Context, dl Delivery, ns notSent) error {
	body := WireEvent(dl.Event)
	start := d.now()
	status, failure := 0, ns.why
	if ns.why == "" {
		status, failure = d.post(ctx, dl, body, start)
	}
	a := DeliveryAttempt{EventSeq: dl.Event.Seq, Attempt: dl.Attempts + 1, At: start.UTC(), Status: status, Error: failure,
		Duration: d.now().Sub(start), Lease: dl.LeasedUntil}
	state, next := DeliveryPending, start.Add(d.backoff(a.Attempt))
	switch {
	case ns.why == "" && failure == WebhookFailureNotAllowed:
		// Refused by this server's address policy (events.webhook_allow),
		// not by the receiver: the operator's configuration, which may
		// change. It does not count toward dead-lettering; the delivery
		// stays pending, retried at the longest backoff.
		a.Attempt = dl.Attempts
		next = start.Add(d.maxBackoff)
	case ns.why != "":
		state, next = ns.state, start
	case failure == "":
		state, next = DeliveryDelivered, start
	case a.Attempt >= d.maxAttempts:
		state, next = DeliveryDead, start
	}
	if state != DeliveryPending && d.audit != nil {
		act := ActWebhookDelivered
		switch state {
		case DeliveryDead:
			act = ActWebhookDeadLetter
		case DeliverySkipped:
			act = ActWebhookSkipped
		}
		h := sha256.Sum256(body)
		details := map[string]any{"event_id": dl.Event.ID, "partner": dl.Event.Partner, "attempts": a.Attempt,
			"status": status, "body_sha256": hex.EncodeToString(h[:])}
		if ns.why != "" {
			details["reason"] = ns.why
		}
		if _, err := d.audit.Record(WithActor(ctx, Actor{ClientID: SystemActorID, Role: RoleSystem}), act, dl.Event.ID, details); err != nil {
			// Not recorded, not changed: the lease runs out and the
			// delivery is attempted again (receivers deduplicate).
			return fmt.Errorf("record delivery of %s: %w", dl.Event.ID, err)
		}
	}
	if err := d.store.RecordAttempt(ctx, a, state, next.UTC()); errors.Is(err, ErrDeliveryLeaseLost) {
		// Another replica claimed it after this claim's lease ran out
		// (or the webhook was removed): its outcome is the one recorded.
		d.logger.Warn("webhook attempt not recorded: the delivery's lease was lost", "event_id", dl.Event.ID,
			"partner", dl.Event.Partner, "attempt", a.Attempt, "status", status)
		return nil
	} else if err != nil {
		return fmt.Errorf("record attempt of %s: %w", dl.Event.ID, err)
	}
	return nil
}

// post sends the request; failure is "" on a 2xx answer, else why not
// (without the URL, which may hold a token of the receiver's).
func (d *Deliverer) post(ctx context.Context, dl Delivery, body []byte, at time.Time) (int, string) {
	if dl.URL == "" {
		return 0, "no webhook"
	}
	ts := at.Unix()
	header := map[string]string{
		"Content-Type":         "application/json",
		"User-Agent":           "credgate-webhook/1",
		HeaderWebhookID:        dl.Event.ID,
		HeaderWebhookTimestamp: strconv.FormatInt(ts, 10),
		HeaderWebhookSignature: d.signer.Sign(dl.Event.ID, ts, body),
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.sender.Post(ctx, dl.URL, header, body)
}

// backoff is the wait after the n-th failed attempt: exponential from
// minBackoff, capped at maxBackoff, with ±20% jitter so that receivers
// coming back are not hit by every delivery at once.
func (d *Deliverer) backoff(n int) time.Duration {
	w := d.minBackoff
	for i := 1; i < n && w < d.maxBackoff; i++ {
		w *= 2
	}
	w = min(w, d.maxBackoff)
	return time.Duration(float64(w) * (0.8 + 0.4*rand.Float64()))
}

// SetWebhook sets the caller's webhook, recorded in the evidence log.
func (d *Deliverer) SetWebhook(ctx context.Context, caller Caller, rawURL string) (Webhook, error) {
	if err := ValidateWebhookURL(rawURL); err != nil {
		return Webhook{}, err
	}
	if c, ok := d.sender.(WebhookURLChecker); ok {
		if err := c.CheckURL(ctx, rawURL); err != nil {
			return Webhook{}, fmt.Errorf("%w: its host is not an address webhooks may reach (loopback, private, link-local, "+
				"shared or another special-purpose address): %w", ErrInvalidWebhook, err)
		}
	}
	now := d.now().UTC().Truncate(time.Microsecond)
	w := Webhook{Partner: caller.ClientID, URL: rawURL, CreatedAt: now, UpdatedAt: now}
	if old, err := d.store.Webhook(ctx, caller.ClientID); err == nil {
		w.CreatedAt = old.CreatedAt
	}
	u, _ := url.Parse(rawURL)
	// The host only: a path or query may carry the receiver's secret.
	err := d.audit.do(ctx, ActWebhookSet, caller.ClientID, map[string]any{"host": u.Host}, func() error {
		return d.store.SetWebhook(ctx, w)
	})
	if err != nil {
		return Webhook{}, err
	}
	return w, nil
}

// WarnRefusedWebhooks checks the stored webhooks of partners against the
// sender's address policy, as serve starts: a webhook set before the
// policy (or before events.webhook_allow was narrowed) would otherwise
// stop silently. It logs one WARN per refused webhook, naming the partner
// and the URL's host only (a path or query may carry the receiver's
// secret), and returns how many were refused.
func (d *Deliverer) WarnRefusedWebhooks(ctx context.Context, partners []string) (int, error) {
	c, ok := d.sender.(WebhookURLChecker)
	if !ok {
		return 0, nil
	}
	refused := 0
	for _, p := range partners {
		w, err := d.store.Webhook(ctx, p)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return refused, fmt.Errorf("webhook of %s: %w", p, err)
		}
		if err := c.CheckURL(ctx, w.URL); err == nil {
			continue
		}
		refused++
		host := ""
		if u, err := url.Parse(w.URL); err == nil {
			host = u.Hostname()
		}
		d.logger.Warn("webhook refused by the address policy: its deliveries stay pending until its host is allowed in events.webhook_allow",
			"partner", p, "host", host, "setting", "events.webhook_allow")
	}
	return refused, nil
}

// Webhook returns the caller's webhook.
func (d *Deliverer) Webhook(ctx context.Context, caller Caller) (Webhook, error) {
	return d.store.Webhook(ctx, caller.ClientID)
}

// DeleteWebhook removes the caller's webhook; events stay in the feed.
func (d *Deliverer) DeleteWebhook(ctx context.Context, caller Caller) error {
	if _, err := d.store.Webhook(ctx, caller.ClientID); err != nil {
		return err
	}
	return d.audit.do(ctx, ActWebhookRemoved, caller.ClientID, map[string]any{}, func() error {
		return d.store.DeleteWebhook(ctx, caller.ClientID)
	})
}

// Deliveries lists deliveries; a partner sees only its own. An
// administrator's or auditor's page of another partner's deliveries, or
// of all, is recorded first as deliveries_listed (reads.go).
func (d *Deliverer) Deliveries(ctx context.Context, caller Caller, f DeliveryFilter) ([]Delivery, error) {
	if caller.Role == RolePartner {
		f.Partner = caller.ClientID
	}
	switch f.State {
	case "", DeliveryPending, DeliveryDelivered, DeliveryDead, DeliverySkipped:
	default:
		return nil, fmt.Errorf("%w: %q (pending, delivered, dead or skipped)", ErrInvalidState, f.State)
	}
	if f.Limit <= 0 || f.Limit > MaxPage {
		f.Limit = MaxPage
	}
	ds, err := d.store.Deliveries(ctx, f)
	if err != nil || !staffRead(caller, f.Partner) {
		return ds, err
	}
	if err := recordRead(ctx, d.audit, &caller, ActDeliveriesListed, "deliveries", deliveriesListedDetails(f, ds)); err != nil {
		return nil, err
	}
	return ds, nil
}

// Replay makes a partner's dead deliveries pending again (all of them, or
// those of eventIDs), recorded in the evidence log first.
func (d *Deliverer) Replay(ctx context.Context, partner string, eventIDs []string) ([]string, error) {
	if partner == "" {
		return nil, fmt.Errorf("%w: partner is required", ErrInvalidWebhook)
	}
	if len(eventIDs) > MaxPage {
		return nil, fmt.Errorf("%w: at most %d event ids", ErrBatchTooLarge, MaxPage)
	}
	var ids []string
	err := d.audit.do(ctx, ActWebhookReplayed, partner, map[string]any{"event_ids": eventIDs}, func() error {
		var err error
		ids, err = d.store.ReplayDeliveries(ctx, partner, eventIDs, d.now().UTC().Truncate(time.Microsecond))
		return err
	})
	if err != nil {
		return nil, err
	}
	d.Kick()
	return ids, nil
}
