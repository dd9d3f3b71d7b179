package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// sharedRedis is the machine's Redis (testenv.Redis) under a prefix of the
// test's own, whose keys are deleted at cleanup, and a client of the
// test's to look at it.
func sharedRedis(t *testing.T) (opts *redis.Options, prefix string, rdb *redis.Client) {
	t.Helper()
	opts, err := redis.ParseURL(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	prefix = fmt.Sprintf("credgate-test-seal-%d-%d", time.Now().UnixNano(), rand.Int64())
	rdb = redis.NewClient(opts)
	t.Cleanup(func() {
		ctx := context.Background()
		for k := range scanKeys(t, ctx, rdb, prefix) {
			rdb.Del(ctx, k)
		}
		rdb.Close()
	})
	return opts, prefix, rdb
}

// scanKeys returns the keys under prefix and their values (those of
// string keys).
func scanKeys(t *testing.T, ctx context.Context, rdb *redis.Client, prefix string) map[string]string {
	t.Helper()
	keys := map[string]string{}
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		v, err := rdb.Get(ctx, iter.Val()).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			v = "" // not a string key
		}
		keys[iter.Val()] = v
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan: %v", err)
	}
	return keys
}

// courtEntry lists the person id on the court's list of dishonest debtors.
func courtEntry(entryID, id, reason string) policy.Entry {
	e := blackEntry(entryID, id)
	e.Subject = policy.SubjectID{Kind: policy.KindPerson, Value: id}
	e.List, e.OriginatingDepartment, e.Reason, e.LegalBasis = "court_dishonest_debtor", "杭州市中级人民法院", reason, "《民事诉讼法》第二百六十二条"
	return e
}

