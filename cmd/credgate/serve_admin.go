package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/credgate/credgate/internal/config"
)

// listenAdmin binds the operations listener (server.admin_addr), or
// returns nil when none is configured: the operations endpoints then stay
// on the partner port.
func listenAdmin(cfg *config.Config) (net.Listener, error) {
	if cfg.Server.AdminAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Server.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; choose another address with --admin-addr or CREDGATE_ADMIN_ADDR", cfg.Describe("server.admin_addr"), err)
	}
	return ln, nil
}

// serveAdmin serves h on ln until the returned function stops it. Its
// failure is logged, not fatal: partners keep being answered while the
// monitoring port is down, and the missing scrape is what alerts.
func serveAdmin(ln net.Listener, h http.Handler, logger *slog.Logger) (stop func(context.Context)) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		// A CPU profile or trace runs for its ?seconds= (30 s by default).
		WriteTimeout: 5 * time.Minute,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			logger.Error("admin listener stopped", "error", err)
		}
	}()
	return func(ctx context.Context) {
		_ = srv.Shutdown(ctx)
		<-done
	}
}
