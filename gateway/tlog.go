package gateway

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/evidence"
)

// The evidence log served as C2SP tlog-tiles (c2sp.org/tlog-tiles) under
// /v1/evidence/tlog/, for transparency tooling that speaks it: the signed
// checkpoint, hash tiles and entry bundles. All public, like the other
// checkpoint routes: they hold hashes and each record's id, kind, caller
// and time, never a body (docs/EVIDENCE.md).

// Cache lifetimes of tlog-tiles answers. A full tile never changes; a
// partial tile of a given width never changes either, but it is superseded
// by the full one soon, so caches need not keep it long. The checkpoint
// changes every second while the log grows.
const (
	cacheFullTile    = "public, max-age=31536000, immutable"
	cachePartialTile = "public, max-age=3600"
	cacheCheckpoint  = "no-cache"
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
	if t.Full() {
		c.Header("Cache-Control", cacheFullTile)
	} else {
		c.Header("Cache-Control", cachePartialTile)
	}
	c.Data(http.StatusOK, "application/octet-stream", b)
}