// A listed person, a listed company and its legal representative, read
// through two replicas, invalidated and read again: nothing in Redis — key
// names, values, invalidation messages — holds their numbers, the entries'
// reason, department or list.
func TestRedisHoldsNoSubjectInClear(t *testing.T) {
	t.Parallel()
	opts, prefix, rdb := sharedRedis(t)
	ctx := t.Context()
	st := sqliteStore(t)
	person, responsible := "11010519491231002X", "440304198001010017"
	company := testenv.USCC(t, "91110000MA0000081")
	reason := "拒不履行生效判决确定的义务"
	ce := blackEntry("c1", company)
	ce.Reason = reason
	ce.EvidenceRefs = []string{"（2026）浙01执123号"}
	ce.ResponsiblePersons = []policy.ResponsiblePerson{{ID: responsible, Role: policy.RoleLegalRepresentative}}
	insert(t, st, courtEntry("p1", person, reason), ce)
	secrets := []string{person, responsible, company, reason, ce.EvidenceRefs[0], "杭州市中级人民法院", "应急管理部",
		"court_dishonest_debtor", "safety_production_blacklist"}

	sub := rdb.Subscribe(ctx, prefix+":invalidate")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	msgs := sub.Channel()

	a := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	b := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	waitFor(t, "B subscribed", 5*time.Second, func() bool { return b.redis.subscribed.Load() })
	subjects := []string{person, company, responsible}
	for _, s := range subjects {
		if l := lookup(t, a, s); len(l.Entries) != 1 {
			t.Fatalf("%s: %d entries", s, len(l.Entries))
		}
	}
	waitFor(t, "A's fills", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 3 })
	for _, s := range subjects {
		if l := lookup(t, b, s); len(l.Entries) != 1 {
			t.Fatalf("%s through B: %d entries", s, len(l.Entries))
		}
	}
	if s := b.Stats(); s.RedisHits != 3 || s.StoreLoads != 0 {
		t.Fatalf("B: %+v; want its three lookups answered from A's values in Redis", s)
	}
	a.Invalidate(subjects...)
	// A hears its own message too: past it, no drop races the reads below.
	waitFor(t, "A and B told", 5*time.Second, func() bool {
		return a.stats.invalidatedPubSub.Load() == 3 && b.stats.invalidatedPubSub.Load() == 3
	})
	for _, s := range subjects {
		lookup(t, a, s)
	}
	waitFor(t, "A's fills again", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 6 })

	keys := scanKeys(t, ctx, rdb, prefix)
	values := 0
	for k, v := range keys {
		if strings.HasSuffix(k, ":e") {
			values++
		}
		for _, s := range secrets {
			if strings.Contains(k, s) {
				t.Errorf("key name %q holds %q", k, s)
			}
			if strings.Contains(v, s) {
				t.Errorf("the value of %s holds %q", k, s)
			}
		}
	}
	if values != 3 {
		t.Fatalf("%d values under %s, want 3: %v", values, prefix, keys)
	}
	select {
	case m := <-msgs:
		for _, s := range secrets {
			if strings.Contains(m.Payload, s) {
				t.Errorf("the invalidation message holds %q", s)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no invalidation message seen")
	}
}

// The reviewer's forgery: a fresh value saying "no entries", in the old
// codec, put where the replica reads a court-listed person's set. The
// check must answer from the store (restrict), the forgery be counted and
// logged once at WARN, without the person's number.
func TestForgedValueIsAMiss(t *testing.T) {
	t.Parallel()
	opts, prefix, rdb := sharedRedis(t)
	ctx := t.Context()
	st := sqliteStore(t)
	person, other := "11010519491231002X", "440304198001010017"
	insert(t, st, courtEntry("p1", person, "拒不履行"), courtEntry("p2", other, "拒不履行"))
	logs := &testenv.SyncBuffer{}
	tier := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour),
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(func() { app.Close() })
	checker := service.NewChecker(cat, tier, app, st)

	for _, s := range []string{person, other} {
		forged := fmt.Sprintf(`{"v":1,"at":%d,"e":[]}`, time.Now().UnixNano())
		if err := rdb.Set(ctx, tier.redis.valueKey(s), forged, 10*time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		a, err := checker.Check(ctx, service.Caller{ClientID: "admin", Role: service.RoleAdmin},
			service.CheckRequest{Subject: s, Action: "air_travel"})
		if err != nil {
			t.Fatal(err)
		}
		if a.Outcome != policy.OutcomeRestrict {
			t.Fatalf("a court-listed person with a forged Redis value: %s, want restrict", a.Outcome)
		}
	}
	if s := tier.Stats(); s.RedisHits != 0 || s.StoreLoads != 2 {
		t.Fatalf("stats %+v, want both read from the store", s)
	}
	if n := rejectedValues(tier); n != 2 {
		t.Fatalf("%d rejected values counted, want 2", n)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), person) || strings.Contains(logs.String(), other) {
		t.Fatalf("the log names the subject:\n%s", logs)
	}
	// The fill after the store read replaces the forgery with a value of
	// the tier's own, which another replica uses.
	waitFor(t, "the fills", 5*time.Second, func() bool { return tier.stats.fillsWritten.Load() == 2 })
	b := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	if l := lookup(t, b, person); len(l.Entries) != 1 || b.Stats().RedisHits != 1 {
		t.Fatalf("after the fill: %d entries, stats %+v", len(l.Entries), b.Stats())
	}
}

