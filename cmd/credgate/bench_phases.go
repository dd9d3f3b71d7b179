package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Phases of the bench beyond saturate, noop and rate:
//
//	receipts  --receipts callers each check and then ask for that check's
//	          receipt (GET /v1/evidence/receipts/{id}), while an open loop
//	          sends --receipt-load checks/s beside them: receipt latency
//	          under load, the signing of checkpoints shared or not.
//	overload  an open loop at --overload times the capacity (the saturate
//	          phase's throughput, or --capacity): how much of its capacity
//	          the server still answers, at what latency, and its memory
//	          (process_resident_memory_bytes from /metrics) before and
//	          after; its "server" figures say how much of the offered
//	          load arrived (arrived_x_capacity) and what the server's
//	          CPU went to. A refused caller gives up, or with
//	          --retry-after N sends its check again after the
//	          Retry-After it was given, up to N times, as clients
//	          honouring it do (bench_retry.go).

func (c *benchConfig) registerPhaseFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.receipts, "receipts", 16, "receipt callers of the receipts phase")
	fs.Float64Var(&c.receiptLoad, "receipt-load", 500, "checks per second sent beside the receipt callers")
	fs.Float64Var(&c.overload, "overload", 4, "the overload phase offers this many times the capacity")
	fs.Float64Var(&c.capacity, "capacity", 0, "checks/s the overload phase takes as capacity (0: the saturate phase's throughput)")
	fs.IntVar(&c.retryAfter, "retry-after", 0, "overload phase: a caller refused 503 overloaded sends its check again after the Retry-After it was given, as clients honouring it do, up to this many times (0: it gives up at once)")
}

func (c *benchConfig) validatePhaseFlags() error {
	switch {
	case c.receipts < 1 || c.receipts > benchMaxWorkers:
		return fmt.Errorf("--receipts must be 1..%d", benchMaxWorkers)
	case !(c.receiptLoad >= 0) || c.receiptLoad > 1e6:
		return errors.New("--receipt-load must be in [0, 1000000]")
	case !(c.overload > 0) || c.overload > 100:
		return errors.New("--overload must be in (0, 100]")
	case !(c.capacity >= 0) || c.capacity > 1e6:
		return errors.New("--capacity must be in [0, 1000000]")
	case c.retryAfter < 0 || c.retryAfter > benchMaxRetryAfter:
		return fmt.Errorf("--retry-after must be 0..%d", benchMaxRetryAfter)
	case c.phases["overload"] && c.capacity == 0 && !c.phases["saturate"]:
		return errors.New("the overload phase needs the saturate phase or --capacity")
	}
	return nil
}

// phaseConns is how many connections these phases may keep open.
func (c *benchConfig) phaseConns() int {
	n := 0
	if c.phases["receipts"] {
		n = c.receipts + c.openConns(max(c.receiptLoad, 1))
	}
	if c.phases["overload"] {
		n = max(n, c.overloadConns())
	}
	return n
}

var checkIDKey = []byte(`"check_id":"`)

// receiptsPhase runs the receipt callers beside the background checks and
// returns both results.
func (b *bench) receiptsPhase(ctx context.Context) (*phaseResult, *phaseResult) {
	const path = "/v1/evidence/receipts/{id}"
	n := b.cfg.receipts
	r := &phaseResult{Name: "receipts", Path: path, Workers: n,
		Mode: fmt.Sprintf("closed loop (a check, then its receipt, timed) beside %g checks/s", b.cfg.receiptLoad)}
	var load *phaseResult
	var bg sync.WaitGroup
	if b.cfg.receiptLoad > 0 {
		bg.Go(func() {
			load = b.openLoopAt(ctx, b.openSpec("receipts-load", b.cfg.receiptLoad, b.cfg.duration))
		})
		// Let the load's warm-up pass, so that the callers run beside it.
		time.Sleep(time.Second)
	}
	before, cpu0 := b.sample(ctx), benchCPUTime()
	start := time.Now()
	deadline := start.Add(b.cfg.duration)
	pctx, cancel := context.WithDeadline(ctx, deadline.Add(benchGrace))
	defer cancel()
	workers := b.newWorkers(n, false)
	b.rotate(pctx, workers, deadline, func(w *worker, i int) {
		b.checkThenReceipt(pctx, w, i)
	})
	r.merge(workers, time.Since(start))
	// The server's and the generator's figures include the checks sent
	// beside the callers.
	b.finish(ctx, r, path, cpu0, before)
	bg.Wait()
	return r, load
}

