package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/internal/testenv"
)

// The cache's Redis secret is the token key's, worked through HKDF: the
// same for replicas sharing the token key, another for another key, and
// neither the seed nor the webhook key.
func TestCacheRedisSecretFromTokenKey(t *testing.T) {
	k1 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	k1again := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	k2 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	s1, err := cacheRedisSecret(k1)
	if err != nil {
		t.Fatal(err)
	}
	s1again, _ := cacheRedisSecret(k1again)
	s2, _ := cacheRedisSecret(k2)
	if len(s1) != 32 || !bytes.Equal(s1, s1again) || bytes.Equal(s1, s2) || bytes.Equal(s1, k1.Seed()) {
		t.Fatalf("secrets %x %x %x", s1, s1again, s2)
	}
	if _, err := cacheRedisSecret(nil); err == nil {
		t.Fatal("a secret from no key")
	}
}

// serve with Redis: after a listed person is checked (and the set filled
// into Redis behind the check), no key name or value under the cache's
// prefix holds the person's number, the entry's reason or its department.
func TestServeRedisCacheHoldsNoSubjectInClear(t *testing.T) {
	redisURL := testenv.Redis(t)
	prefix := fmt.Sprintf("credgate-test-serve-seal-%d", time.Now().UnixNano())
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	scan := func() map[string]string {
		kv := map[string]string{}
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			v, _ := rdb.Get(ctx, iter.Val()).Result()
			kv[iter.Val()] = v
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		return kv
	}
	t.Cleanup(func() {
		for k := range scan() {
			rdb.Del(context.Background(), k)
		}
		rdb.Close()
	})
	srv := startInProcess(t, "--redis-url", redisURL, "--redis-prefix", prefix, "--rate-limit-prefix", prefix+"-rl")

	person := "11010519491231002X"
	client := &http.Client{Timeout: 10 * time.Second}
	imp, _ := http.NewRequest(http.MethodPost, srv.base+"/v1/admin/entries:import", bytes.NewReader(testenv.ListedNDJSON([]string{person})))
	imp.Header.Set("Authorization", "Bearer "+srv.adminToken)
	imp.Header.Set("Content-Type", "application/x-ndjson")
	if code, body, err := doReq(client, imp); err != nil || code != http.StatusCreated {
		t.Fatalf("import: %d %v %v", code, body, err)
	}
	check := func() {
		t.Helper()
		code, m, err := postJSON(client, srv.base+"/v1/checks", srv.adminToken, map[string]any{
			"subject": map[string]string{"id": person}, "action": "air_travel"})
		if err != nil || code != http.StatusOK || m["outcome"] != "restrict" {
			t.Fatalf("check: %d %v %v", code, m, err)
		}
	}
	check()
	var kv map[string]string
	deadline := time.Now().Add(10 * time.Second)
	again := time.Now().Add(time.Second)
	for {
		// A load that an invalidation overtook (the import's, reaching
		// the cache after the check read the store) is rightly not
		// written; another check fills the value then.
		if time.Now().After(again) {
			check()
			again = time.Now().Add(time.Second)
		}
		kv = scan()
		n := 0
		for k := range kv {
			if strings.HasSuffix(k, ":e") {
				n++
			}
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no value filled under %s: %v", prefix, kv)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for k, v := range kv {
		for _, s := range []string{person, "拒不履行", "杭州市中级人民法院", "court_dishonest_debtor"} {
			if strings.Contains(k, s) || strings.Contains(v, s) {
				t.Errorf("%s (value %q) holds %q", k, v, s)
			}
		}
	}
}
