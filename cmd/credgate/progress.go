package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// progress reports how far a long command is: a progress bar with its
// rate and ETA when w is a terminal, otherwise a plain line every few
// seconds (logs and CI keep no carriage returns). Safe for concurrent use.
type progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar // nil when w is no terminal
	w     io.Writer
	what  string
	unit  string
	total int64
	start time.Time
	last  time.Time
	n     int64
	every time.Duration
}

// newProgress reports progress towards total (0: unknown) of what, in
// units (bytes are shown as sizes).
func newProgress(w io.Writer, total int64, what, unit string) *progress {
	p := &progress{w: w, what: what, unit: unit, total: total, start: time.Now(), every: 5 * time.Second}
	if f, ok := w.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		max := total
		if max <= 0 {
			max = -1
		}
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		}
		if unit == "bytes" {
			opts = append(opts, progressbar.OptionShowBytes(true))
		} else {
			opts = append(opts, progressbar.OptionSetItsString(unit), progressbar.OptionShowIts())
		}
		p.bar = progressbar.NewOptions64(max, opts...)
	}
	return p
}

// set records that n units are done.
func (p *progress) set(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	if p.bar != nil {
		_ = p.bar.Set64(n)
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.line(now)
	}
}

// line writes a plain progress line: done, rate, and ETA when the total is
// known.
func (p *progress) line(now time.Time) {
	el := now.Sub(p.start)
	rate := float64(p.n) / max(el.Seconds(), 1e-3)
	msg := fmt.Sprintf("%s: %d %s", p.what, p.n, p.unit)
	if p.total > 0 {
		msg += fmt.Sprintf(" of %d (%d%%)", p.total, p.n*100/p.total)
	}
	msg += fmt.Sprintf(", %.0f %s/s, %s elapsed", rate, p.unit, el.Round(time.Second))
	if p.total > 0 && rate > 0 && p.n < p.total {
		msg += fmt.Sprintf(", about %s left", time.Duration(float64(p.total-p.n)/rate*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintln(p.w, msg)
}

// done ends the report.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	if p.n > 0 {
		p.line(time.Now())
	}
}
