package gateway

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// WithActs serves GET /v1/admin/acts, the administrative acts read back
// from the evidence log, to administrators and auditors.
func WithActs(a *service.Acts) Option { return func(s *Server) { s.acts = a } }

// actView is one administrative act as the API shows it.
type actView struct {
	LogIndex   uint64              `json:"log_index"`
	ID         string              `json:"id"`
	RecordHash string              `json:"record_hash"`
	Body       evidence.BodyStatus `json:"body"`
	Act        service.Act         `json:"act,omitempty"`
	Actor      string              `json:"actor,omitempty"`
	Target     string              `json:"target,omitempty"`
	At         *time.Time          `json:"at,omitempty"`
	Details    map[string]any      `json:"details,omitempty"`
}

// listActs serves GET /v1/admin/acts?after=&limit=: who did what and
// when, in log order; pages are keyed by log index.
func (s *Server) listActs(c *gin.Context) {
	if s.acts == nil {
		fail(c, problem(http.StatusNotFound, "not_found", "Not found", "this server does not serve administrative acts"))
		return
	}
	after, limit, ok := page(c)
	if !ok {
		return
	}
	acts, err := s.acts.List(c.Request.Context(), after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]actView, len(acts))
	for i, a := range acts {
		v := actView{LogIndex: a.LogIndex, ID: a.ID, RecordHash: hex.EncodeToString(a.RecordHash[:]), Body: a.Status}
		if b := a.Body; b != nil {
			at := b.At
			v.Act, v.Actor, v.Target, v.At, v.Details = b.Act, b.Actor, b.Target, &at, b.Details
		}
		out[i] = v
	}
	c.JSON(http.StatusOK, listing("acts", out, acts, limit, func(a service.ActView) string { return strconv.FormatUint(a.LogIndex, 10) }))
}