// checkThenReceipt checks subject i (untimed) and then asks for the
// check's receipt, timed.
func (b *bench) checkThenReceipt(ctx context.Context, w *worker, i int) {
	auth, err := b.partner.Authorization(ctx)
	if err != nil {
		w.fail("token", err.Error())
		return
	}
	body, status, err := b.send(ctx, http.MethodPost, "/v1/checks", b.bodies[i], auth)
	if err != nil || status != http.StatusOK {
		w.requests++
		w.fail("check", fmt.Sprintf("check before the receipt: HTTP %d %v", status, err))
		return
	}
	k := bytes.Index(body, checkIDKey)
	end := -1
	if k >= 0 {
		k += len(checkIDKey)
		end = bytes.IndexByte(body[k:], '"')
	}
	if end < 0 {
		w.requests++
		w.fail("no check_id", "check answer without a check_id")
		return
	}
	id := string(body[k : k+end])
	w.requests++
	start := time.Now()
	body, status, err = b.send(ctx, http.MethodGet, "/v1/evidence/receipts/"+id, nil, auth)
	lat := time.Since(start)
	if err != nil {
		w.fail("transport", err.Error())
		return
	}
	if w.budget.Add(-1) >= 0 {
		w.lat = append(w.lat, int64(lat))
	}
	if status != http.StatusOK {
		w.fail("HTTP "+strconv.Itoa(status), fmt.Sprintf("receipt: HTTP %d: %.200s", status, body))
		return
	}
	if !bytes.Contains(body, []byte(`"format":"credgate-receipt/v1"`)) {
		w.fail("not a receipt", fmt.Sprintf("receipt answer: %.200s", body))
		return
	}
	w.ok++
}

// send makes one request and reads its answer whole.
func (b *bench) send(ctx context.Context, method, path string, body []byte, auth string) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.cfg.url+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", auth)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, benchMaxBody))
	return out, resp.StatusCode, err
}

// overloadConns is the overload phase's connections: --connections, or
// else benchMaxOpenConns whatever the rate. They must be more than the
// server admits at once (server.checks_in_flight + server.check_queue, 512
// by default): with fewer, every connection waits on an admitted check,
// the server never sheds, and the generator's pool becomes the queue.
func (c *benchConfig) overloadConns() int {
	if c.connections > 0 {
		return c.connections
	}
	return max(benchMaxOpenConns, c.concurrency)
}

// overloadPhase offers --overload times the capacity.
func (b *bench) overloadPhase(ctx context.Context, sat *phaseResult) *phaseResult {
	capacity := b.cfg.capacity
	if capacity == 0 && sat != nil && sat.Skipped == "" {
		capacity = sat.Throughput
	}
	if capacity <= 0 {
		return &phaseResult{Name: "overload", Path: "/v1/checks", Skipped: "no capacity: run the saturate phase or set --capacity"}
	}
	before := b.sample(ctx)
	spec := b.openSpec("overload", b.cfg.overload*capacity, b.cfg.duration)
	spec.conns, spec.okOnly = b.cfg.overloadConns(), true
	if b.cfg.retryAfter > 0 {
		spec.retries = newBenchRetries(b.cfg.retryAfter)
	}
	r := b.openLoopAt(ctx, spec)
	r.Capacity = capacity
	if r.Server != nil {
		r.Server.ArrivedX = r.Server.ArrivedRPS / capacity
	}
	// Memory before the phase's connections were opened, with them open
	// (before the first request), and after.
	r.RSSBeforeMB, r.RSSWarmMB, r.RSSAfterMB = before.rssMB(), r.serverStart.rssMB(), r.serverEnd.rssMB()
	return r
}
