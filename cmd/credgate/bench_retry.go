package main

import (
	"container/heap"
	"sync"
	"time"
)

// benchRetries are the overload phase's refused callers that honour
// Retry-After (--retry-after), soonest due first. A caller refused 503
// overloaded waits out the Retry-After it was given (client.OverloadWait,
// as the Go client's WithOverloadRetries does) and sends its check again,
// up to max times; its latency counts from when it first meant to send.
// Whichever worker looks next, before taking a slot of the schedule,
// sends a retry that is due: a caller waiting out its Retry-After holds
// no connection and no worker, as a client backing off holds neither,
// and arrivals go on at the schedule's rate beside the retries.
type benchRetries struct {
	max int
	mu  sync.Mutex
	h   retryHeap
}

// benchRetry is one caller waiting to send again.
type benchRetry struct {
	due   time.Time
	first time.Time // when the caller first meant to send
	i     int       // its body
	sends int       // sent so far
}

// newBenchRetries lets each refused caller send again up to n times.
func newBenchRetries(n int) *benchRetries { return &benchRetries{max: n} }

// refused takes the caller refused on its sends-th send with Retry-After
// wait: it is queued to send again after wait, or, with no retry left,
// gives up (false).
func (q *benchRetries) refused(r benchRetry, wait time.Duration) bool {
	if r.sends > q.max {
		return false
	}
	r.due = time.Now().Add(wait)
	q.mu.Lock()
	heap.Push(&q.h, r)
	q.mu.Unlock()
	return true
}

// due takes the soonest retry if it is due at now.
func (q *benchRetries) due(now time.Time) (benchRetry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 || q.h[0].due.After(now) {
		return benchRetry{}, false
	}
	return heap.Pop(&q.h).(benchRetry), true
}

// waiting is how many callers are still waiting to send again.
func (q *benchRetries) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// retryHeap orders retries by when they are due (container/heap).
type retryHeap []benchRetry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(benchRetry)) }
func (h *retryHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
