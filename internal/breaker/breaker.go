// Package breaker names the states of credgate's circuit breakers
// (sony/gobreaker) the one way /readyz and /metrics show them, whichever
// package owns the breaker.
package breaker

import "github.com/sony/gobreaker/v2"

// Names of breaker states.
const (
	Closed   = "closed"
	HalfOpen = "half_open"
	Open     = "open"
)

// StateName names a gobreaker state.
func StateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateClosed:
		return Closed
	case gobreaker.StateOpen:
		return Open
	default:
		return HalfOpen
	}
}

// StateNames are every state, in the order /metrics lists them.
func StateNames() []string { return []string{Closed, HalfOpen, Open} }
