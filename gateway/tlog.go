package gateway

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// The evidence log served as C2SP tlog-tiles (c2sp.org/tlog-tiles) under
// /v1/evidence/tlog/, for transparency tooling that speaks it: the signed
// checkpoint, hash tiles and entry bundles. The checkpoint and hash tiles
// are public, like the other checkpoint routes; entry bundles, which name
// each record's caller and time (never a body, docs/EVIDENCE.md), are for
// administrators and auditors.

// Cache lifetimes of tlog-tiles answers. A full tile never changes; a
// partial tile of a given width never changes either, but it is superseded
// by the full one soon, so caches need not keep it long. The checkpoint
// changes every second while the log grows. An entry bundle answers an
// authenticated caller, so only the caller's own cache may keep it: a
// shared cache (a CDN, the reverse proxy) that kept it under "public"
// would hand it to anyone.
const (
	cacheFullTile      = "public, max-age=31536000, immutable"
	cachePartialTile   = "public, max-age=3600"
	cacheFullBundle    = "private, max-age=31536000, immutable"
	cachePartialBundle = "private, max-age=3600"
	cacheCheckpoint    = "no-cache"
)

func (s *Server) tlogCheckpoint(c *gin.Context) {
	cp, err := s.evidence.log.Checkpoint(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", cacheCheckpoint)
	c.Data(http.StatusOK, "text/plain; charset=utf-8", cp.Note)
}

// guardEntryBundles lets anyone fetch hash tiles, which are all a witness
// or a consistency check needs, but keeps entry bundles to administrators
// and auditors: each entry names a record's partner and its time to the
// microsecond, which tells who checks how often — the same rule as
// /v1/evidence/leaves.
func (s *Server) guardEntryBundles(c *gin.Context) {
	if !strings.HasPrefix(c.Param("tile_path"), "/entries/") {
		c.Next()
		return
	}
	if !s.identify(c) {
		return
	}
	// As on every authenticated route: the role, then the quota.
	if r := callerOf(c).Role; r != service.RoleAdmin && r != service.RoleAuditor {
		fail(c, problem(http.StatusForbidden, "forbidden", "Forbidden", "entry bundles are for administrators and auditors"))
		return
	}
	s.rateLimit(c)
}

// tlogTile serves tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>]: one
// route, since gin cannot route the multi-segment index.
func (s *Server) tlogTile(c *gin.Context) {
	t, err := evidence.ParseTilePath(strings.TrimPrefix(c.Param("tile_path"), "/"))
	if err != nil {
		fail(c, err)
		return
	}
	var b []byte
	if t.Entries {
		b, err = s.evidence.log.EntryBundle(c.Request.Context(), t)
	} else {
		b, err = s.evidence.log.Tile(c.Request.Context(), t)
	}
	if err != nil {
		fail(c, err)
		return
	}
	switch {
	case t.Entries && t.Full():
		c.Header("Cache-Control", cacheFullBundle)
	case t.Entries:
		c.Header("Cache-Control", cachePartialBundle)
	case t.Full():
		c.Header("Cache-Control", cacheFullTile)
	default:
		c.Header("Cache-Control", cachePartialTile)
	}
	c.Data(http.StatusOK, "application/octet-stream", b)
}
