package gateway

import "sync"

// answerBuffers reuses the buffers a check's body is read into and its
// answer written from: an answer is about a kilobyte, a restricted one
// several, and each (and each body) was a fresh allocation per check for
// the garbage collector to sweep.
type answerBuffers struct {
	pool sync.Pool
}

// answerBuf is what the pool holds: a pointer, so that putting it back
// does not allocate.
type answerBuf struct{ b []byte }

// maxPooledAnswer bounds the buffers kept: a rare large answer (many
// measures or entries) is left to the collector rather than held.
const maxPooledAnswer = 16 << 10

func (p *answerBuffers) get() *answerBuf {
	if b, ok := p.pool.Get().(*answerBuf); ok {
		return b
	}
	return &answerBuf{b: make([]byte, 0, 2048)}
}

func (p *answerBuffers) put(b *answerBuf) {
	if cap(b.b) > maxPooledAnswer {
		return
	}
	p.pool.Put(b)
}
