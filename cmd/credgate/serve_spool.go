package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/service"
)

// spoolDir is the replica's spool directory: evidence.spool_dir, or
// <data_dir>/spool.
func spoolDir(cfg *config.Config) string {
	if cfg.Evidence.SpoolDir != "" {
		return cfg.Evidence.SpoolDir
	}
	return filepath.Join(cfg.Store.DataDir, "spool")
}

// openSpool opens (and locks) the replica's evidence spool, nil with
// evidence.spool off. serve opens it before it generates or signs
// anything, so that a spool dir that cannot be made, or that another
// replica holds, stops a start that has written nothing; ledger is told
// of the directories it makes.
func openSpool(cfg *config.Config, ledger *startLedger) (*evidence.Spool, error) {
	if !cfg.Evidence.Spool {
		return nil, nil
	}
	dir := spoolDir(cfg)
	ledger.absentDir(dir)
	sp, err := evidence.OpenSpool(dir, evidence.WithSpoolMaxBytes(int64(cfg.Evidence.SpoolMaxMB)<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Describe("evidence.spool_dir"), err)
	}
	return sp, nil
}

// startSpool starts the integrator of the spool openSpool opened (nil:
// evidence.spool is off). It returns the log checks append to (the
// appender, with the spool as its fallback), the gateway options showing
// the spool, and stop, which ends the integrator and closes the spool
// (idempotent; call it before the appender closes). With evidence.spool
// off, checks append to the appender alone and fail closed as before.
func startSpool(ctx context.Context, cfg *config.Config, sp *evidence.Spool, appender *evidence.Appender, st service.Store, signer *evidence.Signer,
	storeName string, logger *slog.Logger) (service.EvidenceLog, []gateway.Option, func()) {
	if sp == nil {
		return appender, nil, func() {}
	}
	dir := spoolDir(cfg)
	sl := service.NewSpoolingLog(appender, sp, signer, st, service.WithSpoolBound(cfg.Store.Timeout), service.WithSpoolLogger(logger))
	if s := sp.Stats(); s.Pending > 0 {
		logger.Warn("evidence spool holds records not yet in the log; integrating them", "dir", dir, "pending", s.Pending, "replica", s.Replica)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		sl.Run(rctx)
	}()
	// The shutdown's time runs from the signal (ctx's end), as the
	// requests' drain does: the spool has what the requests left of it.
	var signalled atomic.Int64
	context.AfterFunc(ctx, func() { signalled.Store(time.Now().UnixNano()) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			deadline := time.Now().Add(cfg.Server.ShutdownTimeout)
			if at := signalled.Load(); at != 0 {
				deadline = time.Unix(0, at).Add(cfg.Server.ShutdownTimeout)
			}
			drainSpool(sl, sp, deadline, logger)
			if err := sp.Close(); err != nil {
				logger.Warn("close evidence spool", "error", err)
			}
		})
	}
	logger.Info("evidence spool open", "dir", dir, "replica", sp.Replica())
	return sl, []gateway.Option{gateway.WithSpool(sl, storeName)}, stop
}

// drainSpool integrates what the spool holds before the replica stops,
// until deadline: its records are the only evidence of checks already
// answered, and the spool may not outlive the replica (a pod's emptyDir).
// What is left is logged as an error, naming the directory to integrate.
func drainSpool(sl *service.SpoolingLog, sp *evidence.Spool, deadline time.Time, logger *slog.Logger) {
	before := sp.Stats().Pending
	if before == 0 {
		return
	}
	logger.Info("integrating the evidence spool before stopping", "pending", before, "dir", sp.Dir())
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	pending, err := sl.Drain(ctx)
	if pending == 0 {
		logger.Info("evidence spool integrated", "records", before)
		return
	}
	logger.Error(fmt.Sprintf("evidence spool not integrated at shutdown: %d records pending, the only evidence of checks already answered; "+
		"keep %s and run `credgate spool integrate --dir %s` (with this replica's store settings) once the database is back", pending, sp.Dir(), sp.Dir()),
		"pending", pending, "dir", sp.Dir(), "replica", sp.Replica(), "error", err)
}

