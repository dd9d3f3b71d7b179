package gateway

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
