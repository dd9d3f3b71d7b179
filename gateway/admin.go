package gateway

import (
	"net/http"
	"net/http/pprof"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// WithAdminListener moves the operations endpoints (/metrics, /readyz,
// /healthz) off the partner handler: they are then served only by
// AdminHandler, on a listener of their own that only the monitoring
// network reaches. Without it they stay on Handler, as a single-port
// deployment expects, and the profiler is served nowhere.
func WithAdminListener() Option { return func(s *Server) { s.adminSeparate = true } }

// mountOperations registers the operations endpoints on r.
func (s *Server) mountOperations(r gin.IRoutes) {
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})))
}

// AdminHandler serves the operations endpoints and Go's profiler
// (net/http/pprof under /debug/pprof/). The profiler exposes the
// process's memory, so it is never on the partner handler: mount this
// only on an address partners cannot reach. Its command line
// (/debug/pprof/cmdline) is served nowhere: flags may hold secrets
// (--token-key, a --postgres-url with a password), and whoever reaches
// the metrics need not read them.
func (s *Server) AdminHandler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.RedirectTrailingSlash = false
	r.Use(s.recoverer, s.requestID, limitHeaders)
	r.NoRoute(func(c *gin.Context) {
		fail(c, problem(http.StatusNotFound, "not_found", "Not found", "no such endpoint"))
	})
	s.mountOperations(r)

	// The profiler's own mux, not http.DefaultServeMux (on which importing
	// net/http/pprof also registers it): nothing else leaks in that way.
	prof := http.NewServeMux()
	prof.HandleFunc("/debug/pprof/", pprof.Index)
	prof.HandleFunc("/debug/pprof/profile", pprof.Profile)
	prof.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	prof.HandleFunc("/debug/pprof/trace", pprof.Trace)
	r.Any("/debug/pprof/*profile", gin.WrapH(prof))
	return r
}