// A clean subject's value copied to a listed subject's key does not open
// there: the listed subject is read from the store.
func TestValueMovedToAnotherSubjectIsAMiss(t *testing.T) {
	t.Parallel()
	opts, prefix, rdb := sharedRedis(t)
	ctx := t.Context()
	st := sqliteStore(t)
	clean, listed := testenv.USCC(t, "91110000MA0000082"), "11010519491231002X"
	insert(t, st, courtEntry("p1", listed, "拒不履行"))
	a := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	lookup(t, a, clean)
	waitFor(t, "A's fill", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	v, err := rdb.Get(ctx, a.redis.valueKey(clean)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, a.redis.valueKey(listed), v, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	b := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	if l := lookup(t, b, listed); len(l.Entries) != 1 {
		t.Fatalf("the listed subject under the clean one's value: %d entries, want 1 (stats %+v)", len(l.Entries), b.Stats())
	}
	if n := rejectedValues(b); n != 1 {
		t.Fatalf("%d rejected values counted, want 1", n)
	}
}

// A subject's own value, saved before a change and put back after the
// invalidation, does not open either: it was sealed in the generation the
// invalidation ended.
func TestValuePutBackAfterInvalidationIsAMiss(t *testing.T) {
	t.Parallel()
	opts, prefix, rdb := sharedRedis(t)
	ctx := t.Context()
	st := sqliteStore(t)
	s := testenv.USCC(t, "91110000MA0000083")
	a := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	lookup(t, a, s)
	waitFor(t, "A's fill", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	saved, err := rdb.Get(ctx, a.redis.valueKey(s)).Result()
	if err != nil {
		t.Fatal(err)
	}
	insert(t, st, blackEntry("e1", s))
	a.Invalidate(s)
	if err := rdb.Set(ctx, a.redis.valueKey(s), saved, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	b := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	if l := lookup(t, b, s); len(l.Entries) != 1 {
		t.Fatalf("the clean value put back after the change: %d entries, want 1 (stats %+v)", len(l.Entries), b.Stats())
	}
}

// Replicas started with different secrets share no value: each reads the
// other's as a miss (under its own key names), a value copied to its name
// does not open, and the other's invalidation messages are taken as lost
// (the change log is read).
func TestReplicasWithDifferentSecretsShareNothing(t *testing.T) {
	t.Parallel()
	opts, prefix, rdb := sharedRedis(t)
	ctx := t.Context()
	st := sqliteStore(t)
	other := bytes.Repeat([]byte{7}, MinRedisSecret)
	a := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour))
	b := newTier(t, st, st, WithRedis(opts), WithPrefix(prefix), WithReconcileInterval(time.Hour), WithRedisSecret(other))
	waitFor(t, "B subscribed", 5*time.Second, func() bool { return b.redis.subscribed.Load() })
	s := testenv.USCC(t, "91110000MA0000084")
	lookup(t, a, s)
	waitFor(t, "A's fill", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	lookup(t, b, s)
	if got := b.Stats(); got.RedisHits != 0 || got.StoreLoads != 1 {
		t.Fatalf("B, another secret: %+v; want a Redis miss and a store read", got)
	}
	waitFor(t, "B's fill", 5*time.Second, func() bool { return b.stats.fillsWritten.Load() == 1 })
	if a.redis.valueKey(s) == b.redis.valueKey(s) {
		t.Fatal("two secrets name a subject's key alike")
	}
	v, err := rdb.Get(ctx, a.redis.valueKey(s)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, b.redis.valueKey(s), v, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	b.local.Invalidate(s)
	lookup(t, b, s)
	if got := b.Stats(); got.RedisHits != 0 || got.StoreLoads != 2 || rejectedValues(b) != 1 {
		t.Fatalf("B, A's value under B's name: %+v, %d rejected; want it rejected and the store read", got, rejectedValues(b))
	}
	reconciles := b.stats.reconciles.Load()
	a.Invalidate(s)
	waitFor(t, "A's message rejected by B", 5*time.Second, func() bool { return rejectedMessages(b) == 1 })
	waitFor(t, "B's reading of the change log", 5*time.Second, func() bool { return b.stats.reconciles.Load() > reconciles })
	if n := b.stats.invalidatedPubSub.Load(); n != 0 {
		t.Fatalf("B dropped %d subjects on a message it could not open", n)
	}
}

func TestRedisSecretTooShort(t *testing.T) {
	t.Parallel()
	_, err := New(nil, nil, WithRedis(&redis.Options{Addr: testenv.FreeAddr(t)}), WithRedisSecret(make([]byte, MinRedisSecret-1)))
	if !errors.Is(err, ErrRedisSecret) {
		t.Fatalf("a short secret: %v, want ErrRedisSecret", err)
	}
}

// The seal's own properties, without Redis.
func TestSealer(t *testing.T) {
	t.Parallel()
	s1, err := newSealer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := newSealer(bytes.Repeat([]byte{1}, MinRedisSecret))
	if err != nil {
		t.Fatal(err)
	}
	const subject = "11010519491231002X"
	if s1.tag(subject) != mustSealer(newSealer(testSecret)).tag(subject) || s1.tag(subject) == s2.tag(subject) || s1.tag(subject) == s1.tag("11010519491231003X") {
		t.Fatal("tags are not a keyed function of the subject")
	}
	if n := len(s1.tag(subject)); n != 22 {
		t.Fatalf("tag of %d characters, want 22 (128 bits, base64url)", n)
	}
	plain := []byte(`{"v":1}`)
	v := s1.sealValue("k", subject, "3", plain)
	if bytes.Contains(v, plain) || !bytes.Equal(openedOrNil(s1.openValue("k", subject, "3", v)), plain) {
		t.Fatal("a value does not round-trip sealed")
	}
	if bytes.Equal(v, s1.sealValue("k", subject, "3", plain)) {
		t.Fatal("two seals of one value are alike (nonce reused)")
	}
	for name, open := range map[string]func() ([]byte, error){
		"other key":        func() ([]byte, error) { return s1.openValue("k2", subject, "3", v) },
		"other subject":    func() ([]byte, error) { return s1.openValue("k", "440304198001010017", "3", v) },
		"other generation": func() ([]byte, error) { return s1.openValue("k", subject, "4", v) },
		"other secret":     func() ([]byte, error) { return s2.openValue("k", subject, "3", v) },
		"message key":      func() ([]byte, error) { return s1.openMessage("k", v) },
		"altered": func() ([]byte, error) {
			w := bytes.Clone(v)
			w[len(w)-1] ^= 1
			return s1.openValue("k", subject, "3", w)
		},
		"truncated": func() ([]byte, error) { return s1.openValue("k", subject, "3", v[:20]) },
		"plain":     func() ([]byte, error) { return s1.openValue("k", subject, "3", plain) },
	} {
		if _, err := open(); !errors.Is(err, errUnsealed) {
			t.Errorf("%s: opened (%v)", name, err)
		}
	}
	m := s1.sealMessage("c", []byte(subject))
	if !bytes.Equal(openedOrNil(s1.openMessage("c", m)), []byte(subject)) {
		t.Fatal("a message does not round-trip sealed")
	}
	if _, err := s1.openMessage("c2", m); err == nil {
		t.Fatal("a message opened on another channel")
	}
}

func mustSealer(s *sealer, err error) *sealer {
	if err != nil {
		panic(err)
	}
	return s
}

func openedOrNil(b []byte, err error) []byte {
	if err != nil {
		return nil
	}
	return b
}

// BenchmarkRedisValue: the CPU a Redis value costs on each side, plain (as
// before sealing) and sealed, for a listed subject's set (two entries,
// one with a responsible person) and a clean one; and the naming of a
// subject's keys. The round trip, which these do not include, is tens of
// microseconds (BenchmarkLookup/redis_hit).
func BenchmarkRedisValue(b *testing.B) {
	s, err := newSealer(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	const subject, key, gen = "91110000MA0000031X", "credgate:{0123456789abcdefghijkl}:e", "3"
	for _, c := range []struct {
		name string
		set  *set
	}{{"listed", sampleSet()}, {"clean", &set{loadedAt: time.Now().UnixNano()}}} {
		plain, err := encodeSet(c.set)
		if err != nil {
			b.Fatal(err)
		}
		sealed := s.sealValue(key, subject, gen, plain)
		b.Run(c.name+"/fill_plain", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeSet(c.set); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/fill_sealed", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := encodeSet(c.set)
				if err != nil {
					b.Fatal(err)
				}
				s.sealValue(key, subject, gen, p)
			}
		})
		b.Run(c.name+"/hit_plain", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeSet(plain); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/hit_sealed", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.openValue(key, subject, gen, sealed)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := decodeSet(p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Logf("%s: %d bytes plain, %d sealed", c.name, len(plain), len(sealed))
	}
	b.Run("key_names", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.tag(subject)
		}
	})
}
