package main

import (
	"math"
	"reflect"
	"testing"
)

// designScale is the scale at which the busiest minute's checks reach the
// design figure of docs/SCALE.md, 2 500 checks/s.
func designScale(t *testing.T) float64 {
	t.Helper()
	return ScaleFor(Default(), 2500)
}

func TestDeterministic(t *testing.T) {
	a, b := Run(Default()), Run(Default())
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
	other := Default()
	other.Seed = 2
	if reflect.DeepEqual(a, Run(other)) {
		t.Fatal("another seed draws the same waves")
	}
}

// TestDesignHoldsWithHeadroom: at the design figure every component of
// the sharded design stays under 50 % utilisation with finite queueing,
// with at least half again the headroom of one machine carrying the same
// load (the screening jobs, paced per shard, weigh the same on both).
func TestDesignHoldsWithHeadroom(t *testing.T) {
	cfg := Default()
	cfg.Scale = designScale(t)
	r := Run(cfg)
	if r.PeakChecks < 2499 || r.PeakChecks > 2501 {
		t.Fatalf("design scale gives %v checks/s at the busiest minute", r.PeakChecks)
	}
	one := Run(OneMachine(cfg))
	for i, c := range r.Components {
		if c.Overloaded || c.Utilisation >= 0.5 {
			t.Errorf("%s at the design figure: %.1f %% utilisation", c.Name, 100*c.Utilisation)
		}
		if o := one.Components[i]; !o.Overloaded && c.Headroom < 1.5*o.Headroom {
			t.Errorf("%s: headroom %.2f sharded against %.2f on one machine", c.Name, c.Headroom, o.Headroom)
		}
	}
}

// TestScreeningBounded: a shard screens one job at a time, so more jobs
// wait longer but never screen faster than the pace on a shard.
func TestScreeningBounded(t *testing.T) {
	cfg := Default()
	a := Run(cfg)
	cfg.WavesPerDay *= 4
	b := Run(cfg)
	if b.Waves <= a.Waves || b.JobWait < a.JobWait {
		t.Fatalf("4× the load: %d jobs waiting up to %v, against %d up to %v", b.Waves, b.JobWait, a.Waves, a.JobWait)
	}
	if max := float64(len(b.Shards)) * cfg.WaveRate; b.PeakScreened > max {
		t.Fatalf("%v subjects/s screened nationally, more than one job per shard (%v)", b.PeakScreened, max)
	}
}

// TestLoadConserved: the shards' shares add up to the whole, the routing
// puts every region on one shard, and the day's checks are the annual
// figure over the working days times the year-end factor.
func TestLoadConserved(t *testing.T) {
	cfg := Default()
	r := Run(cfg)
	var share float64
	seen := map[string]bool{}
	for _, s := range r.Shards {
		share += s.Share
		for _, name := range s.Regions {
			if seen[name] {
				t.Fatalf("%s routed twice", name)
			}
			seen[name] = true
		}
	}
	if math.Abs(share-1) > 1e-9 || len(seen) != len(cfg.Regions) {
		t.Fatalf("shares add to %v over %d of %d regions", share, len(seen), len(cfg.Regions))
	}
	if want := cfg.AnnualChecks / float64(cfg.WorkingDays) * cfg.YearEnd; math.Abs(r.DayChecks-want) > 1 {
		t.Fatalf("day: %v checks, want %v", r.DayChecks, want)
	}
}

// TestErlangC against known values: one server is the M/M/1 queue, whose
// waiting probability is its utilisation; two servers at a = 1 wait with
// probability 1/3.
func TestErlangC(t *testing.T) {
	if got := erlangC(0.5, 1); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("M/M/1 at ρ = 0.5: %v", got)
	}
	if got := erlangC(1, 2); math.Abs(got-1.0/3) > 1e-12 {
		t.Errorf("M/M/2 at a = 1: %v", got)
	}
	mean, _, over := mmc(50, 100, 1) // Wq = ρ/(μ−λ) = 0.5/50 s
	if over || math.Abs(mean.Seconds()-0.01) > 1e-9 {
		t.Errorf("M/M/1 mean wait: %v", mean)
	}
	if _, _, over := mmc(200, 100, 2); !over {
		t.Error("λ = cμ is not overloaded")
	}
}
