package gateway

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
)

// ProblemFor is the problem the API answers for err, for the other
// interfaces over the same service layer (the console): a form's
// validation error there reads as the API's, with the same code, field and
// detail. A copy is returned, so callers may set Instance or RequestID.
// Errors on entries point their subject identifier at subject_id, as the
// entry endpoints do.
func ProblemFor(err error) Problem {
	return *problemFor(entryError(err))
}

// Health is what /readyz reports, as a value: each dependency's ping
// ("ok" or "down"), the circuit breakers and the informational sections
// (cache tier, upstream sources), for the console's overview, which shows
// it wherever /readyz itself is served.
func (s *Server) Health(ctx context.Context) map[string]any {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	deps := map[string]string{}
	for name, p := range s.ready {
		deps[name] = "ok"
		if err := p.Ping(ctx); err != nil {
			deps[name] = "down"
		}
	}
	body := gin.H{"dependencies": deps}
	s.addStatus(ctx, body)
	return body
}
