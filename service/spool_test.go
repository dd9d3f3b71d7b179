package service_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// failingSink is the real SQLite store whose evidence commits fail while
// down is set, as when the log's database is away.
type failingSink struct {
	*sqlite.Store
	down atomic.Bool
	// hold, while set, makes commits wait until it is closed or their
	// deadline passes, as on a frozen database.
	hold atomic.Pointer[chan struct{}]
}

var errDown = errors.New("connection refused")

func (f *failingSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	if f.down.Load() {
		return 0, errDown
	}
	if h := f.hold.Load(); h != nil {
		select {
		case <-*h:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return f.Store.AppendBatch(ctx, recs)
}

type spoolWorld struct {
	t       *testing.T
	store   *sqlite.Store
	sink    *failingSink
	signer  *evidence.Signer
	dir     string
	spool   *evidence.Spool
	log     *service.SpoolingLog
	app     *evidence.Appender
	checker *service.Checker
}

func newSpoolWorld(t *testing.T, opts ...service.SpoolingLogOption) *spoolWorld {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	w := &spoolWorld{t: t, store: st, sink: &failingSink{Store: st}, signer: testenv.Signer(t, "credgate.test/evidence"), dir: t.TempDir()}
	w.app = evidence.NewAppender(w.sink)
	t.Cleanup(func() {
		w.app.Close()
		if w.spool != nil {
			w.spool.Close()
		}
		st.Close()
	})
	w.restart(opts...)
	return w
}

// restart reopens the spool and the spooling log, as a replica restarted
// after a crash would.
func (w *spoolWorld) restart(opts ...service.SpoolingLogOption) {
	w.t.Helper()
	if w.spool != nil {
		w.spool.Close()
	}
	sp, err := evidence.OpenSpool(w.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	w.spool = sp
	w.log = service.NewSpoolingLog(w.app, sp, w.signer, w.store, append([]service.SpoolingLogOption{service.WithSpoolBound(time.Second)}, opts...)...)
	cat, err := policy.BundledCatalog()
	if err != nil {
		w.t.Fatal(err)
	}
	w.checker = service.NewChecker(cat, w.store, w.log, w.store)
}

func (w *spoolWorld) check(subject string) (service.CheckAnswer, error) {
	return w.checker.Check(w.t.Context(), service.Caller{ClientID: "admin", Role: service.RoleAdmin},
		service.CheckRequest{Subject: subject, Action: "government_procurement"})
}

// TestSpoolingLog: with the log up, answers carry log positions; with it
// down, a check is answered with a signed promise that verifies and an
// administrative act fails closed; when it is back the spooled record is
// integrated with the promised hash, and the full receipt proves it.
func TestSpoolingLog(t *testing.T) {
	w := newSpoolWorld(t)
	up, err := w.check(testenv.USCC(t, "91110000MA0000101"))
	if err != nil {
		t.Fatal(err)
	}
	if up.Receipt.State != "" || up.Receipt.Promise != nil {
		t.Fatalf("a committed check's receipt: %+v", up.Receipt)
	}

	w.sink.down.Store(true)
	spooled, err := w.check(testenv.USCC(t, "91110000MA0000102"))
	if err != nil {
		t.Fatalf("check with the log down: %v", err)
	}
	if spooled.Receipt.State != service.ReceiptSpooled || spooled.Receipt.Promise == nil {
		t.Fatalf("a spooled check's receipt: %+v", spooled.Receipt)
	}
	vs, err := evidence.Verifiers(w.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	v, err := evidence.VerifyPromise(*spooled.Receipt.Promise, vs)
	if err != nil {
		t.Fatalf("the promise: %v", err)
	}
	if v.Record.ID != spooled.CheckID || v.Replica != w.spool.Replica() || v.Position != 1 {
		t.Fatalf("promise of %+v", v)
	}
	b, err := spooled.JSON()
	if err != nil {
		t.Fatal(err)
	}
	// The promised body is the answer as sent, without its receipt.
	if body := v.Record.Body; !bytes.HasPrefix(b, body[:len(body)-1]) {
		t.Fatal("the promised record is not the answer as sent")
	}
	audit := service.NewAudit(w.log)
	if _, err := audit.Record(t.Context(), service.Act("test"), "x", nil); err == nil {
		t.Fatal("an administrative act was answered with the log down")
	}
	if st := w.log.SpoolStatus(); st.State != service.SpoolIntegrating || st.Pending != 1 {
		t.Fatalf("status while down: %+v", st)
	}
	if _, err := w.log.IntegrateOnce(t.Context()); !errors.Is(err, evidence.ErrUnavailable) {
		t.Fatalf("integration while down: %v", err)
	}
	if err := w.log.Ready(t.Context()); err != nil {
		t.Fatalf("a spool waiting for the log is not ready: %v", err)
	}

	w.sink.down.Store(false)
	if n, err := w.log.IntegrateOnce(t.Context()); err != nil || n != 1 {
		t.Fatalf("integration: %d, %v", n, err)
	}
	rec, err := w.store.Record(t.Context(), spooled.CheckID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Hash != v.Record.Hash {
		t.Fatal("the integrated record is not the promised one")
	}
	lg := evidence.NewLog(w.store, w.signer)
	if err := lg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := service.NewReceipts(w.store, lg).Receipt(t.Context(), service.Caller{ClientID: "admin", Role: service.RoleAdmin}, spooled.CheckID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.VerifyReceipt(r, vs); err != nil {
		t.Fatalf("the integrated record's receipt: %v", err)
	}
	if st := w.log.SpoolStatus(); st.State != service.SpoolEmpty || st.Pending != 0 || st.Appended != 1 || st.Integrated != 1 {
		t.Fatalf("status after integration: %+v", st)
	}
}

// TestSpoolAfterItsBound: with the log's database frozen, a check waits
// for the spool's bound (1 s here), not for a commit's (the appender's,
// 10 s), before its record is spooled and it is answered with a promise.
func TestSpoolAfterItsBound(t *testing.T) {
	w := newSpoolWorld(t)
	frozen := make(chan struct{})
	w.sink.hold.Store(&frozen)
	defer close(frozen) // the commit still waiting, before the appender closes
	start := time.Now()
	a, err := w.check(testenv.USCC(t, "91110000MA0000109"))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("check with the log frozen: %v", err)
	}
	if a.Receipt.State != service.ReceiptSpooled || a.Receipt.Promise == nil {
		t.Fatalf("a check past the spool's bound: %+v", a.Receipt)
	}
	// Far below the commit bound, whatever the machine's load.
	if took >= 8*time.Second {
		t.Fatalf("the check waited %s: the spool's bound of 1s was not kept", took)
	}
}

// TestSpoolIntegrationExactlyOnce: a crash between the log's commit and
// the spool's mark leaves the records in the log and in the spool; after a
// restart they are not appended again, and the log holds them once, in
// spool order.
func TestSpoolIntegrationExactlyOnce(t *testing.T) {
	crash := errors.New("crash after commit")
	w := newSpoolWorld(t, service.WithAfterIntegrationCommit(func() error { return crash }))
	w.sink.down.Store(true)
	var ids []string
	for _, s := range []string{testenv.USCC(t, "91110000MA0000111"), testenv.USCC(t, "91110000MA0000112"), testenv.USCC(t, "91110000MA0000113")} {
		a, err := w.check(s)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.CheckID)
	}
	w.sink.down.Store(false)
	if _, err := w.log.IntegrateOnce(t.Context()); !errors.Is(err, crash) {
		t.Fatalf("integration with a crash: %v", err)
	}
	if st := w.spool.Stats(); st.Pending != 3 {
		t.Fatalf("%d pending after the crash", st.Pending)
	}
	head, err := w.store.TreeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	w.restart()
	if st := w.spool.Stats(); st.Pending != 3 {
		t.Fatalf("%d pending after the restart", st.Pending)
	}
	if n, err := w.log.IntegrateOnce(t.Context()); err != nil || n != 3 {
		t.Fatalf("integration after restart: %d, %v", n, err)
	}
	again, err := w.store.TreeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again.Size != head.Size {
		t.Fatalf("the log grew from %d to %d records: spooled records were appended twice", head.Size, again.Size)
	}
	var last uint64
	for i, id := range ids {
		r, err := w.store.Record(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && r.Index <= last {
			t.Fatalf("record %d at %d after %d: not in spool order", i, r.Index, last)
		}
		last = r.Index
	}
	if st := w.spool.Stats(); st.Pending != 0 {
		t.Fatalf("%d still pending", st.Pending)
	}
}

// TestSpoolStuck: a record in the log under a spooled record's id with
// another hash cannot be integrated by waiting: the spool is stuck and the
// replica not ready.
func TestSpoolStuck(t *testing.T) {
	w := newSpoolWorld(t)
	w.sink.down.Store(true)
	a, err := w.check(testenv.USCC(t, "91110000MA0000121"))
	if err != nil {
		t.Fatal(err)
	}
	w.sink.down.Store(false)
	other := evidence.Record{ID: a.CheckID, Kind: evidence.KindCheck, Partner: "x", At: time.Now(), Body: []byte("{}")}
	if err := other.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.AppendBatch(t.Context(), []evidence.Record{other}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.log.IntegrateOnce(t.Context()); !errors.Is(err, service.ErrSpoolConflict) {
		t.Fatalf("integration over a conflicting record: %v", err)
	}
	if st := w.log.SpoolStatus(); st.State != service.SpoolStuck {
		t.Fatalf("status: %+v", st)
	}
	if err := w.log.Ready(t.Context()); !errors.Is(err, service.ErrSpoolStuck) {
		t.Fatalf("ready: %v", err)
	}
}

// TestSpoolFullFailsClosed: a check whose record can be neither committed
// nor spooled is not answered.
func TestSpoolFullFailsClosed(t *testing.T) {
	w := newSpoolWorld(t)
	w.spool.Close()
	sp, err := evidence.OpenSpool(w.dir, evidence.WithSpoolMaxBytes(100))
	if err != nil {
		t.Fatal(err)
	}
	w.spool = sp
	cat, _ := policy.BundledCatalog()
	w.log = service.NewSpoolingLog(w.app, sp, w.signer, w.store)
	w.checker = service.NewChecker(cat, w.store, w.log, w.store)
	w.sink.down.Store(true)
	if _, err := w.check(testenv.USCC(t, "91110000MA0000131")); !errors.Is(err, evidence.ErrUnavailable) || !errors.Is(err, evidence.ErrSpoolFull) {
		t.Fatalf("check with the log down and the spool full: %v", err)
	}
}

// awayPartners answers a partner, or ErrStoreUnavailable while away.
type awayPartners struct {
	service.PartnerStore
	away *atomic.Bool
}

func (s awayPartners) PartnerByClientID(_ context.Context, id string) (service.Partner, error) {
	if s.away.Load() {
		return service.Partner{}, service.ErrStoreUnavailable
	}
	return service.Partner{ClientID: id, Status: service.PartnerActive}, nil
}

// TestPartnerOutageGrace: while the store is away, an active partner's
// cached state is trusted past its TTL for the grace, and not after.
func TestPartnerOutageGrace(t *testing.T) {
	var away atomic.Bool
	now := time.Now()
	clock := func() time.Time { return now }
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, grace := range []time.Duration{0, time.Minute} {
		away.Store(false)
		ps := service.NewPartners(awayPartners{away: &away}, cat, service.WithPartnersClock(clock),
			service.WithPartnerCacheTTL(5*time.Second), service.WithPartnerOutageGrace(grace))
		if _, err := ps.Active(t.Context(), "p"+grace.String()); err != nil {
			t.Fatal(err)
		}
		away.Store(true)
		now = now.Add(10 * time.Second)
		_, err := ps.Active(t.Context(), "p"+grace.String())
		if grace == 0 && !errors.Is(err, service.ErrStoreUnavailable) {
			t.Fatalf("no grace, store away past the TTL: %v", err)
		}
		if grace > 0 && err != nil {
			t.Fatalf("within the grace: %v", err)
		}
		now = now.Add(grace)
		if _, err := ps.Active(t.Context(), "p"+grace.String()); !errors.Is(err, service.ErrStoreUnavailable) {
			t.Fatalf("past the grace (%s): %v", grace, err)
		}
	}
}
