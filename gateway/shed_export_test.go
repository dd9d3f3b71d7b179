package gateway

import "time"

// HoldCheckSlots takes every check slot of s, as checks in progress would,
// so that the next check finds them busy (the refusal's benchmark); the
// returned function gives them back.
func HoldCheckSlots(s *Server) (release func()) {
	n := cap(s.shedding.slots)
	for range n {
		s.shedding.slots <- struct{}{}
	}
	return func() {
		for range n {
			<-s.shedding.slots
		}
	}
}

// RefusedAt notes a refusal for capacity at t in s's accept pause.
func RefusedAt(s *Server, t time.Time) { s.shedding.pauseFrom(t) }

// AcceptPauseAt is what s.AcceptPause would say at now.
func AcceptPauseAt(s *Server, now time.Time) time.Duration { return s.shedding.acceptPause(now) }