const spoolUsage = `Usage: credgate spool integrate --dir DIR [flags]
       credgate spool status --dir DIR

integrate appends the records of an evidence spool to the log, in spool order,
skipping any already there, and exits when the spool is empty (or with an
error). Use it for the spool of a replica that will not come back; a running
replica integrates its own. The spool is locked: not while its replica runs.
status prints the spool's replica id, pending records and the oldest one; it
writes nothing, and may look at a running replica's spool.
DIR is a spool directory (it holds a file named replica): a replica's
<data_dir>/spool, or its evidence.spool_dir. Neither subcommand creates one.
`

// spoolCmd runs the spool subcommands.
func spoolCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "integrate" && args[0] != "status") {
		fmt.Fprint(stderr, spoolUsage)
		return errUsage
	}
	sub := args[0]
	fs, loader := commandFlags("spool "+sub, spoolUsage, []string{"store", "evidence"}, stderr)
	dir := fs.String("dir", "", "the spool directory (a replica's evidence.spool_dir, by default <data_dir>/spool)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || *dir == "" {
		if err == nil {
			fs.Usage()
		}
		return errUsage
	}
	// Neither subcommand makes a spool where there is none: pointed at the
	// wrong directory (a replica's data dir, a mount's root), it would
	// say "0 records pending" of a spool it had just created, and write
	// to a disk being recovered. status writes nothing at all.
	if sub == "status" {
		st, err := evidence.ReadSpoolStats(*dir)
		if err != nil {
			return notSpool(*dir, err)
		}
		printSpool(stdout, st)
		return nil
	}
	sp, err := evidence.OpenSpool(*dir, evidence.WithSpoolExisting())
	if err != nil {
		return notSpool(*dir, err)
	}
	defer sp.Close()
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	raw, _, closeStore, err := openStore(ctx, cfg.Store, false)
	if err != nil {
		return err
	}
	defer closeStore()
	st := bound(raw, cfg.Store.Timeout)
	appender := evidence.NewAppender(st)
	defer appender.Close()
	// Promises are not handed out here: the records were answered already.
	sl := service.NewSpoolingLog(appender, sp, nil, st)
	start := time.Now()
	before := sp.Stats().Pending
	for sp.Stats().Pending > 0 {
		if _, err := sl.IntegrateOnce(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			printSpool(stdout, sp.Stats())
			return fmt.Errorf("integrate %s: %w", *dir, err)
		}
	}
	fmt.Fprintf(stdout, "integrated %d records of replica %s in %s\n", before, sp.Replica(), time.Since(start).Round(time.Millisecond))
	if q := sl.SpoolStatus().Quarantined; q > 0 {
		fmt.Fprintf(stdout, "%d records set aside in %s\n", q, filepath.Join(*dir, service.SpoolQuarantineDir))
	}
	return nil
}

// notSpool explains ErrNotSpool: where a replica's spool is.
func notSpool(dir string, err error) error {
	if errors.Is(err, evidence.ErrNotSpool) {
		return notSpoolError{dir}
	}
	return err
}

// notSpoolError is evidence.ErrNotSpool, said of a directory.
type notSpoolError struct{ dir string }

func (e notSpoolError) Error() string {
	return e.dir + " is not a spool directory (no replica file); a replica's spool is <data_dir>/spool, or its evidence.spool_dir"
}

func (e notSpoolError) Unwrap() error { return evidence.ErrNotSpool }

func printSpool(w io.Writer, s evidence.SpoolStats) {
	fmt.Fprintf(w, "replica %s: %d records pending", s.Replica, s.Pending)
	if s.Pending > 0 {
		fmt.Fprintf(w, ", oldest %s", s.Oldest.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, ", %d records integrated in all\n", s.Integrated)
}

// partnerOutageGrace is how long past the partner cache's TTL a replica
// with a spool trusts an active partner's cached state while the store is
// away: long enough for an outage the spool rides out, short enough that
// a revocation made through another replica still takes effect.
const partnerOutageGrace = 5 * time.Minute

// partnerGrace is the partner service's outage grace: with a spool, checks
// go on while the store is away, so their callers must not be refused for
// want of a partner re-read; without one they fail anyway.
func partnerGrace(cfg *config.Config) service.PartnersOption {
	if !cfg.Evidence.Spool {
		return service.WithPartnerOutageGrace(0)
	}
	return service.WithPartnerOutageGrace(partnerOutageGrace)
}
